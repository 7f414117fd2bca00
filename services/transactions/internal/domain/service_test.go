package domain

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// stubStore hands each money callback a fixed state, or fails the way a
// database does, and keeps what the service asked it to write. It checks
// no rule of its own: the Postgres store and its suite do that; these
// tests are about what the service decides and audits.
type stubStore struct {
	Store // the methods these tests never reach

	move    MoveState
	decide  DecideState
	fail    error // returned by Move and Decide instead of calling back
	posting *Posting
	audited []Event
}

func (s *stubStore) Move(_ context.Context, _ MoveLocks, f func(*MoveState) (*Posting, error)) error {
	if s.fail != nil {
		return s.fail
	}
	st := s.move
	p, err := f(&st)
	s.posting = p
	return err
}

func (s *stubStore) Decide(_ context.Context, _ string, f func(*DecideState) (*Posting, error)) error {
	if s.fail != nil {
		return s.fail
	}
	st := s.decide
	p, err := f(&st)
	s.posting = p
	return err
}

func (s *stubStore) Audit(_ context.Context, e Event) error {
	s.audited = append(s.audited, e)
	return nil
}

const (
	manager = "00000000-0000-4000-8000-0000000000ff"
	heldID  = "20000000-0000-4000-8000-000000000001"
)

func newService(t *testing.T, st *stubStore) *Service {
	t.Helper()
	s, err := New(st, Config{Limits: testLimits, NewID: func() string { return heldID }})
	if err != nil {
		t.Fatalf("New(%+v) = %v", testLimits, err)
	}
	return s
}

// pending is a transfer alice made that waits for approval.
func pending() DecideState {
	return DecideState{
		Transfer: Transfer{ID: heldID, From: acctA, To: acctB, Amount: 1000, Currency: "EUR",
			Kind: KindTransfer, InitiatedBy: alice, Status: StatusPendingApproval, HoldReason: HoldAmount},
		Accounts: map[string]Account{
			acctA: {ID: acctA, OwnerID: alice, Currency: "EUR", Status: AccountActive, Kind: AccountCustomer, Balance: 6000, Held: 1000},
			acctB: {ID: acctB, OwnerID: bob, Currency: "EUR", Status: AccountActive, Kind: AccountCustomer},
		},
	}
}

// TestNewRefusesLimits: every limit must be positive once the two that
// default from others are filled in; a zero maximum or threshold would let
// every amount through, or hold every one.
func TestNewRefusesLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Limits)
		ok   bool
	}{
		{"all set", func(*Limits) {}, true},
		{"daily threshold and deposit cap from their defaults", func(l *Limits) { l.ApprovalDailyThreshold, l.DepositDailyLimit = 0, 0 }, true},
		{"zero approval threshold", func(l *Limits) { l.ApprovalThreshold = 0 }, false},
		{"negative approval threshold", func(l *Limits) { l.ApprovalThreshold = -1 }, false},
		{"zero maximum", func(l *Limits) { l.MaxTransfer = 0 }, false},
		{"zero daily limit", func(l *Limits) { l.DailyLimit = 0 }, false},
		{"negative daily threshold", func(l *Limits) { l.ApprovalDailyThreshold = -1 }, false},
		{"daily threshold that cannot default", func(l *Limits) { l.ApprovalThreshold, l.ApprovalDailyThreshold = math.MaxInt64/3+1, 0 }, false},
		{"negative deposit cap", func(l *Limits) { l.DepositDailyLimit = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := testLimits
			tt.mod(&l)
			s, err := New(&stubStore{}, Config{Limits: l})
			if (err == nil) != tt.ok {
				t.Fatalf("New(%+v) = %v, want ok=%v", l, err, tt.ok)
			}
			if !tt.ok {
				return
			}
			want := l.withDefaults()
			if l.ApprovalDailyThreshold == 0 && (want.ApprovalDailyThreshold != 3*l.ApprovalThreshold || want.DepositDailyLimit != DefaultDepositDailyLimit) {
				t.Errorf("withDefaults(%+v) = %+v, want the daily threshold 3x the threshold and the default cap", l, want)
			}
			if s.limits != want {
				t.Errorf("New(%+v) uses limits %+v, want %+v", l, s.limits, want)
			}
		})
	}
}

