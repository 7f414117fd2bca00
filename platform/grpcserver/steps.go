package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcerr"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/platform/refusal"
	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/platform/wire"
)

// builtin is the chain every server runs, outermost first, in the order
// docs/architecture.md gives (a test holds the two together).
func (s *Server) builtin() []Step {
	return []Step{
		{"recover", s.recoverStep},
		{"log", s.logStep},
		{"errors", s.errorsStep},
		{"denials", s.denialsStep},
		{"caller", s.callerStep},
		{"caller_limit", s.limitStep},
		{"authenticate", s.authenticateStep},
		{"roles", s.rolesStep},
		{"validate", s.validateStep},
		{"staff_mfa", s.mfaStep},
		{"owner", s.ownerStep},
	}
}

// forwarded lists the only incoming metadata a handler ever sees. Everything
// else (x-user-id, x-roles, grpcgateway-*, x-forwarded-for …) is dropped, so
// no handler can be tricked into trusting a spoofed identity header. Baggage
// is dropped too: Bastion carries none, and the gateway never forwards a
// client's, so any that arrives is nothing a handler should read.
var forwarded = []string{wire.RequestID, "traceparent", "tracestate"}

// recoverStep turns a panic into Internal with a generic message; the
// process keeps serving.
func (s *Server) recoverStep(ctx context.Context, c *Call, next Next) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.ErrorContext(ctx, "panic in handler", "method", c.Method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return next(ctx)
}

// logStep writes one line per call, with the status code the caller got.
func (s *Server) logStep(ctx context.Context, c *Call, next Next) error {
	start := time.Now()
	err := next(ctx)
	code := status.Code(err)
	attrs := []any{"method", c.Method, "code", code.String(), "duration_ms", time.Since(start).Milliseconds()}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ids := md.Get(wire.RequestID); len(ids) == 1 {
			attrs = append(attrs, "request_id", ids[0])
		}
	}
	switch code {
	case codes.OK, codes.NotFound, codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition:
		s.cfg.Logger.InfoContext(ctx, "rpc", attrs...)
	default:
		s.cfg.Logger.WarnContext(ctx, "rpc", attrs...)
	}
	return err
}

// errorsStep is the one place an error becomes what the caller sees
// (platform/grpcerr): internal detail is logged, never sent.
func (s *Server) errorsStep(ctx context.Context, c *Call, next Next) error {
	err := next(ctx)
	if err == nil {
		return nil
	}
	st := grpcerr.ToStatus(err)
	if st.Code() == codes.Internal || st.Code() == codes.Unknown {
		s.cfg.Logger.ErrorContext(ctx, "internal error", "method", c.Method, "error", err.Error())
	}
	return st.Err()
}

// callerStep admits only a calling service the method's rule names, proven
// by its certificate, and replaces the incoming metadata with what a
// handler may see. A method without a rule is refused.
func (s *Server) callerStep(ctx context.Context, c *Call, next Next) error {
	rule, ok := s.rules[c.Method]
	if !ok {
		return &rbac.Denied{Reason: rbac.ReasonNoRule, Err: errs.New(errs.Permission, "permission denied")}
	}
	c.Rule = rule
	caller, err := s.cfg.Peer(ctx)
	if err != nil || !rule.AllowsCaller(caller) {
		return &rbac.Denied{Reason: rbac.ReasonCaller, Err: errs.Wrap(errs.Permission, "permission denied", err)}
	}
	return next(s.scrub(ctx, caller))
}

// scrub records the verified caller and replaces the incoming metadata with
// the allowlisted keys. The client IP is believed only from the gateway.
func (s *Server) scrub(ctx context.Context, caller string) context.Context {
	ctx = identity.WithService(ctx, caller)
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for _, k := range forwarded {
		if v := in.Get(k); len(v) == 1 && len(v[0]) <= 256 {
			out.Set(k, v[0])
		}
	}
	if caller == "gateway" {
		if v := in.Get(wire.ClientIP); len(v) == 1 && len(v[0]) <= 64 {
			ctx = identity.WithClientIP(ctx, v[0])
		}
	}
	if auth := in.Get(wire.Authorization); len(auth) > 0 {
		ctx = context.WithValue(ctx, bearerKey{}, auth)
	}
	return metadata.NewIncomingContext(ctx, out)
}

type bearerKey struct{}

