// Package grpcserver builds every Bastion gRPC server the same way: mutual TLS
// only, and one chain of named steps in a fixed, documented order
// (docs/architecture.md; Server.Steps lists them), shared by unary calls and
// streams. After the stats handler (OpenTelemetry traces and RED metrics),
// for each call, outermost first:
//
//   - recover: a panic becomes Internal with a generic message; the process keeps serving
//   - log: one structured line per call, with the status code the caller got
//   - errors: domain error kinds become gRPC statuses (platform/grpcerr); internal
//     detail is logged with the trace id and never sent
//   - denials: every authorization denial below is counted and handed to
//     Config.Denials, the service's audit trail
//   - caller: the calling service, proven by its certificate, must be named by
//     the RPC's access rule; identity-looking metadata is dropped
//   - caller_limit: per calling service (a backstop; the edge limits per user and IP)
//   - authenticate: the end user's bearer token, verified here again; while
//     the verifier's list of revoked tokens is not current, refused with
//     Unavailable before the token is read (Config.RevocationsSynced)
//   - roles: the rule's roles
//   - validate: protovalidate rules from the .proto
//   - staff_mfa: a staff operation (the rule's staff_mfa) by a manager or
//     admin needs "otp" in the token's amr, unless Config.StaffMFA is off
//   - owner: the rule's owner check, through the service's OwnerResolver
//   - the service's own steps (Config.Steps), then the handler
//
// An RPC whose descriptor has no access rule is refused by the caller step, and Serve
// refuses to start if any registered method lacks one.
//
// Connections are recycled after Config.MaxConnectionAge, so a certificate
// rotation reaches connections that were open before it.
//
// The health service reports the overall status (service "") as SERVING
// only while the server serves and, if Config.RevocationsSynced is set, the
// revocation list is current: that is the readiness signal. LivenessService
// reports SERVING for as long as the server serves, whatever its
// dependencies, so a liveness probe does not restart a process that is
// only waiting for auth.
package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
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
	"github.com/bastion-bank/bastion/platform/refusal"
)

// PeerFunc returns the calling service's name from a verified peer certificate.
type PeerFunc func(ctx context.Context) (string, error)

// Config configures a server. Credentials, Peer and Logger are required.
type Config struct {
	Name         string                           // this service's identity, e.g. "accounts"
	Credentials  credentials.TransportCredentials // mTLS server credentials (platform/mtls)
	Peer         PeerFunc                         // calling service from the verified chain (platform/mtls)
	Verifier     identity.Verifier                // needed when any rule needs a user
	Owners       rbac.OwnerResolver               // needed when any rule has an owner check
	StaffMFA     rbac.MFAPolicy                   // BANK_STAFF_MFA; the zero value requires it
	Limiter      ratelimit.Limiter                // per-caller backstop; in-memory if nil
	CallerLimit  ratelimit.Limit                  // the backstop's limit; DefaultCallerLimit if zero
	Counters     refusal.Counters                 // optional; nil counts nothing
	Denials      DenialRecorder                   // the audit trail of denials; optional, nil audits none
	Steps        []Step                           // the service's own steps, run after the built-in ones
	StatsHandler stats.Handler                    // optional (otelgrpc.NewServerHandler)
	Logger       *slog.Logger
	StopTimeout  time.Duration // graceful-stop budget; default 10 s

	// RevocationsSynced, if set, reports whether the Verifier's list of
	// revoked tokens is current (platform/authclient.Verifier.Synced).
	// While it reports false, every call that needs a user is refused with
	// Unavailable before its token is read, and the health status is
	// NOT_SERVING: otherwise a token revoked while this process could not
	// hear of it would be accepted. Calls that carry no user (service-only
	// and public RPCs) are served as usual, since no revocation applies to
	// them. Set it whenever the Verifier learns revocations from another
	// process.
	RevocationsSynced func() bool

	// MaxConnectionAge bounds how long one client connection lives: when it
	// is reached (grpc-go adds ±10% jitter, so clients do not all reconnect
	// at once) the server sends GOAWAY and the client dials a new connection
	// for its next call, with a new handshake. Only a new handshake puts a
	// renewed certificate, a new CA or a removed peer into force; without a
	// maximum age a connection lives as long as both processes do.
	// Default DefaultMaxConnectionAge.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace is how long calls still running on an aged
	// connection may take to finish before it is closed under them; a
	// stream still open then (the revocation feed) ends with Unavailable and
	// its client reopens it on a new connection. Default
	// DefaultMaxConnectionAgeGrace.
	MaxConnectionAgeGrace time.Duration

	// StreamWorkers is how many goroutines serve calls, each one call at a
	// time, kept from call to call (grpc.NumStreamWorkers). A new goroutine
	// starts with a small stack and grows it, copying it each time, on
	// every call through the chain: 19 % of BenchmarkChain's CPU went to
	// that (runtime.newstack), 8 % of the ledger's at saturation. A worker's
	// stack stays grown. When every worker is busy, grpc-go serves the call
	// on a new goroutine as it would without workers, so a count too small
	// only costs that CPU and never makes a call wait. grpc-go marks the
	// option experimental. Default DefaultStreamWorkers.
	StreamWorkers uint32
}

// The defaults bound how long a connection outlives a certificate rotation
// to about half an hour, and leave a unary call (5 s deadline by default in
// platform/grpcclient) ample time to finish on the old connection.
const (
	DefaultMaxConnectionAge      = 30 * time.Minute
	DefaultMaxConnectionAgeGrace = 30 * time.Second
)

