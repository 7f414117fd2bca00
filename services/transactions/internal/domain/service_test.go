package domain

import (
	"context"
	"errors"
	"fmt"
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
	pending []Transfer // the approval queue
	entries []Entry    // an account's history, newest first
	asked   int        // the limit PendingTransfers was last asked for
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

func (s *stubStore) PendingTransfers(_ context.Context, _ *QueueCursor, limit int) ([]Transfer, error) {
	s.asked = limit
	return s.pending[:min(limit, len(s.pending))], nil
}

func (s *stubStore) Accounts(_ context.Context, ids []string) ([]Account, error) {
	var out []Account
	for _, id := range ids {
		if a, ok := s.move.Accounts[id]; ok {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *stubStore) Entries(_ context.Context, _ string, _ int64, limit int) ([]Entry, error) {
	s.asked = limit
	return s.entries[:min(limit, len(s.entries))], nil
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
	s, err := New(st, Config{Limits: testLimits, NewID: func() string { return heldID }, PageTokens: testPages})
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
		{"the largest threshold whose daily threshold defaults", func(l *Limits) {
			l.ApprovalThreshold, l.MaxTransfer, l.ApprovalDailyThreshold = math.MaxInt64/3, math.MaxInt64, 0
		}, true},
		{"daily threshold that cannot default", func(l *Limits) { l.ApprovalThreshold, l.ApprovalDailyThreshold = math.MaxInt64/3+1, 0 }, false},
		{"negative deposit cap", func(l *Limits) { l.DepositDailyLimit = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := testLimits
			tt.mod(&l)
			s, err := New(&stubStore{}, Config{Limits: l, PageTokens: testPages})
			if (err == nil) != tt.ok {
				t.Fatalf("New(%+v) = %v, want ok=%v", l, err, tt.ok)
			}
			if !tt.ok {
				return
			}
			want := l.withDefaults()
			if l.ApprovalDailyThreshold == 0 && want.ApprovalDailyThreshold != 3*l.ApprovalThreshold {
				t.Errorf("withDefaults(%+v) = %+v, want the daily threshold 3x the threshold", l, want)
			}
			if l.DepositDailyLimit == 0 && want.DepositDailyLimit != DefaultDepositDailyLimit {
				t.Errorf("withDefaults(%+v) = %+v, want the default deposit cap", l, want)
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
			if ev.Action != tt.action || ev.Actor != manager || ev.Resource != "transfer/"+heldID || got.Reason != tt.reason {
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

// TestPendingTransfersPages: the queue is read a page at a time, of the
// default size when none is asked for and never more than the maximum, and
// a page that is exactly full is the last one when nothing follows it.
func TestPendingTransfersPages(t *testing.T) {
	t.Parallel()
	queue := func(n int) []Transfer {
		ts := make([]Transfer, n)
		for i := range ts {
			ts[i] = Transfer{ID: fmt.Sprintf("20000000-0000-4000-8000-%012d", i), CreatedAt: time.Unix(int64(i), 0)}
		}
		return ts
	}
	tests := []struct {
		name      string
		queued    int
		size      int
		wantAsked int // size+1: one more than the page, to see whether another follows
		wantLen   int
		wantNext  bool
	}{
		{"no size asked", 50, 0, DefaultPageSize + 1, DefaultPageSize, true},
		{"a negative size", 50, -1, DefaultPageSize + 1, DefaultPageSize, true},
		{"over the maximum", 500, MaxPageSize + 1, MaxPageSize + 1, MaxPageSize, true},
		{"exactly one full page", 5, 5, 6, 5, false},
		{"one more than a page", 6, 5, 6, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &stubStore{pending: queue(tt.queued)}
			page, err := newService(t, st).PendingTransfers(context.Background(), nil, tt.size)
			if err != nil || st.asked != tt.wantAsked || len(page.Transfers) != tt.wantLen || (page.Next != nil) != tt.wantNext {
				t.Errorf("PendingTransfers(size %d) of %d = %d transfers, next %v, %v (store asked for %d), want %d, next %v (asked %d)",
					tt.size, tt.queued, len(page.Transfers), page.Next, err, st.asked, tt.wantLen, tt.wantNext, tt.wantAsked)
			}
			if tt.wantNext && (page.Next.ID != page.Transfers[tt.wantLen-1].ID) {
				t.Errorf("PendingTransfers(size %d) next = %+v, want the last transfer of the page", tt.size, page.Next)
			}
		})
	}
}

// TestListEntriesPages: an account's history is read a page at a time like
// the queue, and only a customer account's.
func TestListEntriesPages(t *testing.T) {
	t.Parallel()
	history := func(n int) []Entry {
		es := make([]Entry, n)
		for i := range es {
			es[i] = Entry{AccountID: acctA, Seq: int64(n - i)}
		}
		return es
	}
	tests := []struct {
		name      string
		entries   int
		size      int
		wantAsked int
		wantLen   int
		wantNext  bool
	}{
		{"no size asked", 50, 0, DefaultPageSize + 1, DefaultPageSize, true},
		{"over the maximum", 500, MaxPageSize + 1, MaxPageSize + 1, MaxPageSize, true},
		{"exactly one full page", 5, 5, 6, 5, false},
		{"one more than a page", 6, 5, 6, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &stubStore{move: *state(), entries: history(tt.entries)}
			page, err := newService(t, st).ListEntries(context.Background(), acctA, 0, tt.size)
			if err != nil || st.asked != tt.wantAsked || len(page.Entries) != tt.wantLen || (page.Next != 0) != tt.wantNext {
				t.Errorf("ListEntries(size %d) of %d = %d entries, next %d, %v (store asked for %d), want %d, next %v (asked %d)",
					tt.size, tt.entries, len(page.Entries), page.Next, err, st.asked, tt.wantLen, tt.wantNext, tt.wantAsked)
			}
			if tt.wantNext && page.Next != page.Entries[tt.wantLen-1].Seq {
				t.Errorf("ListEntries(size %d) next = %d, want the last entry's seq %d", tt.size, page.Next, page.Entries[tt.wantLen-1].Seq)
			}
		})
	}
	settlement := &stubStore{move: *state(edit(acctA, func(a *Account) { a.Kind = AccountSettlement }))}
	if _, err := newService(t, settlement).ListEntries(context.Background(), acctA, 0, 0); !errors.Is(err, ErrAccountNotFound) {
		t.Errorf("ListEntries(settlement account) = %v, want %v", err, ErrAccountNotFound)
	}
}

// TestValidCurrency: a currency is three capital letters, A and Z included
// (AUD, ZAR), and the characters just outside them are not.
func TestValidCurrency(t *testing.T) {
	t.Parallel()
	for c, want := range map[string]bool{
		"EUR": true, "AUD": true, "ZAR": true,
		"@UD": false, "ZA[": false, "eur": false, "EU": false, "EURO": false, "": false,
	} {
		if got := validCurrency(c); got != want {
			t.Errorf("validCurrency(%q) = %v, want %v", c, got, want)
		}
	}
}
