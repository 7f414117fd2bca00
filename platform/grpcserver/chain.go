package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
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
)

// Metadata keys that Bastion's processes send each other.
const (
	// MDClientIP carries the end client's IP. Trusted only from the gateway.
	MDClientIP = "x-bank-client-ip"
	// MDRequestID carries the edge's request id, for log correlation.
	MDRequestID = "x-request-id"
)

// forwarded lists the only incoming metadata a handler ever sees. Everything
// else (x-user-id, x-roles, grpcgateway-*, x-forwarded-for …) is dropped, so
// no handler can be tricked into trusting a spoofed identity header. Baggage
// is dropped too: Bastion carries none, and the gateway never forwards a
// client's, so any that arrives is nothing a handler should read.
var forwarded = []string{MDRequestID, "traceparent", "tracestate"}

func (s *Server) unaryRecover(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.panicked(ctx, info.FullMethod, p)
		}
	}()
	return h(ctx, req)
}

func (s *Server) streamRecover(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.panicked(ss.Context(), info.FullMethod, p)
		}
	}()
	return h(srv, ss)
}

func (s *Server) panicked(ctx context.Context, method string, p any) error {
	s.cfg.Logger.ErrorContext(ctx, "panic in handler", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

func (s *Server) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		return nil, s.toStatus(ctx, info.FullMethod, err)
	}
	return resp, nil
}

func (s *Server) streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := h(srv, ss); err != nil {
		return s.toStatus(ss.Context(), info.FullMethod, err)
	}
	return nil
}

// toStatus is the one place a handler's error becomes what the caller sees.
func (s *Server) toStatus(ctx context.Context, method string, err error) error {
	st := grpcerr.ToStatus(err)
	if st.Code() == codes.Internal || st.Code() == codes.Unknown {
		s.cfg.Logger.ErrorContext(ctx, "internal error", "method", method, "error", err.Error())
	}
	return st.Err()
}

func (s *Server) unaryLog(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	s.logCall(ctx, info.FullMethod, start, err)
	return resp, err
}

func (s *Server) streamLog(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	s.logCall(ss.Context(), info.FullMethod, start, err)
	return err
}

func (s *Server) logCall(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	attrs := []any{"method", method, "code", code.String(), "duration_ms", time.Since(start).Milliseconds()}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ids := md.Get(MDRequestID); len(ids) == 1 {
			attrs = append(attrs, "request_id", ids[0])
		}
	}
	switch code {
	case codes.OK, codes.NotFound, codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition:
		s.cfg.Logger.InfoContext(ctx, "rpc", attrs...)
	default:
		s.cfg.Logger.WarnContext(ctx, "rpc", attrs...)
	}
}

// unaryPolicy runs steps 5 to 11 of the chain for a unary call.
func (s *Server) unaryPolicy(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	rule, ctx, err := s.admit(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	msg, ok := req.(proto.Message)
	if !ok {
		return nil, errs.Wrap(errs.Internal, "", fmt.Errorf("request of %s is not a proto message", info.FullMethod))
	}
	if err := s.validate(ctx, msg); err != nil {
		return nil, err
	}
	if user, ok := identity.UserFrom(ctx); ok {
		if err := rule.CheckMFA(user, msg, s.cfg.StaffMFA); err != nil {
			return nil, s.denied(ctx, err)
		}
		if err := rule.CheckOwner(ctx, user, msg, s.cfg.Owners); err != nil {
			return nil, s.denied(ctx, err)
		}
	}
	return h(ctx, req)
}

// streamPolicy runs the same steps for a stream; each received message is validated.
func (s *Server) streamPolicy(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	_, ctx, err := s.admit(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &policedStream{ServerStream: ss, ctx: ctx, s: s})
}

// admit runs caller authorization, the rate limit, authentication and the
// role check, returning the rule and a context carrying the verified principals.
func (s *Server) admit(ctx context.Context, method string) (rbac.Rule, context.Context, error) {
	rule, ok := s.rules[method]
	if !ok {
		s.cfg.Counters.AuthzDenied(ctx, rbac.ReasonNoRule)
		return rbac.Rule{}, ctx, errs.New(errs.Permission, "permission denied")
	}
	caller, err := s.cfg.Peer(ctx)
	if err != nil || !rule.AllowsCaller(caller) {
		s.cfg.Counters.AuthzDenied(ctx, rbac.ReasonCaller)
		return rule, ctx, errs.Wrap(errs.Permission, "permission denied", err)
	}
	ctx = s.scrub(ctx, caller)
	if err := s.limit(ctx, caller); err != nil {
		return rule, ctx, err
	}
	if rule.NeedsUser() {
		if !s.revocationsSynced() {
			s.cfg.Counters.TokenRejected(ctx, refusal.ReasonUnsynced)
			return rule, ctx, errUnsynced
		}
		if ctx, err = s.authenticate(ctx); err != nil {
			return rule, ctx, err
		}
		user, _ := identity.UserFrom(ctx)
		if err := rule.CheckRoles(user); err != nil {
			return rule, ctx, s.denied(ctx, err)
		}
	}
	return rule, ctx, nil
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
		if v := in.Get(MDClientIP); len(v) == 1 && len(v[0]) <= 64 {
			ctx = identity.WithClientIP(ctx, v[0])
		}
	}
	if auth := in.Get("authorization"); len(auth) > 0 {
		ctx = context.WithValue(ctx, bearerKey{}, auth)
	}
	return metadata.NewIncomingContext(ctx, out)
}

type bearerKey struct{}

// errUnsynced is what a user call gets while the revocation list is not
// current: retryable, and saying nothing about why.
var errUnsynced = errs.New(errs.Unavailable, "service unavailable")

func (s *Server) limit(ctx context.Context, caller string) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	res, err := s.cfg.Limiter.Allow(ctx, "svc:"+s.cfg.Name+":"+caller, s.cfg.CallerLimit)
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "rate limiter failed; allowing the call", "error", err.Error())
		return nil
	}
	if !res.Allowed {
		s.cfg.Counters.RateLimited(ctx, "caller")
		return errs.Throttled("caller", "too many requests", res.RetryAfter)
	}
	return nil
}

// authenticate verifies the one bearer token (token.Authenticate) and puts
// the user on the context.
func (s *Server) authenticate(ctx context.Context) (context.Context, error) {
	vals, _ := ctx.Value(bearerKey{}).([]string)
	raw, user, reason, err := token.Authenticate(ctx, s.cfg.Verifier, vals)
	if err != nil {
		s.cfg.Counters.TokenRejected(ctx, reason)
		return ctx, err
	}
	return identity.WithToken(identity.WithUser(ctx, user), raw), nil
}

func (s *Server) denied(ctx context.Context, err error) error {
	var d *rbac.Denied
	if errors.As(err, &d) {
		s.cfg.Counters.AuthzDenied(ctx, d.Reason)
	}
	return err
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

// policedStream validates every message the client sends and carries the
// context with the verified principals.
type policedStream struct {
	grpc.ServerStream
	ctx context.Context
	s   *Server
}

func (p *policedStream) Context() context.Context { return p.ctx }

func (p *policedStream) RecvMsg(m any) error {
	if err := p.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	msg, ok := m.(proto.Message)
	if !ok {
		return errs.Wrap(errs.Internal, "", fmt.Errorf("stream message is not a proto message"))
	}
	return p.s.validate(p.ctx, msg)
}
