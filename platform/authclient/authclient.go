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

// Verifier is a token verifier fed by the auth service: keys from its JWKS,
// revocations from its feed. It is what the gateway and every service use.
type Verifier struct {
	*token.Verifier
	synced chan struct{}
	once   sync.Once
}

// Follow starts following the auth service over conn (until ctx ends) and
// returns a verifier using what it learns.
func Follow(ctx context.Context, conn grpc.ClientConnInterface, cfg token.VerifierConfig, logger *slog.Logger) *Verifier {
	keys := token.NewKeySet(KeySource(authv1.NewAuthServiceClient(conn)), token.KeySetConfig{})
	revoked := token.NewRevocationList()
	v := &Verifier{Verifier: token.NewVerifier(keys, cfg, revoked), synced: make(chan struct{})}
	f := &Follower{
		Client: authv1.NewRevocationServiceClient(conn), List: revoked, Logger: logger,
		Synced: func() { v.once.Do(func() { close(v.synced) }) },
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

// Synced reports whether the first snapshot of revocations has arrived.
func (v *Verifier) Synced() bool {
	select {
	case <-v.synced:
		return true
	default:
		return false
	}
}

// WaitSynced waits up to d for the first snapshot of revocations. Until it
// arrives, a token revoked before this process started could pass here.
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
