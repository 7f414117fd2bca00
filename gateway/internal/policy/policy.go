// Package policy is the gateway's edge policy. It sits between the
// grpc-gateway handlers and the upstream connections, where it knows the
// exact RPC being called, and for every call, before anything leaves the
// process:
//
//  1. finds the RPC's access rule (platform/rbac); an RPC with no rule, or one
//     the gateway may not call, is refused;
//  2. rate-limits per client IP on public routes (strictly on the auth routes);
//  3. verifies the bearer token and checks the rule's roles on user routes,
//     and, on a staff operation, that a manager's or admin's token shows a
//     one-time code (rbac.Rule.CheckMFA, unless BANK_STAFF_MFA is off), then
//     rate-limits per user (and again, tighter, on money-moving routes);
//  4. copies the Idempotency-Key header into the request's idempotency_key
//     field, replacing whatever the body said;
//  5. replaces the outgoing metadata with exactly what the gateway vouches
//     for: the request id, the client IP and the verified token;
//  6. bounds the call with the upstream deadline.
//
// The services check everything again (tokens, roles, ownership,
// validation); the edge refuses early and cheaply, and is the only place that
// can limit by client IP.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	authzv1 "github.com/bastion-bank/bastion/proto/bank/authz/v1"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/platform/refusal"
	"github.com/bastion-bank/bastion/platform/wire"
)

// CallerName is the gateway's service identity, which each rule must admit.
const CallerName = "gateway"

// DefaultTimeout bounds every upstream call (BANK_UPSTREAM_TIMEOUT).
const DefaultTimeout = 5 * time.Second

// Config configures the policy. Verifier and Limiter are required.
type Config struct {
	Verifier identity.Verifier
	Limiter  ratelimit.Limiter
	Limits   Limits
	Counters refusal.Counters // optional
	Logger   *slog.Logger     // optional
	Timeout  time.Duration    // per upstream call; DefaultTimeout if zero
	StaffMFA rbac.MFAPolicy   // BANK_STAFF_MFA; the zero value requires a one-time code

	// RevocationsSynced, if set, must report true before any token is
	// accepted: until the revocation feed's first snapshot has arrived (or
	// once the feed has been lost for longer than authclient.MaxStaleness),
	// a revoked token could still verify, so user routes answer 503
	// instead.
	RevocationsSynced func() bool

	// Services are the gRPC services the gateway routes to. Every method's
	// rule is loaded at start-up, so a malformed rule stops the gateway
	// instead of opening a route.
	Services []protoreflect.ServiceDescriptor
}

// Policy applies the edge policy to calls made through Conn.
type Policy struct {
	cfg   Config
	rules map[string]rbac.Rule
	query map[string][]string // per method: the query parameters its route takes
}

