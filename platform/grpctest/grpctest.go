// Package grpctest starts Bastion services in tests the way production runs
// them: real mutual TLS on loopback, the real interceptor chain from
// platform/grpcserver, and real signed access tokens. Tests then call the
// service with the generated client, as any calling service and any user.
//
// It is also the one home of what the tests of Bastion's programs share: a
// fake auth service (FakeAuth) for the processes that follow auth, a free
// loopback address (FreeAddr), a log sink safe to read while a program
// writes (SyncBuffer), health polling (WaitServing, WaitHealth) and a
// settable clock (Clock). A second copy of any of them in a test is a bug
// waiting to diverge.
package grpctest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/pki"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/platform/refusal"
	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/platform/wire"
)

// TrustDomain is the SPIFFE trust domain of test certificates.
const TrustDomain = "bastion.local"

// Issuer and Audience are the token claims test verifiers expect.
const (
	Issuer   = "bastion-test"
	Audience = "bastion-test-api"
)

// Services are the identities that get a certificate. "intruder" is a valid
// platform identity that no access rule names.
var Services = []string{"gateway", "auth", "accounts", "transactions", "intruder"}

// Env is one test's platform: a dev PKI, a signing key, a verifier and a
// revocation list shared by every server it starts.
type Env struct {
	PKIDir      string
	Signer      *token.Signer
	Keys        *token.KeyStore
	Verifier    *token.Verifier
	Revocations *token.RevocationList
	Logger      *slog.Logger
}

// New creates an Env whose files live in t.TempDir().
func New(t testing.TB) *Env {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Ensure(dir, Services, pki.Options{TrustDomain: TrustDomain}); err != nil {
		t.Fatalf("pki.Ensure: %v", err)
	}
	ks, err := token.OpenKeyStore(t.TempDir(), time.Now)
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) { return ks.PublicKeys(), nil }, token.KeySetConfig{})
	rev := token.NewRevocationList()
	return &Env{
		PKIDir:      dir,
		Keys:        ks,
		Signer:      token.NewSigner(ks, token.SignerConfig{Issuer: Issuer, Audience: Audience}),
		Verifier:    token.NewVerifier(keys, token.VerifierConfig{Issuer: Issuer, Audience: Audience}, rev),
		Revocations: rev,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// Source returns the hot-reloading TLS material of one identity.
func (e *Env) Source(t testing.TB, name string) *mtls.Source {
	t.Helper()
	src, err := mtls.NewSource(mtls.FilesIn(e.PKIDir, name), TrustDomain)
	if err != nil {
		t.Fatalf("mtls.NewSource(%s): %v", name, err)
	}
	return src
}

// ServerOption adjusts the server Config before the server is built.
type ServerOption func(*grpcserver.Config)

// WithOwners sets the ownership resolver.
func WithOwners(o rbac.OwnerResolver) ServerOption {
	return func(c *grpcserver.Config) { c.Owners = o }
}

// WithCounters records refusals.
func WithCounters(c refusal.Counters) ServerOption {
	return func(cfg *grpcserver.Config) { cfg.Counters = c }
}

// WithDenials audits the chain's authorization denials through d.
func WithDenials(d grpcserver.DenialRecorder) ServerOption {
	return func(cfg *grpcserver.Config) { cfg.Denials = d }
}

// Serve starts a server with identity name on a loopback port, lets register
// add services to it, and stops it when the test ends. It returns the address.
func (e *Env) Serve(t testing.TB, name string, register func(*grpc.Server), opts ...ServerOption) string {
	t.Helper()
	src := e.Source(t, name)
	cfg := grpcserver.Config{
		Name:        name,
		Credentials: src.ServerCredentials(),
		Peer:        func(ctx context.Context) (string, error) { return mtls.ServiceFromPeer(ctx, TrustDomain) },
		Verifier:    e.Verifier,
		Logger:      e.Logger,
		StopTimeout: time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := grpcserver.New(cfg)
	if err != nil {
		t.Fatalf("grpcserver.New: %v", err)
	}
	register(srv.GRPC())
	if err := srv.CheckRules(); err != nil {
		t.Fatalf("CheckRules: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// Dial connects to the server identity serverName at addr as the calling
// service as, with the platform dialer.
func (e *Env) Dial(t testing.TB, as, addr, serverName string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpcclient.Dial(addr, e.Source(t, as).ClientCredentials(serverName), grpcclient.Options{})
	if err != nil {
		t.Fatalf("Dial(%s as %s): %v", addr, as, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Token signs an access token for userID with roles, from a login with a
// password and a one-time code (amr ["pwd","otp"]): such a token may make
// staff operations. TokenAMR signs one from another kind of login.
func (e *Env) Token(t testing.TB, userID string, roles ...string) string {
	t.Helper()
	return e.TokenAMR(t, userID, []string{identity.AMRPassword, identity.AMROTP}, roles...)
}

// TokenAMR signs an access token for userID with roles and the amr claim
// amr: []string{identity.AMRPassword} is a password-only login.
func (e *Env) TokenAMR(t testing.TB, userID string, amr []string, roles ...string) string {
	t.Helper()
	raw, _, err := e.Signer.SignAMR(userID, roles, amr)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return raw
}

// AsUser returns a context that sends raw as the bearer token.
func AsUser(ctx context.Context, raw string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, wire.Authorization, "Bearer "+raw)
}

// ForeignToken signs a well-formed access token with a key the platform does
// not know, for tests that must see it refused.
func ForeignToken(t testing.TB, userID string, roles ...string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewKeyStoreFromKeys(map[string]ed25519.PrivateKey{"foreign": priv}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := token.NewSigner(ks, token.SignerConfig{Issuer: Issuer, Audience: Audience}).Sign(userID, roles)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
