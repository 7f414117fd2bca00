package domain_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/duties"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

func (f *fixture) ledgerStatus(t *testing.T, id string) domain.Status {
	t.Helper()
	a, ok := f.ledger.Account(id)
	if !ok {
		t.Fatalf("ledger has no account %s", id)
	}
	return a.Status
}

func (f *fixture) storedStatus(t *testing.T, id string) domain.Status {
	t.Helper()
	v, err := f.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s) error = %v", id, err)
	}
	return v.Status
}

func TestFreezeAndUnfreeze(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v := f.open(t, user())
	f.ledger.SetMoney(v.ID, 900, 100)
	mgr := user(identity.RoleManager)
	ctx := context.Background()

	got, err := f.svc.Freeze(ctx, mgr, v.ID, "suspected fraud")
	if err != nil {
		t.Fatalf("Freeze() error = %v", err)
	}
	if got.Status != domain.StatusFrozen || got.StatusReason != "suspected fraud" || got.StatusChangedBy != mgr.ID ||
		got.Balance != 900 || got.Available != 800 {
		t.Errorf("Freeze() = %+v, want FROZEN by %s with balances", got, mgr.ID)
	}
	if s := f.ledgerStatus(t, v.ID); s != domain.StatusFrozen {
		t.Errorf("ledger status after Freeze = %s, want FROZEN", s)
	}
	// Freezing again is fine and changes nothing, but is still audited.
	again, err := f.svc.Freeze(ctx, user(identity.RoleAdmin), v.ID, "second look")
	if err != nil || again.StatusReason != "suspected fraud" || again.StatusChangedBy != mgr.ID {
		t.Errorf("Freeze(frozen) = %+v, %v; want the first freeze kept", again, err)
	}
	if _, err := f.svc.Unfreeze(ctx, mgr, v.ID, "cleared"); err != nil {
		t.Fatalf("Unfreeze() error = %v", err)
	}
	if s := f.ledgerStatus(t, v.ID); s != domain.StatusActive {
		t.Errorf("ledger status after Unfreeze = %s, want ACTIVE", s)
	}
	if s := f.storedStatus(t, v.ID); s != domain.StatusActive {
		t.Errorf("status after Unfreeze = %s, want ACTIVE", s)
	}
	var actions []string
	for _, e := range f.repo.Events()[1:] {
		actions = append(actions, e.Action+"/"+e.Detail["from"]+"/"+e.Detail["to"]+"/"+e.Detail["reason"])
	}
	want := []string{
		"account.frozen/ACTIVE/FROZEN/suspected fraud",
		"account.frozen/FROZEN/FROZEN/second look",
		"account.unfrozen/FROZEN/ACTIVE/cleared",
	}
	if strings.Join(actions, "|") != strings.Join(want, "|") {
		t.Errorf("audit events = %q, want %q", actions, want)
	}
	for key, n := range map[string]int{"account.frozen:changed": 1, "account.frozen:unchanged": 1, "account.unfrozen:changed": 1} {
		if got := f.metrics.Count(key); got != n {
			t.Errorf("metric %s = %d, want %d", key, got, n)
		}
	}
}

func TestFreezeRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v := f.open(t, user())
	closed := domain.Account{ID: uuid.NewString(), OwnerID: uuid.NewString(), Currency: "EUR", Status: domain.StatusClosed}
	f.repo.Put(closed)
	mgr := user(identity.RoleManager)
	tests := []struct {
		name, id, reason string
		want             errs.Kind
	}{
		{"missing", uuid.NewString(), "x", errs.NotFound},
		{"malformed id", "../../etc", "x", errs.NotFound},
		{"closed", closed.ID, "x", errs.Refused},
		{"empty reason", v.ID, "", errs.Invalid},
		{"long reason", v.ID, strings.Repeat("r", 281), errs.Invalid},
		{"control in reason", v.ID, "ok\x1b[2J", errs.Invalid},
	}
	for _, tt := range tests {
		for name, op := range map[string]func(context.Context, identity.User, string, string) (domain.View, error){
			"Freeze": f.svc.Freeze, "Unfreeze": f.svc.Unfreeze,
		} {
			_, err := op(context.Background(), mgr, tt.id, tt.reason)
			wantKind(t, name+"("+tt.name+")", err, tt.want)
		}
	}
	if s := f.ledgerStatus(t, v.ID); s != domain.StatusActive {
		t.Errorf("ledger status after refusals = %s, want ACTIVE", s)
	}
	if got := len(f.repo.Events()); got != 1 {
		t.Errorf("audit events = %d, want 1 (the open only)", got)
	}
}

// If the ledger cannot apply a freeze, the freeze fails and nothing changes:
// a caller is never told an account is frozen when money can still move.
func TestFreezeLedgerFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v := f.open(t, user())
	f.ledger.Fail = func(method string, _ int) error {
		if method == "SetStatus" {
			return errs.New(errs.Unavailable, "ledger unavailable")
		}
		return nil
	}
	_, err := f.svc.Freeze(context.Background(), user(identity.RoleManager), v.ID, "fraud")
	wantKind(t, "Freeze(ledger down)", err, errs.Unavailable)
	if s := f.storedStatus(t, v.ID); s != domain.StatusActive {
		t.Errorf("status after failed Freeze = %s, want ACTIVE", s)
	}
}

