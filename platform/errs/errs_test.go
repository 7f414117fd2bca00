package errs_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

var errInsufficient = errs.Reasoned(errs.Refused, "insufficient_funds", "insufficient funds")

func TestKindsAndMessages(t *testing.T) {
	t.Parallel()
	cause := errors.New("SELECT balance FROM ledger.accounts: connection reset")
	tests := []struct {
		name     string
		err      error
		kind     errs.Kind
		safe     string
		contains string
	}{
		{"plain error", cause, errs.Other, "internal error", ""},
		{"internal hides message", errs.Wrap(errs.Internal, "load failed", cause), errs.Internal, "internal error", "connection reset"},
		{"wrapped twice", fmt.Errorf("transfer: %w", errs.Wrap(errs.NotFound, "account not found", cause)), errs.NotFound, "account not found", "connection reset"},
		{"no message uses the kind", errs.New(errs.Conflict, ""), errs.Conflict, "conflict", ""},
		{"invalid field", errs.InvalidField("amount", "must be > 0"), errs.Invalid, "invalid request", ""},
		{"throttled", errs.Throttled("login", "too many attempts", time.Minute), errs.RateLimited, "too many attempts", ""},
		{"nil", nil, errs.Other, "internal error", ""},
	}
	for _, tt := range tests {
		if got := errs.KindOf(tt.err); got != tt.kind {
			t.Errorf("KindOf(%s) = %v, want %v", tt.name, got, tt.kind)
		}
		if got := errs.SafeMessage(tt.err); got != tt.safe {
			t.Errorf("SafeMessage(%s) = %q, want %q", tt.name, got, tt.safe)
		}
		if tt.contains != "" && !containsStr(tt.err.Error(), tt.contains) {
			t.Errorf("Error(%s) = %q lacks the cause for the log", tt.name, tt.err.Error())
		}
	}
}

func TestSentinelsSurviveWrapping(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("post: %w", errs.Reasoned(errs.Refused, "insufficient_funds", "insufficient funds"))
	if !errors.Is(err, errInsufficient) {
		t.Error("errors.Is(wrapped copy, sentinel) = false")
	}
	if errors.Is(err, errs.Reasoned(errs.Refused, "frozen", "account frozen")) {
		t.Error("errors.Is matched a different reason")
	}
	if errors.Is(err, errors.New("insufficient funds")) {
		t.Error("errors.Is matched a plain error")
	}
}

func TestKindNames(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for k := errs.Other; k <= errs.Internal; k++ {
		if seen[k.String()] {
			t.Errorf("duplicate kind name %q", k.String())
		}
		seen[k.String()] = true
	}
	if errs.Kind(200).String() != "kind(200)" {
		t.Errorf("unknown kind name = %q", errs.Kind(200).String())
	}
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }
