// Package authclient gives every verifier (the gateway and each service) what
// it needs from the auth service, over mTLS: the public signing keys (JWKS)
// and the live feed of revoked access tokens. It is the one implementation of
// "how a process learns which tokens to trust".
package authclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/token"
)

// KeySource returns a token.KeySource that fetches the JWKS from the auth
// service's GetJWKS RPC.
func KeySource(c authv1.AuthServiceClient) token.KeySource {
	return func(ctx context.Context) ([]token.JWK, error) {
		resp, err := c.GetJWKS(ctx, &authv1.GetJWKSRequest{})
		if err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
		keys := make([]token.JWK, 0, len(resp.GetKeys()))
		for _, k := range resp.GetKeys() {
			keys = append(keys, token.JWK{Kty: k.GetKty(), Crv: k.GetCrv(), X: k.GetX(), Kid: k.GetKid(), Alg: k.GetAlg(), Use: k.GetUse()})
		}
		return keys, nil
	}
}

// Follower keeps a RevocationList in step with the auth service's
// WatchRevocations stream: the first message of every stream is a snapshot
// that replaces the list, later ones add to it. It reconnects with jittered
// backoff, resynchronising each time.
type Follower struct {
	Client  authv1.RevocationServiceClient
	List    *token.RevocationList
	Logger  *slog.Logger
	MinWait time.Duration // first reconnect delay; default 100 ms
	MaxWait time.Duration // reconnect delay cap; default 5 s
	// Synced, if set, is called after each snapshot is applied.
	Synced func()
	// Lost, if set, is called when a stream that had delivered its
	// snapshot breaks: from then on the list may miss new revocations.
	Lost func()
}

// Run follows the feed until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	minWait, maxWait := f.MinWait, f.MaxWait
	if minWait <= 0 {
		minWait = 100 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	wait := minWait
	for ctx.Err() == nil {
		synced, err := f.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if synced {
			wait = minWait
			if f.Lost != nil {
				f.Lost()
			}
		}
		f.Logger.WarnContext(ctx, "revocation feed interrupted; reconnecting", "error", errString(err), "wait_ms", wait.Milliseconds())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, maxWait)
	}
}

// follow reads one stream until it breaks. It reports whether a snapshot arrived.
func (f *Follower) follow(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A stream has no deadline of its own: it lives as long as the process.
	stream, err := f.Client.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{}, grpc.WaitForReady(false))
	if err != nil {
		return false, err
	}
	synced := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			return synced, err
		}
		if msg.GetSnapshot() {
			all := make(map[string]time.Time, len(msg.GetRevocations()))
			for _, r := range msg.GetRevocations() {
				all[r.GetTokenId()] = r.GetExpiresAt().AsTime()
			}
			f.List.Replace(all)
			synced = true
			if f.Synced != nil {
				f.Synced()
			}
			continue
		}
		if !synced {
			return false, errors.New("revocation feed sent a delta before its snapshot")
		}
		for _, r := range msg.GetRevocations() {
			f.List.Add(r.GetTokenId(), r.GetExpiresAt().AsTime())
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "stream ended"
	}
	return err.Error()
}

// MaxStaleness is how long a verifier keeps trusting its list of revoked
// tokens after the feed breaks. Within it, a restart of auth or a network
// blip costs nothing (the follower reconnects and resynchronises in well
// under a second to a few seconds); past it, the list may be missing
// revocations that auth has made since, so Synced reports false and every
// verifier that asks refuses user calls until a fresh snapshot arrives.
// Revocations are a bank's way of ending a stolen or logged-out session
// before the token expires, so the platform prefers refusing to a window
// of unbounded length in which they silently do not apply.
const MaxStaleness = 30 * time.Second

// Verifier is a token verifier fed by the auth service: keys from its JWKS,
// revocations from its feed. It is what the gateway and every service use.
// Its Synced method is the fail-closed gate: until it reports true, a token
// revoked before this process heard of it would still pass Verify.
type Verifier struct {
	*token.Verifier
	synced   chan struct{} // closed at the first snapshot
	once     sync.Once
	now      func() time.Time
	maxStale time.Duration
	// state is 0 before the first snapshot, stateLive while a stream that
	// delivered its snapshot is open, and otherwise the UnixNano time that
	// stream broke.
	state atomic.Int64
}

// stateLive marks a live, synchronised feed in Verifier.state.
const stateLive = -1

// Follow starts following the auth service over conn (until ctx ends) and
// returns a verifier using what it learns; its list counts as current for
// MaxStaleness after the feed breaks.
func Follow(ctx context.Context, conn grpc.ClientConnInterface, cfg token.VerifierConfig, logger *slog.Logger) *Verifier {
	return FollowWithin(ctx, conn, cfg, logger, MaxStaleness, time.Now)
}

// FollowWithin is Follow with the staleness bound and the clock given, for
// tests that cannot wait MaxStaleness.
func FollowWithin(ctx context.Context, conn grpc.ClientConnInterface, cfg token.VerifierConfig, logger *slog.Logger,
	maxStale time.Duration, now func() time.Time) *Verifier {
	keys := token.NewKeySet(KeySource(authv1.NewAuthServiceClient(conn)), token.KeySetConfig{})
	revoked := token.NewRevocationList()
	v := &Verifier{Verifier: token.NewVerifier(keys, cfg, revoked), synced: make(chan struct{}), now: now, maxStale: maxStale}
	f := &Follower{
		Client: authv1.NewRevocationServiceClient(conn), List: revoked, Logger: logger,
		Synced: func() {
			v.state.Store(stateLive)
			v.once.Do(func() { close(v.synced) })
		},
		Lost: func() { v.state.Store(now().UnixNano()) },
	}
	go f.Run(ctx)
	go pruneEvery(ctx, time.Minute, revoked)
	return v
}

// pruneEvery forgets expired revocations now and then, so memory stays
// bounded by one token lifetime of revocations even when few arrive.
func pruneEvery(ctx context.Context, d time.Duration, l *token.RevocationList) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Prune()
		}
	}
}

// Synced reports whether the list of revoked tokens is current: the first
// snapshot has arrived, and the feed is live or broke less than the
// staleness bound ago. A feed that hangs without breaking is noticed by the
// connection's keepalive (platform/grpcclient) and then counts as broken.
// Every verifier refuses user calls while it reports false.
func (v *Verifier) Synced() bool {
	switch st := v.state.Load(); st {
	case 0:
		return false
	case stateLive:
		return true
	default:
		return v.now().Sub(time.Unix(0, st)) < v.maxStale
	}
}

// WaitSynced waits up to d for the first snapshot of revocations, for
// start-up logs. It decides nothing: callers gate on Synced.
func (v *Verifier) WaitSynced(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-v.synced:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
