package grpcserver_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/wire"
)

// failingFeed is a revocation feed whose stream fails the way a handler can.
type failingFeed struct {
	authv1.UnimplementedRevocationServiceServer
	fail func() error
}

func (f failingFeed) WatchRevocations(*authv1.WatchRevocationsRequest, grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	return f.fail()
}

// TestStreamFailures: a streaming handler's panic or error reaches the
// client exactly as a unary one's does: an internal failure as a bare
// "internal error" with the detail in the log only, a kinded error with its
// code and safe message, never a clean end of stream that reads as "no
// revocations".
func TestStreamFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fail      func() error
		code      codes.Code
		msg       string
		logged    string // in the server log; "" when nothing may be logged as internal
		notLogged string
	}{
		{"panic", func() error { panic("boom: secret stack detail") }, codes.Internal, "internal error", "panic in handler", ""},
		{"internal error", func() error { return errors.New(`pq: relation "revocations" does not exist at 10.0.0.5`) },
			codes.Internal, "internal error", "10.0.0.5", ""},
		{"kinded error", func() error { return errs.New(errs.Unavailable, "feed unavailable") },
			codes.Unavailable, "feed unavailable", "", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := grpctest.New(t)
			logs := &grpctest.SyncBuffer{}
			env.Logger = slog.New(slog.NewTextHandler(logs, nil))
			addr := env.Serve(t, "auth", func(s *grpc.Server) {
				authv1.RegisterRevocationServiceServer(s, failingFeed{fail: tt.fail})
			})
			stream, err := authv1.NewRevocationServiceClient(env.Dial(t, "gateway", addr, "auth")).WatchRevocations(ctxAs(t, ""), &authv1.WatchRevocationsRequest{})
			if err == nil {
				_, err = stream.Recv()
			}
			if st, _ := status.FromError(err); st.Code() != tt.code || st.Message() != tt.msg {
				t.Errorf("WatchRevocations failing with %s = %v, want %v %q", tt.name, err, tt.code, tt.msg)
			}
			if tt.logged != "" && !strings.Contains(logs.String(), tt.logged) {
				t.Errorf("server log after a stream's %s lacks %q:\n%s", tt.name, tt.logged, logs.String())
			}
			if tt.notLogged != "" && strings.Contains(logs.String(), tt.notLogged) {
				t.Errorf("server log after a stream's %s holds %q:\n%s", tt.name, tt.notLogged, logs.String())
			}
		})
	}
}

// TestClientIPLength: the client IP the gateway sends is believed up to 64
// bytes (an IPv6 address with a zone fits), and a longer value, which no
// address is, is dropped rather than handed to the login throttle as a key.
func TestClientIPLength(t *testing.T) {
	h := newHarness(t)
	tok := h.env.Token(t, alice, "user")
	tests := []struct {
		ip   string
		want string
	}{
		{strings.Repeat("1", 64), strings.Repeat("1", 64)},
		{strings.Repeat("1", 65), ""},
		{"198.51.100.7", "198.51.100.7"},
	}
	for _, tt := range tests {
		ctx := metadata.AppendToOutgoingContext(grpctest.AsUser(context.Background(), tok), wire.ClientIP, tt.ip)
		if _, err := h.client(t, "gateway").GetAccount(ctx, &accountsv1.GetAccountRequest{AccountId: aliceAcct}); err != nil {
			t.Fatalf("GetAccount = %v", err)
		}
		if got := h.svc.seen().clientIP; got != tt.want {
			t.Errorf("client IP of %d bytes from the gateway = %q, want %q", len(tt.ip), got, tt.want)
		}
	}
}

// TestForwardedMetadataLength: the request id (like traceparent and
// tracestate) reaches the handler up to 256 bytes and is dropped beyond, so
// a client cannot push a page of text into every log line of the call.
func TestForwardedMetadataLength(t *testing.T) {
	h := newHarness(t)
	tok := h.env.Token(t, alice, "user")
	tests := []struct {
		id   string
		want []string
	}{
		{"req-1", []string{"req-1"}},
		{strings.Repeat("r", 256), []string{strings.Repeat("r", 256)}},
		{strings.Repeat("r", 257), nil},
	}
	for _, tt := range tests {
		ctx := metadata.AppendToOutgoingContext(grpctest.AsUser(context.Background(), tok), wire.RequestID, tt.id)
		if _, err := h.client(t, "gateway").GetAccount(ctx, &accountsv1.GetAccountRequest{AccountId: aliceAcct}); err != nil {
			t.Fatalf("GetAccount = %v", err)
		}
		if got := h.svc.seen().md.Get(wire.RequestID); !slices.Equal(got, tt.want) {
			t.Errorf("request id of %d bytes reached the handler %d times, want %d", len(tt.id), len(got), len(tt.want))
		}
	}
}

// TestNewRequiresMTLS: a server is built only with credentials, a way to
// name the calling service from its certificate, and a logger; any one of
// them missing is refused, not filled in.
func TestNewRequiresMTLS(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	full := grpcserver.Config{
		Name: "accounts", Credentials: env.Source(t, "accounts").ServerCredentials(), Logger: env.Logger,
		Peer: func(context.Context) (string, error) { return "", errors.New("no peer") },
	}
	tests := []struct {
		name string
		drop func(*grpcserver.Config)
	}{
		{"no credentials", func(c *grpcserver.Config) { c.Credentials = nil }},
		{"no peer function", func(c *grpcserver.Config) { c.Peer = nil }},
		{"no logger", func(c *grpcserver.Config) { c.Logger = nil }},
	}
	for _, tt := range tests {
		cfg := full
		tt.drop(&cfg)
		if _, err := grpcserver.New(cfg); err == nil {
			t.Errorf("grpcserver.New(%s) = nil error, want refused", tt.name)
		}
	}
	if _, err := grpcserver.New(full); err != nil {
		t.Errorf("grpcserver.New(complete config) = %v", err)
	}
}

// TestCallerLimitByDefault: a server given no limiter still has the
// per-caller backstop (an in-memory one), so a service that forgets to
// wire Redis is not left without it.
func TestCallerLimitByDefault(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	addr := env.Serve(t, "transactions", func(s *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(s, ledger{})
	}, func(c *grpcserver.Config) {
		c.Limiter = nil
		c.CallerLimit = ratelimit.Limit{Name: "caller", Rate: 2, Period: time.Minute}
	})
	client := transactionsv1.NewLedgerServiceClient(env.Dial(t, "accounts", addr, "transactions"))
	req := &transactionsv1.GetBalancesRequest{AccountIds: []string{aliceAcct}}
	var kinds []errs.Kind
	for range 3 {
		_, err := client.GetBalances(ctxAs(t, ""), req)
		kinds = append(kinds, errs.KindOf(err))
	}
	if want := []errs.Kind{errs.Other, errs.Other, errs.RateLimited}; !slices.Equal(kinds, want) {
		t.Errorf("three calls with no limiter configured = %v, want %v", kinds, want)
	}
}