// New loads the rule of every unary method of cfg.Services that the gateway
// may call. It fails if any rule is malformed or a limit is invalid.
func New(cfg Config) (*Policy, error) {
	if cfg.Verifier == nil || cfg.Limiter == nil {
		return nil, errors.New("policy: Verifier and Limiter are required")
	}
	if err := cfg.Limits.check(); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Counters == nil {
		cfg.Counters = refusal.Nop
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.StaffMFA.WarnIfOff(cfg.Logger)
	p := &Policy{cfg: cfg, rules: make(map[string]rbac.Rule), query: make(map[string][]string)}
	var problems []error
	for _, sd := range cfg.Services {
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i)
			rule, err := rbac.RuleOf(md)
			switch {
			case err != nil:
				problems = append(problems, err)
			case md.IsStreamingClient() || md.IsStreamingServer():
				// No public route streams; the edge never proxies a stream.
			case rule.ServiceOnly || !rule.AllowsCaller(CallerName):
				// Internal RPCs stay unreachable from the edge: no rule here.
			default:
				p.rules[rule.Method] = rule
				p.query[rule.Method], _ = QueryNames(md)
			}
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

// Conn returns a connection that applies the policy to every unary call
// before passing it to next. The grpc-gateway handlers are registered with
// it; the gateway's own calls (key set, revocations, health) use next
// directly, since no end user is behind them. Streams are refused.
func (p *Policy) Conn(next grpc.ClientConnInterface) grpc.ClientConnInterface {
	return &policedConn{p: p, next: next}
}

type policedConn struct {
	p    *Policy
	next grpc.ClientConnInterface
}

// Invoke admits the call under the policy, then makes it on the next
// connection with the context the policy built.
func (c *policedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	ctx, cancel, err := c.p.admit(ctx, method, args)
	if err != nil {
		return err
	}
	defer cancel()
	return c.next.Invoke(ctx, method, args, reply, opts...)
}

// NewStream refuses: no public route streams, so a stream through the edge
// would be a route nobody reviewed.
func (c *policedConn) NewStream(ctx context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	c.p.cfg.Counters.AuthzDenied(ctx, rbac.ReasonNoRule)
	return nil, errs.New(errs.Permission, "permission denied")
}

// admit runs steps 1 to 6 and returns the context to call upstream with.
func (p *Policy) admit(ctx context.Context, method string, args any) (context.Context, context.CancelFunc, error) {
	st, ok := edge.StateFrom(ctx)
	if !ok {
		return nil, nil, errs.Wrap(errs.Internal, "", errors.New("policy: request has no edge state"))
	}
	rule, ok := p.rules[method]
	if !ok {
		p.cfg.Counters.AuthzDenied(ctx, rbac.ReasonNoRule)
		return nil, nil, errs.New(errs.Permission, "permission denied")
	}
	msg, ok := args.(proto.Message)
	if !ok {
		return nil, nil, errs.Wrap(errs.Internal, "", fmt.Errorf("policy: %s request is not a proto message", method))
	}
	md := metadata.Pairs(wire.RequestID, st.RequestID)
	if st.ClientIP != "" {
		md.Set(wire.ClientIP, st.ClientIP)
	}
	if err := p.admitCaller(ctx, st, rule, msg, md); err != nil {
		return nil, nil, err
	}
	if err := checkQuery(st.RawQuery, p.query[method]); err != nil {
		p.cfg.Counters.ValidationFailed(ctx, "query_parameter")
		return nil, nil, err
	}
	if err := setIdempotencyKey(msg, st.IdempotencyKeys); err != nil {
		p.cfg.Counters.ValidationFailed(ctx, "idempotency_key")
		return nil, nil, err
	}
	// A fresh outgoing context: whatever grpc-gateway derived from the HTTP
	// request (x-forwarded-for, x-forwarded-host, grpcgateway-* keys, a
	// client's own Authorization on a public route) is dropped here.
	ctx = metadata.NewOutgoingContext(ctx, md)
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	return ctx, cancel, nil
}

// admitCaller limits a public call per client IP, or authenticates the user,
// checks the rule's roles and staff MFA, limits per user, and adds the
// verified token to md.
func (p *Policy) admitCaller(ctx context.Context, st *edge.State, rule rbac.Rule, msg proto.Message, md metadata.MD) error {
	class := ClassOf(rule)
	if !rule.NeedsUser() {
		return p.limit(ctx, st, st.ClientKey(), p.cfg.Limits.forIP(class))
	}
	if p.cfg.RevocationsSynced != nil && !p.cfg.RevocationsSynced() {
		p.cfg.Counters.TokenRejected(ctx, refusal.ReasonUnsynced)
		return errs.New(errs.Unavailable, "starting up")
	}
	raw, user, err := p.authenticate(ctx, st)
	if err != nil {
		return err
	}
	st.SetUser(user.ID)
	if err := rule.CheckRoles(user); err != nil {
		p.denied(ctx, err)
		return err
	}
	if err := rule.CheckMFA(user, msg, p.cfg.StaffMFA); err != nil {
		p.denied(ctx, err)
		return err
	}
	var limits [2]ratelimit.Limit
	if err := p.limit(ctx, st, "user:"+user.ID, p.cfg.Limits.forUser(class, &limits)...); err != nil {
		return err
	}
	md.Set(wire.Authorization, "Bearer "+raw)
	return nil
}

func (p *Policy) denied(ctx context.Context, err error) {
	var d *rbac.Denied
	reason := "denied"
	if errors.As(err, &d) {
		reason = d.Reason
	}
	p.cfg.Counters.AuthzDenied(ctx, reason)
}

// ClassOf resolves the rule's rate class; unspecified means per user when a
// user is needed and per client IP otherwise (authz.proto).
func ClassOf(r rbac.Rule) authzv1.RateClass {
	switch c := r.RateClass; {
	case c != authzv1.RateClass_RATE_CLASS_UNSPECIFIED:
		return c
	case r.NeedsUser():
		return authzv1.RateClass_RATE_CLASS_USER
	default:
		return authzv1.RateClass_RATE_CLASS_PUBLIC
	}
}
