package grpcserver

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// A Step is one named control of the chain. Run does the control's work for
// one call and continues the call by calling next with the context the rest
// of the chain should see, or refuses it by returning an error without
// calling next. The same Step serves unary calls and streams: what differs
// between them is kept in Call.
//
// A service adds its own controls through Config.Steps; they run after the
// built-in steps (so they see the verified caller, user and rule) and
// before the handler. A step that refuses with an *rbac.Denied has its
// denial counted and audited like the platform's own.
type Step struct {
	Name string
	Run  func(ctx context.Context, call *Call, next Next) error
}

// Next continues a call with ctx: the next step, and after the last one the
// RPC's handler.
type Next func(ctx context.Context) error

// Call is what the steps know of one call.
type Call struct {
	// Method is the full method, "/bank.accounts.v1.AccountsService/GetAccount".
	Method string
	// Stream reports whether the call is a stream.
	Stream bool
	// Rule is the method's access rule, set by the "caller" step; a step
	// after it may rely on it.
	Rule rbac.Rule

	req    any                                          // a unary call's request
	checks []func(context.Context, proto.Message) error // run on each message a stream receives
	inner  context.Context                              // the context of the innermost step reached
}

// OnMessage applies check to the request of a unary call, now, and to each
// message the handler of a stream receives, as it receives it.
func (c *Call) OnMessage(ctx context.Context, check func(context.Context, proto.Message) error) error {
	if c.Stream {
		c.checks = append(c.checks, check)
		return nil
	}
	msg, ok := c.req.(proto.Message)
	if !ok {
		return errs.Wrap(errs.Internal, "", fmt.Errorf("request of %s is not a proto message", c.Method))
	}
	return check(ctx, msg)
}

// Steps returns the names of the server's steps in the order they run,
// outermost first: the built-in chain (docs/architecture.md), then
// Config.Steps.
func (s *Server) Steps() []string {
	names := make([]string, len(s.steps))
	for i, st := range s.steps {
		names[i] = st.Name
	}
	return names
}

// checkSteps refuses a step without a name or a Run, and a name used twice.
func checkSteps(steps []Step) error {
	seen := make(map[string]bool, len(steps))
	for i, st := range steps {
		switch {
		case st.Name == "" || st.Run == nil:
			return fmt.Errorf("grpcserver: step %d (%q) needs a Name and a Run", i, st.Name)
		case seen[st.Name]:
			return fmt.Errorf("grpcserver: two steps are named %q", st.Name)
		}
		seen[st.Name] = true
	}
	return nil
}

// run runs the steps from i on, then handler.
func (s *Server) run(ctx context.Context, c *Call, i int, handler Next) error {
	c.inner = ctx
	if i == len(s.steps) {
		return handler(ctx)
	}
	return s.steps[i].Run(ctx, c, func(ctx context.Context) error { return s.run(ctx, c, i+1, handler) })
}

// unary runs the chain for a unary call.
func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	var resp any
	err := s.run(ctx, &Call{Method: info.FullMethod, req: req}, 0, func(ctx context.Context) error {
		var err error
		resp, err = h(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// stream runs the chain for a stream; the handler gets a stream that
// carries the chain's context and checks each message it receives.
func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	c := &Call{Method: info.FullMethod, Stream: true}
	return s.run(ss.Context(), c, 0, func(ctx context.Context) error {
		return h(srv, &checkedStream{ServerStream: ss, ctx: ctx, call: c})
	})
}

// checkedStream is a stream as its handler sees it.
type checkedStream struct {
	grpc.ServerStream
	ctx  context.Context
	call *Call
}

func (p *checkedStream) Context() context.Context { return p.ctx }

func (p *checkedStream) RecvMsg(m any) error {
	if err := p.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	msg, ok := m.(proto.Message)
	if !ok {
		return errs.Wrap(errs.Internal, "", errors.New("stream message is not a proto message"))
	}
	for _, check := range p.call.checks {
		if err := check(p.ctx, msg); err != nil {
			return err
		}
	}
	return nil
}
