// Package grpcserver builds every Bastion gRPC server the same way: mutual TLS
// only, and one interceptor chain in a fixed, documented order.
//
// For each call, outermost first:
//
//  1. stats handler (OpenTelemetry traces and RED metrics)
//  2. recovery: a panic becomes Internal with a generic message; the process keeps serving
//  3. logging: one structured line per call, with the status code the caller got
//  4. errors: domain error kinds become gRPC statuses (platform/grpcerr); internal
//     detail is logged with the trace id and never sent
//  5. caller authorization: the calling service, proven by its certificate, must be
//     named by the RPC's access rule; identity-looking metadata is dropped
//  6. rate limit: per calling service (a backstop; the edge limits per user and IP)
//  7. authentication: the end user's bearer token, verified here again
//  8. RBAC: the rule's roles
//  9. validation: protovalidate rules from the .proto
//  10. ownership: the rule's owner check, through the service's OwnerResolver
//  11. the handler
//
// An RPC whose descriptor has no access rule is refused at step 5, and Serve
// refuses to start if any registered method lacks one.
package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// Verifier verifies an end user's access token (platform/token.Verifier).
type Verifier interface {
	Verify(ctx context.Context, raw string) (identity.User, error)
}

// Counters records refusals for the security dashboards
// (platform/telemetry.Security satisfies it).
type Counters interface {
	TokenRejected(ctx context.Context, reason string)
	AuthzDenied(ctx context.Context, reason string)
	ValidationFailed(ctx context.Context, reason string)
	RateLimited(ctx context.Context, reason string)
}

// PeerFunc returns the calling service's name from a verified peer certificate.
type PeerFunc func(ctx context.Context) (string, error)

// Config configures a server. Credentials, Peer and Logger are required.
type Config struct {
	Name         string                           // this service's identity, e.g. "accounts"
	Credentials  credentials.TransportCredentials // mTLS server credentials (platform/mtls)
	Peer         PeerFunc                         // calling service from the verified chain (platform/mtls)
	Verifier     Verifier                         // needed when any rule needs a user
	Owners       rbac.OwnerResolver               // needed when any rule has an owner check
	Limiter      ratelimit.Limiter                // per-caller backstop; in-memory if nil
	CallerLimit  ratelimit.Limit                  // the backstop's limit; DefaultCallerLimit if zero
	Counters     Counters                         // optional; nil counts nothing
	StatsHandler stats.Handler                    // optional (otelgrpc.NewServerHandler)
	Logger       *slog.Logger
	StopTimeout  time.Duration // graceful-stop budget; default 10 s
}

// DefaultCallerLimit is the per-calling-service backstop: far above what the
// edge lets users send, it only stops a runaway or compromised peer.
var DefaultCallerLimit = ratelimit.Limit{Name: "caller", Rate: 5000, Period: time.Second, Burst: 10000}

// Server is a gRPC server with Bastion's chain and a health service.
type Server struct {
	cfg       Config
	grpc      *grpc.Server
	health    *health.Server
	validator protovalidate.Validator
	rules     map[string]rbac.Rule
}

// New builds a server. Register services on GRPC() before calling Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Credentials == nil || cfg.Peer == nil || cfg.Logger == nil {
		return nil, errors.New("grpcserver: Credentials, Peer and Logger are required: servers run with mTLS only")
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Counters == nil {
		cfg.Counters = nopCounters{}
	}
	if cfg.Limiter == nil {
		cfg.Limiter = ratelimit.NewMemory(time.Now, 1024)
	}
	if cfg.CallerLimit == (ratelimit.Limit{}) {
		cfg.CallerLimit = DefaultCallerLimit
	}
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("grpcserver: validator: %w", err)
	}
	s := &Server{cfg: cfg, validator: v, health: health.NewServer()}
	opts := []grpc.ServerOption{
		grpc.Creds(cfg.Credentials),
		grpc.ChainUnaryInterceptor(s.unaryRecover, s.unaryLog, s.unaryErrors, s.unaryPolicy),
		grpc.ChainStreamInterceptor(s.streamRecover, s.streamLog, s.streamErrors, s.streamPolicy),
		grpc.MaxRecvMsgSize(1 << 20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(10 * time.Second),
	}
	if cfg.StatsHandler != nil {
		opts = append(opts, grpc.StatsHandler(cfg.StatsHandler))
	}
	s.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return s, nil
}

// GRPC returns the underlying server, to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// SetServing flips the health status reported to load balancers and the gateway.
func (s *Server) SetServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
}

// CheckRules loads the access rule of every registered method, and fails if
// any is missing or malformed, or needs a Verifier or OwnerResolver that the
// server was not given.
func (s *Server) CheckRules() error {
	rules := make(map[string]rbac.Rule)
	var problems []error
	for svc, info := range s.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			r, err := rbac.RuleFor(full)
			switch {
			case err != nil:
				problems = append(problems, err)
				continue
			case r.NeedsUser() && s.cfg.Verifier == nil:
				problems = append(problems, fmt.Errorf("%s needs a user but the server has no Verifier", full))
			case r.Owner != nil && s.cfg.Owners == nil:
				problems = append(problems, fmt.Errorf("%s has an owner check but the server has no OwnerResolver", full))
			case r.Owner != nil && (m.IsClientStream || m.IsServerStream):
				problems = append(problems, fmt.Errorf("%s: owner checks are not supported on streams", full))
			}
			rules[full] = r
		}
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("grpcserver: %w", err)
	}
	s.rules = rules
	return nil
}

// Serve checks the rules, reports SERVING and serves lis until ctx is done,
// then reports NOT_SERVING and drains in-flight calls within StopTimeout.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if err := s.CheckRules(); err != nil {
		lis.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	s.SetServing(true)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.SetServing(false)
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.StopTimeout):
		s.cfg.Logger.Warn("graceful stop timed out; closing remaining calls", "service", s.cfg.Name)
		s.grpc.Stop()
	}
	<-errc
	return nil
}

type nopCounters struct{}

func (nopCounters) TokenRejected(context.Context, string)    {}
func (nopCounters) AuthzDenied(context.Context, string)      {}
func (nopCounters) ValidationFailed(context.Context, string) {}
func (nopCounters) RateLimited(context.Context, string)      {}
