package duties_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/bastion-bank/bastion/platform/duties"
	"github.com/bastion-bank/bastion/platform/errs"
)

const (
	manager = "6a1f0c5e-0a53-4c7e-9d3b-1f2b3c4d5e6f"
	other   = "0b7e6d5c-4b3a-4291-8f7e-6d5c4b3a2910"
	owner   = "9c8b7a69-5847-4362-a1b0-c9d8e7f6a5b4"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    duties.Action
		want duties.Rule // "" means allowed
		kind errs.Kind
	}{
		{"another's request on strangers' accounts", duties.Action{Actor: manager, Initiator: owner, Owners: []string{owner, other}}, "", 0},
		{"deposit into a customer's account", duties.Action{Actor: manager, Owners: []string{"", owner}}, "", 0},
		{"own request", duties.Action{Actor: manager, Initiator: manager, Owners: []string{owner, other}}, duties.Initiator, errs.Permission},
		{"own request into own account: initiator first", duties.Action{Actor: manager, Initiator: manager, Owners: []string{manager}}, duties.Initiator, errs.Permission},
		{"destination is own", duties.Action{Actor: manager, Initiator: owner, Owners: []string{owner, manager}}, duties.OwnAccount, errs.Permission},
		{"source is own", duties.Action{Actor: manager, Initiator: other, Owners: []string{manager, owner}}, duties.OwnAccount, errs.Permission},
		{"deposit into own account", duties.Action{Actor: manager, Owners: []string{"", manager}}, duties.OwnAccount, errs.Permission},
		{"freeze own account", duties.Action{Actor: manager, Owners: []string{manager}}, duties.OwnAccount, errs.Permission},
		{"own id in upper case", duties.Action{Actor: manager, Owners: []string{"6A1F0C5E-0A53-4C7E-9D3B-1F2B3C4D5E6F"}}, duties.OwnAccount, errs.Permission},
		{"own id with spaces as initiator", duties.Action{Actor: " " + manager, Initiator: manager}, duties.Initiator, errs.Permission},
		// A settlement account has no owner (""): an actor without an id
		// must not slip past as "not the owner" of everything.
		{"no actor", duties.Action{Owners: []string{"", owner}}, "", errs.Unauthenticated},
		{"no actor, no initiator", duties.Action{}, "", errs.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := duties.Check(tt.a)
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("Check(%+v) = %v, want nil", tt.a, err)
				}
				return
			}
			if got := errs.KindOf(err); got != tt.kind {
				t.Fatalf("Check(%+v) kind = %v, want %v (err %v)", tt.a, got, tt.kind, err)
			}
			rule, ok := duties.RuleOf(err)
			if rule != tt.want || ok != (tt.want != "") {
				t.Fatalf("RuleOf(Check(%+v)) = %q, %v, want %q", tt.a, rule, ok, tt.want)
			}
		})
	}
}

func TestRefusalShape(t *testing.T) {
	t.Parallel()
	for _, r := range []duties.Rule{duties.Initiator, duties.OwnAccount} {
		err := fmt.Errorf("decide: %w", duties.Refusal(r))
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.Permission || e.Reason != duties.Reason {
			t.Errorf("Refusal(%q) = %+v, want a Permission error with reason %q", r, e, duties.Reason)
		}
		if got := errs.SafeMessage(err); got == "" || got == string(r) {
			t.Errorf("SafeMessage(Refusal(%q)) = %q, want a message for the client", r, got)
		}
		if got, ok := duties.RuleOf(err); !ok || got != r {
			t.Errorf("RuleOf(wrapped Refusal(%q)) = %q, %v", r, got, ok)
		}
	}
	if _, ok := duties.RuleOf(errors.New("other")); ok {
		t.Error("RuleOf(other error) = true, want false")
	}
}