// limitStep limits each calling service (a backstop; the edge limits per
// user and IP). A limiter that cannot decide lets the call through.
func (s *Server) limitStep(ctx context.Context, _ *Call, next Next) error {
	caller, _ := identity.ServiceFrom(ctx)
	res, err := s.cfg.Limiter.Allow(ctx, "svc:"+s.cfg.Name+":"+caller, s.cfg.CallerLimit)
	switch {
	case err != nil:
		s.cfg.Logger.WarnContext(ctx, "rate limiter failed; allowing the call", "error", err.Error())
	case !res.Allowed:
		s.cfg.Counters.RateLimited(ctx, "caller")
		return errs.Throttled("caller", "too many requests", res.RetryAfter)
	}
	return next(ctx)
}

// errUnsynced is what a user call gets while the revocation list is not
// current: retryable, and saying nothing about why.
var errUnsynced = errs.New(errs.Unavailable, "service unavailable")

// authenticateStep verifies the end user's one bearer token
// (token.Authenticate) when the rule needs a user, and puts the user on the
// context. While the revocation list is not current the call is refused
// before the token is read.
func (s *Server) authenticateStep(ctx context.Context, c *Call, next Next) error {
	if !c.Rule.NeedsUser() {
		return next(ctx)
	}
	if !s.revocationsSynced() {
		s.cfg.Counters.TokenRejected(ctx, refusal.ReasonUnsynced)
		return errUnsynced
	}
	vals, _ := ctx.Value(bearerKey{}).([]string)
	_, user, reason, err := token.Authenticate(ctx, s.cfg.Verifier, vals)
	if err != nil {
		s.cfg.Counters.TokenRejected(ctx, reason)
		return err
	}
	return next(identity.WithUser(ctx, user))
}

// rolesStep checks the rule's roles against the verified user.
func (s *Server) rolesStep(ctx context.Context, c *Call, next Next) error {
	if c.Rule.NeedsUser() {
		user, _ := identity.UserFrom(ctx)
		if err := c.Rule.CheckRoles(user); err != nil {
			return err
		}
	}
	return next(ctx)
}

// validateStep checks every message against the .proto's rules.
func (s *Server) validateStep(ctx context.Context, c *Call, next Next) error {
	if err := c.OnMessage(ctx, s.validate); err != nil {
		return err
	}
	return next(ctx)
}

// mfaStep asks a manager's or admin's token for a one-time code on a staff
// operation (the rule's staff_mfa), unless Config.StaffMFA is off.
func (s *Server) mfaStep(ctx context.Context, c *Call, next Next) error {
	if user, ok := identity.UserFrom(ctx); ok {
		err := c.OnMessage(ctx, func(_ context.Context, msg proto.Message) error {
			return c.Rule.CheckMFA(user, msg, s.cfg.StaffMFA)
		})
		if err != nil {
			return err
		}
	}
	return next(ctx)
}

// ownerStep applies the rule's owner check through Config.Owners.
func (s *Server) ownerStep(ctx context.Context, c *Call, next Next) error {
	if user, ok := identity.UserFrom(ctx); ok {
		err := c.OnMessage(ctx, func(ctx context.Context, msg proto.Message) error {
			return c.Rule.CheckOwner(ctx, user, msg, s.cfg.Owners)
		})
		if err != nil {
			return err
		}
	}
	return next(ctx)
}

// validate refuses control characters in any string (CheckText), then
// applies the protovalidate rules, and reports every violation with its JSON
// field name, as the edge shows it.
func (s *Server) validate(ctx context.Context, msg proto.Message) error {
	if err := CheckText(msg); err != nil {
		s.cfg.Counters.ValidationFailed(ctx, ReasonControlChar)
		return err
	}
	err := s.validator.Validate(msg)
	if err == nil {
		return nil
	}
	var ve *protovalidate.ValidationError
	if !errors.As(err, &ve) {
		return errs.Wrap(errs.Internal, "", fmt.Errorf("validate: %w", err))
	}
	out := &errs.Error{Kind: errs.Invalid, Msg: "invalid request"}
	for _, v := range ve.Violations {
		field := jsonPath(protovalidate.FieldPathString(v.Proto.GetField()))
		out.Violations = append(out.Violations, errs.Violation{Field: field, Message: v.Proto.GetMessage()})
		s.cfg.Counters.ValidationFailed(ctx, v.Proto.GetRuleId())
	}
	return out
}

// jsonPath turns a proto field path ("from_account_id", "roles[1]") into the
// lowerCamelCase names clients send.
func jsonPath(p string) string {
	var b strings.Builder
	upper := false
	for _, r := range p {
		switch {
		case r == '_':
			upper = true
		case upper && r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
			upper = false
		default:
			b.WriteRune(r)
			upper = false
		}
	}
	return b.String()
}
