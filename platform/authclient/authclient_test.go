package authclient_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/platform/authclient"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/token"
)

// feed is a revocation server whose streams the test drives: each stream
// sends a snapshot of the current set, then whatever is pushed.
type feed struct {
	authv1.UnimplementedRevocationServiceServer
	authv1.UnimplementedAuthServiceServer
	mu      sync.Mutex
	set     map[string]time.Time
	pushes  chan string
	streams int
	jwks    []token.JWK
}

func (f *feed) WatchRevocations(_ *authv1.WatchRevocationsRequest, s grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	f.mu.Lock()
	f.streams++
	snap := &authv1.WatchRevocationsResponse{Snapshot: true}
	for jti, exp := range f.set {
		snap.Revocations = append(snap.Revocations, &authv1.Revocation{TokenId: jti, ExpiresAt: timestamppb.New(exp)})
	}
	f.mu.Unlock()
	if err := s.Send(snap); err != nil {
		return err
	}
	for {
		select {
		case <-s.Context().Done():
			return nil
		case jti, ok := <-f.pushes:
			if !ok {
				return io.EOF // the server drops the stream
			}
			if err := s.Send(&authv1.WatchRevocationsResponse{Revocations: []*authv1.Revocation{{TokenId: jti, ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}}}); err != nil {
				return err
			}
		}
	}
}

func (f *feed) GetJWKS(context.Context, *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	out := &authv1.GetJWKSResponse{}
	for _, k := range f.jwks {
		out.Keys = append(out.Keys, &authv1.JWK{Kty: k.Kty, Crv: k.Crv, X: k.X, Kid: k.Kid, Alg: k.Alg, Use: k.Use})
	}
	return out, nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFollowerSyncsAndResyncs(t *testing.T) {
	env := grpctest.New(t)
	f := &feed{set: map[string]time.Time{"old": time.Now().Add(time.Hour)}, pushes: make(chan string)}
	addr := env.Serve(t, "auth", func(s *grpc.Server) { authv1.RegisterRevocationServiceServer(s, f) })
	list := token.NewRevocationList()
	list.Add("stale", time.Now().Add(time.Hour)) // not in the snapshot: must go
	var syncs sync.WaitGroup
	syncs.Add(1)
	once := sync.Once{}
	fol := &authclient.Follower{
		Client: authv1.NewRevocationServiceClient(env.Dial(t, "gateway", addr, "auth")),
		List:   list, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond,
		Synced: func() { once.Do(syncs.Done) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fol.Run(ctx); close(done) }()
	syncs.Wait()
	if !list.IsRevoked("old") || list.IsRevoked("stale") {
		t.Fatalf("after the snapshot: old=%v stale=%v", list.IsRevoked("old"), list.IsRevoked("stale"))
	}
	f.pushes <- "new"
	eventually(t, "a pushed revocation", func() bool { return list.IsRevoked("new") })

	// The server drops the stream; revocations made meanwhile arrive with the next snapshot.
	f.mu.Lock()
	f.set["while-away"] = time.Now().Add(time.Hour)
	f.mu.Unlock()
	close(f.pushes)
	eventually(t, "the resynchronising snapshot", func() bool { return list.IsRevoked("while-away") })
	cancel()
	<-done
}

func TestKeySourceFetchesTheJWKS(t *testing.T) {
	env := grpctest.New(t)
	f := &feed{jwks: env.Keys.PublicKeys()}
	addr := env.Serve(t, "auth", func(s *grpc.Server) { authv1.RegisterAuthServiceServer(s, f) })
	src := authclient.KeySource(authv1.NewAuthServiceClient(env.Dial(t, "accounts", addr, "auth")))
	keys := token.NewKeySet(src, token.KeySetConfig{})
	v := token.NewVerifier(keys, token.VerifierConfig{Issuer: grpctest.Issuer, Audience: grpctest.Audience}, nil)
	if _, err := v.Verify(context.Background(), env.Token(t, "0b6e2f5c-7a51-4d0e-9c3b-2d8f1a4e6b70", "user")); err != nil {
		t.Errorf("Verify with keys fetched over mTLS = %v", err)
	}
	// "intruder" may not fetch keys.
	bad := authclient.KeySource(authv1.NewAuthServiceClient(env.Dial(t, "intruder", addr, "auth")))
	if _, err := bad(context.Background()); err == nil {
		t.Error("an identity not named by the rule fetched the JWKS")
	}
}

func TestFollowWaitsForTheFirstSnapshot(t *testing.T) {
	env := grpctest.New(t)
	f := &feed{set: map[string]time.Time{"gone": time.Now().Add(time.Hour)}, pushes: make(chan string), jwks: env.Keys.PublicKeys()}
	addr := env.Serve(t, "auth", func(s *grpc.Server) {
		authv1.RegisterRevocationServiceServer(s, f)
		authv1.RegisterAuthServiceServer(s, f)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	v := authclient.Follow(ctx, env.Dial(t, "gateway", addr, "auth"), token.VerifierConfig{Issuer: grpctest.Issuer, Audience: grpctest.Audience}, logger)
	if !v.WaitSynced(ctx, 5*time.Second) || !v.Synced() {
		t.Fatal("the first snapshot never arrived")
	}
	if _, err := v.Verify(ctx, env.Token(t, "0b6e2f5c-7a51-4d0e-9c3b-2d8f1a4e6b70", "user")); err != nil {
		t.Errorf("Verify = %v", err)
	}
	dead := authclient.Follow(ctx, env.Dial(t, "gateway", "127.0.0.1:1", "auth"), token.VerifierConfig{}, logger)
	if dead.WaitSynced(ctx, 200*time.Millisecond) || dead.Synced() {
		t.Error("a verifier with no auth service reports synced")
	}
}
