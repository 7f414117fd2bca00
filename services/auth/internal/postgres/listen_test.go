package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/postgres"
)

// notices collects what a Listener delivers.
type notices struct {
	mu       sync.Mutex
	got      map[string]bool
	connects chan struct{}
}

func (n *notices) onNotice(revs []domain.Revocation) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, v := range revs {
		n.got[v.TokenID] = true
	}
}

func (n *notices) has(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got[id]
}

func (n *notices) waitFor(t *testing.T, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !n.has(id) {
		if time.Now().After(deadline) {
			t.Fatalf("revocation %s not announced within %v", id, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startListener(t *testing.T) (*postgres.Store, *notices, func() int) {
	t.Helper()
	repo, pool := openRepo(t)
	n := &notices{got: map[string]bool{}, connects: make(chan struct{}, 10)}
	ctx, cancel := context.WithCancel(context.Background())
	l := postgres.NewListener(pool, n.onNotice, func(context.Context) { n.connects <- struct{}{} }, func(error) {})
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitConnect := func() int {
		select {
		case <-n.connects:
			return 1
		case <-time.After(10 * time.Second):
			t.Fatal("listener did not connect")
			return 0
		}
	}
	waitConnect()
	return repo, n, waitConnect
}

func TestListenerHearsCommittedRevocationsOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, n, _ := startListener(t)
	rolledBack := "rb-" + uuid.NewString()
	_ = repo.InTx(ctx, func(tx domain.Tx) error {
		if err := tx.RevokeAccessTokens(ctx, []domain.Revocation{{TokenID: rolledBack, ExpiresAt: time.Now().Add(time.Minute)}}); err != nil {
			return err
		}
		return errs.New(errs.Refused, "roll back")
	})
	// Many in one transaction: more than one NOTIFY payload's worth.
	var revs []domain.Revocation
	for range 150 {
		revs = append(revs, domain.Revocation{TokenID: uuid.NewString(), ExpiresAt: time.Now().Add(time.Minute)})
	}
	if err := repo.InTx(ctx, func(tx domain.Tx) error { return tx.RevokeAccessTokens(ctx, revs) }); err != nil {
		t.Fatal(err)
	}
	for _, v := range revs {
		n.waitFor(t, v.TokenID, time.Second)
	}
	if n.has(rolledBack) {
		t.Errorf("a rolled-back revocation %s was announced", rolledBack)
	}
}

// TestListenerReconnects is not parallel: it kills every listener in the
// package database.
func TestListenerReconnects(t *testing.T) {
	ctx := context.Background()
	repo, n, waitConnect := startListener(t)
	_, pool := openRepo(t)
	// Kill the listener's connection from the server side, as a failover would.
	tag, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`)
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("terminate listener: %v (%d rows)", err, tag.RowsAffected())
	}
	waitConnect() // onConnect runs again, which is when the caller resyncs
	id := uuid.NewString()
	if err := repo.InTx(ctx, func(tx domain.Tx) error {
		return tx.RevokeAccessTokens(ctx, []domain.Revocation{{TokenID: id, ExpiresAt: time.Now().Add(time.Minute)}})
	}); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, id, time.Second)
}