// TestDecisionEvents: the audit event of a rejection carries its reason, so
// a reviewer reads why the money did not move; an approval carries none.
func TestDecisionEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		decide     func(*Service) (Transfer, error)
		action     string
		reason     string
		wantReason bool
	}{
		{"rejection", func(s *Service) (Transfer, error) {
			return s.Reject(context.Background(), identity.User{ID: manager}, heldID, "looks like fraud")
		}, "transfer.rejected", "looks like fraud", true},
		{"approval", func(s *Service) (Transfer, error) {
			return s.Approve(context.Background(), identity.User{ID: manager}, heldID)
		}, "transfer.approved", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &stubStore{decide: pending()}
			got, err := tt.decide(newService(t, st))
			if err != nil {
				t.Fatalf("%s = %v", tt.name, err)
			}
			ev := st.posting.Event
			if ev.Action != tt.action || ev.Actor != manager || ev.Subject != "transfer/"+heldID || got.Reason != tt.reason {
				t.Errorf("%s event = %+v (transfer reason %q), want %s by %s on transfer/%s", tt.name, ev, got.Reason, tt.action, manager, heldID)
			}
			if reason, ok := ev.Detail["reason"]; ok != tt.wantReason || reason != tt.reason {
				t.Errorf("%s event reason = %q (present %v), want %q", tt.name, reason, ok, tt.reason)
			}
		})
	}
}

// TestRefusalsAudited: a refusal under the rules or an authorization
// decision is written to the audit chain; a database failure or an
// in-flight retry is not (nobody decided anything), and reaches the caller
// unchanged.
func TestRefusalsAudited(t *testing.T) {
	t.Parallel()
	req := TransferRequest{From: acctA, To: acctB, Amount: 100, Currency: "EUR", IdempotencyKey: "k"}
	tests := []struct {
		name    string
		fail    error
		outcome string // of the audit event; "" for none
	}{
		{"a business rule", ErrInsufficientFunds, "refused"},
		{"not found", ErrAccountNotFound, "denied"},
		{"separation of duties", errs.Reasoned(errs.Permission, "separation_of_duties", "permission denied"), "denied"},
		{"database down", errs.Wrap(errs.Unavailable, "", errors.New("dial tcp: connection refused")), ""},
		{"database error", errs.Wrap(errs.Internal, "", errors.New("pq: deadlock detected")), ""},
		{"retry while in flight", ErrInFlight, ""},
		{"not an errs.Error", errors.New("context canceled"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &stubStore{fail: tt.fail}
			_, err := newService(t, st).Transfer(context.Background(), identity.User{ID: alice}, req)
			if !errors.Is(err, tt.fail) {
				t.Errorf("Transfer with the store failing with %v = %v, want that error", tt.fail, err)
			}
			switch {
			case tt.outcome == "" && len(st.audited) != 0:
				t.Errorf("Transfer refused by %s audited %+v, want nothing audited", tt.name, st.audited)
			case tt.outcome != "" && (len(st.audited) != 1 || st.audited[0].Outcome != tt.outcome || st.audited[0].Action != "transfer.refused"):
				t.Errorf("Transfer refused by %s audited %+v, want one transfer.refused %s", tt.name, st.audited, tt.outcome)
			}
		})
	}
}

// TestStoredResponseVersion: a replay answers with the stored first
// response only if it is of the shape this code writes; a record of
// another version (written by a later release, say) is an error, never a
// transfer read with fields missing.
func TestStoredResponseVersion(t *testing.T) {
	t.Parallel()
	req := TransferRequest{From: acctA, To: acctB, Amount: 100, Currency: "EUR", IdempotencyKey: "k"}
	first := Transfer{ID: heldID, From: acctA, To: acctB, Amount: 100, Currency: "EUR", Status: StatusCompleted,
		Kind: KindTransfer, InitiatedBy: alice, CreatedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	v1, err := encodeResponse(first)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		response []byte
		ok       bool
	}{
		{"version 1", v1, true},
		{"version 2", []byte(strings.Replace(string(v1), `"v":1`, `"v":2`, 1)), false},
		{"no version", []byte(strings.Replace(string(v1), `"v":1,`, ``, 1)), false},
		{"not JSON", []byte("{"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stored := &Stored{Fingerprint: req.fingerprint(), Response: tt.response}
			out, err := newService(t, &stubStore{move: MoveState{Stored: stored}}).Transfer(context.Background(), identity.User{ID: alice}, req)
			if tt.ok {
				if err != nil || !out.Replayed || out.Transfer.ID != first.ID || !out.Transfer.CreatedAt.Equal(first.CreatedAt) {
					t.Errorf("Transfer(replay of %s) = %+v, %v, want the stored transfer replayed", tt.name, out, err)
				}
				return
			}
			if errs.KindOf(err) != errs.Internal || out.Replayed {
				t.Errorf("Transfer(replay of %s) = %+v, %v, want an internal error", tt.name, out, err)
			}
		})
	}
}
