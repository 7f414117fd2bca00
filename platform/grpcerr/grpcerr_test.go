package grpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcerr"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	secret := errors.New(`pq: duplicate key value violates unique constraint "users_email_key" at 10.0.0.7`)
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"invalid", errs.InvalidField("amount", "must be greater than 0"), codes.InvalidArgument, "invalid request"},
		{"unauthenticated", errs.New(errs.Unauthenticated, "invalid token"), codes.Unauthenticated, "invalid token"},
		{"permission", errs.New(errs.Permission, "permission denied"), codes.PermissionDenied, "permission denied"},
		{"not found", errs.New(errs.NotFound, "account not found"), codes.NotFound, "account not found"},
		{"conflict keeps safe text, hides cause", errs.Wrap(errs.Conflict, "email already registered", secret), codes.AlreadyExists, "email already registered"},
		{"refused", errs.Reasoned(errs.Refused, "insufficient_funds", "insufficient funds"), codes.FailedPrecondition, "insufficient funds"},
		{"rate limited", errs.Throttled("login", "too many attempts", 3*time.Second), codes.ResourceExhausted, "too many attempts"},
		{"unavailable", errs.New(errs.Unavailable, "ledger unavailable"), codes.Unavailable, "ledger unavailable"},
		{"internal hides its message", errs.Wrap(errs.Internal, "select from users failed", secret), codes.Internal, "internal error"},
		{"plain error is internal", secret, codes.Internal, "internal error"},
		{"wrapped kind still found", fmt.Errorf("post transfer: %w", errs.New(errs.NotFound, "transfer not found")), codes.NotFound, "transfer not found"},
		{"raw grpc status keeps code not text", status.Error(codes.Unimplemented, "method Foo not implemented on 10.1.2.3"), codes.Unimplemented, "Unimplemented"},
		{"raw internal status is generic", status.Error(codes.Internal, "panic: runtime error at main.go:12"), codes.Internal, "internal error"},
		{"canceled", context.Canceled, codes.Canceled, "request canceled"},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := grpcerr.ToStatus(tt.err)
			if st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Errorf("ToStatus(%v) = %v %q, want %v %q", tt.err, st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
			wire := fmt.Sprint(st.Proto())
			for _, leak := range []string{"pq:", "10.0.0.7", "users_email_key", "main.go", "10.1.2.3"} {
				if strings.Contains(wire, leak) {
					t.Errorf("ToStatus(%v) leaks %q on the wire: %s", tt.err, leak, wire)
				}
			}
		})
	}
}

// TestRoundTrip proves a kind, its safe details and its reason survive an RPC hop.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []*errs.Error{
		{Kind: errs.Invalid, Msg: "invalid request", Violations: []errs.Violation{{Field: "amount", Message: "must be > 0"}, {Field: "currency", Message: "unsupported"}}},
		{Kind: errs.RateLimited, Reason: "login_throttled", Msg: "too many failed logins", RetryAfter: 90 * time.Second},
		{Kind: errs.Refused, Reason: "insufficient_funds", Msg: "insufficient funds"},
		{Kind: errs.NotFound, Msg: "account not found"},
		{Kind: errs.Conflict, Reason: "in_flight", Msg: "request with this key is in flight"},
		{Kind: errs.Permission, Msg: "permission denied"},
		{Kind: errs.Unauthenticated, Msg: "invalid token"},
	}
	for _, in := range tests {
		t.Run(in.Kind.String(), func(t *testing.T) {
			t.Parallel()
			got, ok := errs.As(grpcerr.FromError(grpcerr.ToStatus(in).Err()))
			if !ok {
				t.Fatalf("FromError(ToStatus(%v)) is not an *errs.Error", in)
			}
			got.Err = nil
			if diff := cmp.Diff(in, got); diff != "" {
				t.Errorf("round trip of %v (-want +got):\n%s", in, diff)
			}
		})
	}
}

func TestFromErrorUnknownCodesAreInternal(t *testing.T) {
	t.Parallel()
	for _, c := range []codes.Code{codes.Unknown, codes.Internal, codes.DataLoss, codes.Unimplemented} {
		err := grpcerr.FromError(status.Error(c, "SELECT * FROM secrets"))
		if k := errs.KindOf(err); k != errs.Internal {
			t.Errorf("FromError(%v) kind = %v, want internal", c, k)
		}
		if m := errs.SafeMessage(err); strings.Contains(m, "SELECT") {
			t.Errorf("FromError(%v) safe message %q leaks remote text", c, m)
		}
	}
	if k := errs.KindOf(grpcerr.FromError(status.Error(codes.DeadlineExceeded, "x"))); k != errs.Unavailable {
		t.Errorf("FromError(DeadlineExceeded) kind = %v, want unavailable", k)
	}
	if k := errs.KindOf(grpcerr.FromError(errors.New("connection refused"))); k != errs.Unavailable {
		t.Errorf("FromError(non-status) kind = %v, want unavailable", k)
	}
	if grpcerr.FromError(nil) != nil {
		t.Error("FromError(nil) != nil")
	}
}