// If the accounts commit fails after the ledger applied the change, the
// ledger is mended from the committed status.
func TestStatusCommitFailureMendsLedger(t *testing.T) {
	t.Parallel()
	lost := errs.New(errs.Unavailable, "database unavailable")
	tests := []struct {
		name       string
		start      domain.Status
		op         string
		mendFails  bool // the mend's own ledger call fails
		wantLedger domain.Status
	}{
		{"freeze, mend works", domain.StatusActive, "Freeze", false, domain.StatusActive},
		{"unfreeze, mend works", domain.StatusFrozen, "Unfreeze", false, domain.StatusFrozen},
		// When the mend fails too, the ledger fails closed.
		{"freeze, mend fails", domain.StatusActive, "Freeze", true, domain.StatusFrozen},
		{"unfreeze, mend fails", domain.StatusFrozen, "Unfreeze", true, domain.StatusFrozen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			v := f.open(t, user())
			mgr := user(identity.RoleManager)
			if tt.start == domain.StatusFrozen {
				if _, err := f.svc.Freeze(context.Background(), mgr, v.ID, "setup"); err != nil {
					t.Fatal(err)
				}
			}
			var commits, sets atomic.Int32
			f.repo.FailCommit = func() error {
				if commits.Add(1) == 1 {
					return lost
				}
				return nil
			}
			f.ledger.Fail = func(method string, _ int) error {
				// Call 1 applies the change, call 2 is the mend's copy.
				if method == "SetStatus" && sets.Add(1) == 2 && tt.mendFails {
					return errs.New(errs.Unavailable, "ledger unavailable")
				}
				return nil
			}
			op := f.svc.Freeze
			if tt.op == "Unfreeze" {
				op = f.svc.Unfreeze
			}
			_, err := op(context.Background(), mgr, v.ID, "attempt")
			if !errors.Is(err, lost) {
				t.Fatalf("%s(commit lost) error = %v, want %v", tt.op, err, lost)
			}
			// The error, for the log, says the mend failed, and names a
			// failed refreeze only if there was one (here it works).
			if msg := err.Error(); tt.mendFails && (!strings.Contains(msg, "mending the ledger status failed") || strings.Contains(msg, "refreezing")) {
				t.Errorf("%s(commit lost, mend fails) error = %q, want the mend's failure and no refreeze failure", tt.op, msg)
			}
			f.repo.FailCommit, f.ledger.Fail = nil, nil
			if s := f.storedStatus(t, v.ID); s != tt.start {
				t.Errorf("stored status = %s, want %s (unchanged)", s, tt.start)
			}
			if s := f.ledgerStatus(t, v.ID); s != tt.wantLedger {
				t.Errorf("ledger status = %s, want %s", s, tt.wantLedger)
			}
		})
	}
}

// A freeze that committed but whose balance read failed reports the error;
// the freeze itself stands, and repeating the call is harmless.
func TestFreezeBalanceReadFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v := f.open(t, user())
	f.ledger.Fail = func(method string, n int) error {
		if method == "Balances" && n == 0 {
			return errs.New(errs.Unavailable, "ledger unavailable")
		}
		return nil
	}
	mgr := user(identity.RoleManager)
	_, err := f.svc.Freeze(context.Background(), mgr, v.ID, "fraud")
	wantKind(t, "Freeze(balances down)", err, errs.Unavailable)
	if s := f.ledgerStatus(t, v.ID); s != domain.StatusFrozen {
		t.Errorf("ledger status = %s, want FROZEN", s)
	}
	if got, err := f.svc.Freeze(context.Background(), mgr, v.ID, "fraud"); err != nil || got.Status != domain.StatusFrozen {
		t.Errorf("Freeze(again) = %s, %v; want FROZEN, nil", got.Status, err)
	}
}

// Nobody freezes or unfreezes an account of their own: not a manager who
// wants to move money out of a frozen account, not an admin who would freeze
// their own to hide it. Each refusal changes nothing in either copy, is
// audited with the rule, and is counted.
func TestFreezeOwnAccountIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, role := range []string{identity.RoleManager, identity.RoleAdmin} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			insider := user(role)
			v := f.open(t, insider)
			other := user(identity.RoleManager)
			if _, err := f.svc.Freeze(ctx, other, v.ID, "investigation"); err != nil {
				t.Fatalf("Freeze(by another manager) = %v", err)
			}
			events := len(f.repo.Events())
			for name, call := range map[string]func() (domain.View, error){
				"unfreeze": func() (domain.View, error) { return f.svc.Unfreeze(ctx, insider, v.ID, "all good") },
				"freeze":   func() (domain.View, error) { return f.svc.Freeze(ctx, insider, v.ID, "again") },
				// An upper-case spelling of the id is still the owner.
				"unfreeze, id in upper case": func() (domain.View, error) {
					return f.svc.Unfreeze(ctx, identity.User{ID: strings.ToUpper(insider.ID), Roles: insider.Roles}, v.ID, "x")
				},
			} {
				_, err := call()
				if rule, ok := duties.RuleOf(err); !ok || rule != duties.OwnAccount || errs.KindOf(err) != errs.Permission {
					t.Errorf("%s own account = %v, want a separation-of-duties refusal", name, err)
				}
			}
			if s := f.storedStatus(t, v.ID); s != domain.StatusFrozen {
				t.Errorf("status after the refusals = %s, want FROZEN", s)
			}
			if s := f.ledgerStatus(t, v.ID); s != domain.StatusFrozen {
				t.Errorf("ledger status after the refusals = %s, want FROZEN", s)
			}
			denied := 0
			for _, e := range f.repo.Events()[events:] {
				if e.Outcome == domain.OutcomeDenied && e.Reason == duties.Reason && e.Detail["rule"] == string(duties.OwnAccount) {
					denied++
				}
			}
			if denied != 3 {
				t.Errorf("audited separation-of-duties refusals = %d, want 3", denied)
			}
			if got := f.metrics.Count(domain.EventDuties + ":own_account"); got != 3 {
				t.Errorf("metric separation_of_duties:own_account = %d, want 3", got)
			}
		})
	}
}