// DefaultStreamWorkers covers the calls a service has in flight from one
// gateway at its default bound (BANK_GATEWAY_MAX_IN_FLIGHT, 128): more
// calls than that at once take a new goroutine each, as before. An idle
// worker is a parked goroutine whose stack the garbage collector shrinks.
const DefaultStreamWorkers = 128

// LivenessService is the health service name that reports SERVING while the
// server serves, even when it refuses user calls for want of a current
// revocation list: for liveness and start-up probes, which restart a
// process, where the overall status ("") is for readiness.
const LivenessService = "liveness"

// syncPoll is how often Serve re-reads RevocationsSynced for the health
// status; calls are checked on arrival, so it only delays what probes see.
const syncPoll = 500 * time.Millisecond

// DefaultCallerLimit is the per-calling-service backstop: far above what the
// edge lets users send, it only stops a runaway or compromised peer.
var DefaultCallerLimit = ratelimit.Limit{Name: "caller", Rate: 5000, Period: time.Second, Burst: 10000}

// Server is a gRPC server with Bastion's chain and a health service.
type Server struct {
	cfg       Config
	steps     []Step
	grpc      *grpc.Server
	health    *health.Server
	validator protovalidate.Validator
	rules     map[string]rbac.Rule

	serving  atomic.Bool // between Serve starting and stopping
	healthMu sync.Mutex  // orders health updates and their logs; guards the two below
	logged   bool        // a revocation state has been logged
	wasSync  bool        // the last revocation state logged
}

// New builds a server. Register services on GRPC() before calling Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Credentials == nil || cfg.Peer == nil || cfg.Logger == nil {
		return nil, errors.New("grpcserver: Credentials, Peer and Logger are required: servers run with mTLS only")
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.MaxConnectionAge <= 0 {
		cfg.MaxConnectionAge = DefaultMaxConnectionAge
	}
	if cfg.MaxConnectionAgeGrace <= 0 {
		cfg.MaxConnectionAgeGrace = DefaultMaxConnectionAgeGrace
	}
	if cfg.StreamWorkers == 0 {
		cfg.StreamWorkers = DefaultStreamWorkers
	}
	if cfg.Counters == nil {
		cfg.Counters = refusal.Nop
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
	cfg.StaffMFA.WarnIfOff(cfg.Logger)
	s := &Server{cfg: cfg, validator: v, health: health.NewServer()}
	s.steps = append(s.builtin(), cfg.Steps...)
	if err := checkSteps(s.steps); err != nil {
		return nil, err
	}
	opts := []grpc.ServerOption{
		grpc.Creds(cfg.Credentials),
		grpc.UnaryInterceptor(s.unary),
		grpc.StreamInterceptor(s.stream),
		grpc.MaxRecvMsgSize(1 << 20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: cfg.MaxConnectionAge, MaxConnectionAgeGrace: cfg.MaxConnectionAgeGrace}),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.NumStreamWorkers(cfg.StreamWorkers),
	}
	if cfg.StatsHandler != nil {
		opts = append(opts, grpc.StatsHandler(cfg.StatsHandler))
	}
	s.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_NOT_SERVING)
	return s, nil
}

// GRPC returns the underlying server, to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// SetServing flips the health status reported to load balancers and the
// gateway. The overall status stays NOT_SERVING while the revocation list is
// not current, whatever ok says.
func (s *Server) SetServing(ok bool) {
	s.serving.Store(ok)
	s.updateHealth()
}

// revocationsSynced reports whether user calls may be admitted.
func (s *Server) revocationsSynced() bool {
	return s.cfg.RevocationsSynced == nil || s.cfg.RevocationsSynced()
}

// updateHealth sets both health statuses from the serving flag and the
// revocation list's state, and logs each change of the latter (while
// serving) once.
func (s *Server) updateHealth() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	serving := s.serving.Load()
	synced := s.revocationsSynced()
	s.health.SetServingStatus(LivenessService, healthStatus(serving))
	s.health.SetServingStatus("", healthStatus(serving && synced))
	if !serving || s.cfg.RevocationsSynced == nil || (s.logged && s.wasSync == synced) {
		return
	}
	s.logged, s.wasSync = true, synced
	if synced {
		s.cfg.Logger.Info("revocation list current: admitting user calls, health SERVING", "service", s.cfg.Name)
	} else {
		s.cfg.Logger.Warn("revocation list not current (auth's revocation feed not received yet, or lost for too long): "+
			"refusing user calls with UNAVAILABLE, health NOT_SERVING", "service", s.cfg.Name)
	}
}

func healthStatus(ok bool) healthpb.HealthCheckResponse_ServingStatus {
	if ok {
		return healthpb.HealthCheckResponse_SERVING
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}

// followSync keeps the health status in step with RevocationsSynced until
// ctx ends.
func (s *Server) followSync(ctx context.Context) {
	if s.cfg.RevocationsSynced == nil {
		return
	}
	t := time.NewTicker(syncPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.updateHealth()
		}
	}
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
			case r.StaffMFA != nil && (m.IsClientStream || m.IsServerStream):
				problems = append(problems, fmt.Errorf("%s: staff_mfa is not supported on streams", full))
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

// Serve checks the rules, reports SERVING (once the revocation list is
// current, if the server has RevocationsSynced) and serves lis until ctx is
// done, then reports NOT_SERVING and drains in-flight calls within
// StopTimeout.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if err := s.CheckRules(); err != nil {
		lis.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	s.SetServing(true)
	watchCtx, stopWatching := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); s.followSync(watchCtx) }()
	defer func() { stopWatching(); <-watched }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopWatching()
	<-watched
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
