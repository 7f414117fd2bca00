package authclient_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/platform/authclient"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/rbac"
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

// switchFeed is an auth service that can be down (refusing the revocation
// stream), up (a snapshot of set, then silence), and can cut every open
// stream, as a crash of auth or the network between would.
type switchFeed struct {
	authv1.UnimplementedRevocationServiceServer
	authv1.UnimplementedAuthServiceServer
	jwks    []token.JWK
	mu      sync.Mutex
	up      bool
	set     map[string]time.Time
	cut     chan struct{}
	refused int
}

func newSwitchFeed(jwks []token.JWK, revoked map[string]time.Time) *switchFeed {
	return &switchFeed{jwks: jwks, set: revoked, cut: make(chan struct{})}
}

func (f *switchFeed) WatchRevocations(_ *authv1.WatchRevocationsRequest, s grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	f.mu.Lock()
	if !f.up {
		f.refused++
		f.mu.Unlock()
		return status.Error(codes.Unavailable, "auth is down")
	}
	snap := &authv1.WatchRevocationsResponse{Snapshot: true}
	for jti, exp := range f.set {
		snap.Revocations = append(snap.Revocations, &authv1.Revocation{TokenId: jti, ExpiresAt: timestamppb.New(exp)})
	}
	cut := f.cut
	f.mu.Unlock()
	if err := s.Send(snap); err != nil {
		return err
	}
	select {
	case <-s.Context().Done():
		return nil
	case <-cut:
		return status.Error(codes.Unavailable, "auth went away")
	}
}

func (f *switchFeed) GetJWKS(context.Context, *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	return (&feed{jwks: f.jwks}).GetJWKS(context.Background(), nil)
}

// setUp brings auth up or takes it down; going down cuts the open streams.
func (f *switchFeed) setUp(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = up
	if !up {
		close(f.cut)
		f.cut = make(chan struct{})
		f.refused = 0
	}
}

func (f *switchFeed) refusals() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSyncedIsBoundedByStaleness: Synced is false before the first
// snapshot, stays true through a short loss of the feed, turns false once
// the feed has been gone for the staleness bound, and true again with the
// next snapshot.
func TestSyncedIsBoundedByStaleness(t *testing.T) {
	env := grpctest.New(t)
	f := newSwitchFeed(env.Keys.PublicKeys(), map[string]time.Time{})
	addr := env.Serve(t, "auth", func(s *grpc.Server) {
		authv1.RegisterRevocationServiceServer(s, f)
		authv1.RegisterAuthServiceServer(s, f)
	})
	clk := &fakeClock{}
	clk.ns.Store(time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := authclient.FollowWithin(ctx, env.Dial(t, "accounts", addr, "auth"), token.VerifierConfig{}, discard(), 30*time.Second, clk.Now)

	eventuallyWithin(t, 10*time.Second, "a refused first attempt", func() bool { return f.refusals() > 0 })
	if v.Synced() {
		t.Fatal("Synced before any snapshot")
	}
	f.setUp(true)
	eventuallyWithin(t, 10*time.Second, "the first snapshot", v.Synced)

	f.setUp(false) // cuts the stream; reconnects are refused
	eventuallyWithin(t, 10*time.Second, "a refused reconnect", func() bool { return f.refusals() > 0 })
	clk.Advance(29 * time.Second)
	if !v.Synced() {
		t.Error("Synced = false within the staleness bound: a blip of auth would stop every user call")
	}
	clk.Advance(time.Second)
	if v.Synced() {
		t.Error("Synced = true after the feed has been gone for the staleness bound")
	}
	f.setUp(true)
	eventuallyWithin(t, 10*time.Second, "the resynchronising snapshot", v.Synced)
}

// ledgerOfUsers stands in for any service with user RPCs.
type ledgerOfUsers struct {
	accountsv1.UnimplementedAccountsServiceServer
}

func (ledgerOfUsers) ListAccounts(context.Context, *accountsv1.ListAccountsRequest) (*accountsv1.ListAccountsResponse, error) {
	return &accountsv1.ListAccountsResponse{}, nil
}

// TestAServerFollowingAuthFailsClosed wires a server as the services do
// (platform/grpcserver, RevocationsSynced from this verifier) and attacks it
// with a token that was revoked before the server started, while auth is
// unreachable: it must never be accepted.
func TestAServerFollowingAuthFailsClosed(t *testing.T) {
	env := grpctest.New(t)
	revokedRaw, revoked, err := env.Signer.Sign("0b6e2f5c-7a51-4d0e-9c3b-2d8f1a4e6b70", []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	valid := env.Token(t, "1c7f3a6d-8b62-4e1f-ad4c-3e9a2b5f7c81", "user")
	f := newSwitchFeed(env.Keys.PublicKeys(), map[string]time.Time{revoked.ID: time.Now().Add(time.Hour)})
	authAddr := env.Serve(t, "auth", func(s *grpc.Server) {
		authv1.RegisterRevocationServiceServer(s, f)
		authv1.RegisterAuthServiceServer(s, f)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := authclient.Follow(ctx, env.Dial(t, "accounts", authAddr, "auth"),
		token.VerifierConfig{Issuer: grpctest.Issuer, Audience: grpctest.Audience}, discard())
	addr := env.Serve(t, "accounts", func(s *grpc.Server) { accountsv1.RegisterAccountsServiceServer(s, ledgerOfUsers{}) },
		func(c *grpcserver.Config) { c.Verifier, c.RevocationsSynced = v, v.Synced },
		grpctest.WithOwners(rbac.OwnerFunc(func(context.Context, string, string) ([]string, error) { return nil, nil })))
	conn := env.Dial(t, "gateway", addr, "accounts")
	client := accountsv1.NewAccountsServiceClient(conn)
	health := healthpb.NewHealthClient(conn)
	call := func(tok string) error {
		_, err := client.ListAccounts(grpctest.AsUser(context.Background(), tok), &accountsv1.ListAccountsRequest{})
		return err
	}

	eventuallyWithin(t, 10*time.Second, "a refused first attempt", func() bool { return f.refusals() > 0 })
	for name, tok := range map[string]string{"revoked": revokedRaw, "valid": valid} {
		if err := call(tok); status.Code(errors.Unwrap(err)) != codes.Unavailable {
			t.Errorf("ListAccounts(%s token) before the snapshot = %v, want UNAVAILABLE", name, err)
		}
	}
	if resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health before the snapshot = %v, %v; want NOT_SERVING", resp.GetStatus(), err)
	}

	f.setUp(true)
	eventuallyWithin(t, 10*time.Second, "SERVING", func() bool {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	if err := call(revokedRaw); errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("ListAccounts(revoked token) after the snapshot = %v, want Unauthenticated", err)
	}
	if err := call(valid); err != nil {
		t.Errorf("ListAccounts(valid token) after the snapshot = %v, want success", err)
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
