package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// Listener receives the revocations other replicas announce with NOTIFY.
type Listener struct {
	cfg       *pgx.ConnConfig
	onConnect func(context.Context)
	onNotice  func([]domain.Revocation)
	onError   func(error)
}

// NewListener returns a listener that connects like pool does, on a
// dedicated connection of its own (a pooled connection cannot wait for
// notifications). onNotice gets each announced batch; onConnect runs after
// every successful LISTEN; onError hears of lost connections and bad notices.
func NewListener(pool *pgxpool.Pool, onNotice func([]domain.Revocation), onConnect func(context.Context), onError func(error)) *Listener {
	return &Listener{cfg: pool.Config().ConnConfig.Copy(), onNotice: onNotice, onConnect: onConnect, onError: onError}
}

// Run listens until ctx ends, reconnecting with capped exponential backoff
// whenever the connection is lost.
func (l *Listener) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := l.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		l.onError(err)
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond // it had been healthy: retry quickly
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnce connects, listens and delivers notices until the connection fails.
func (l *Listener) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		return err
	}
	l.onConnect(ctx)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		revs, err := decodePayload(n.Payload)
		if err != nil {
			l.onError(err)
			continue
		}
		l.onNotice(revs)
	}
}
