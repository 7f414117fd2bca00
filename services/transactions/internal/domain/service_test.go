package domain

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

	auditFail error // returned by Audit instead of recording
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
	if s.auditFail != nil {
		return s.auditFail
	}
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

// errStoreReached is what a stubStore configured with it answers every
// money movement: a test that gets it back knows the request passed every
// check made before the store was asked.
var errStoreReached = errors.New("the store was reached")

// TestRequestsCheckedBeforeTheStore: a transfer or deposit with no user, no
// idempotency key, an amount that is not positive (zero included), no
// reference or an account id that is not one is refused before anything
// is locked or written; the closest valid request reaches the store.
func TestRequestsCheckedBeforeTheStore(t *testing.T) {
	t.Parallel()
	transfer := TransferRequest{From: acctA, To: acctB, Amount: 1, Currency: "EUR", IdempotencyKey: "k"}
	deposit := DepositRequest{AccountID: acctB, Amount: 1, Currency: "EUR", Reference: "cash", IdempotencyKey: "k"}
	invalid := func(field string) error { return errs.InvalidField(field, "") }
	tests := []struct {
		name string
		user string
		tr   func(*TransferRequest) // a transfer when set, else a deposit
		dep  func(*DepositRequest)
		want error // errStoreReached: passed every check
	}{
		{name: "transfer: valid", tr: func(*TransferRequest) {}, want: errStoreReached},
		{name: "transfer: ids in capitals are the same ids", tr: func(r *TransferRequest) { r.From = strings.ToUpper(r.From) }, want: errStoreReached},
		{name: "transfer: no user", user: "-", tr: func(*TransferRequest) {}, want: ErrNotAuthenticated},
		{name: "transfer: no idempotency key", tr: func(r *TransferRequest) { r.IdempotencyKey = "" }, want: ErrMissingKey},
		{name: "transfer: zero amount", tr: func(r *TransferRequest) { r.Amount = 0 }, want: invalid("amount")},
		{name: "transfer: negative amount", tr: func(r *TransferRequest) { r.Amount = -1 }, want: invalid("amount")},
		{name: "transfer: source not an id", tr: func(r *TransferRequest) { r.From = "x" }, want: ErrAccountNotFound},
		{name: "transfer: target not an id", tr: func(r *TransferRequest) { r.To = "x" }, want: ErrAccountNotFound},
		{name: "transfer: to the same account, spelt differently", tr: func(r *TransferRequest) { r.To = strings.ToUpper(r.From) }, want: ErrSameAccount},
		{name: "deposit: valid", dep: func(*DepositRequest) {}, want: errStoreReached},
		{name: "deposit: no user", user: "-", dep: func(*DepositRequest) {}, want: ErrNotAuthenticated},
		{name: "deposit: no idempotency key", dep: func(r *DepositRequest) { r.IdempotencyKey = "" }, want: ErrMissingKey},
		{name: "deposit: zero amount", dep: func(r *DepositRequest) { r.Amount = 0 }, want: invalid("amount")},
		{name: "deposit: negative amount", dep: func(r *DepositRequest) { r.Amount = -1 }, want: invalid("amount")},
		{name: "deposit: blank reference", dep: func(r *DepositRequest) { r.Reference = " \t" }, want: invalid("reference")},
		{name: "deposit: account not an id", dep: func(r *DepositRequest) { r.AccountID = "x" }, want: ErrAccountNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := identity.User{ID: manager}
			if tt.user == "-" {
				user.ID = ""
			}
			s := newService(t, &stubStore{fail: errStoreReached})
			var err error
			var req any
			if tt.tr != nil {
				r := transfer
				tt.tr(&r)
				req = r
				_, err = s.Transfer(context.Background(), user, r)
			} else {
				r := deposit
				tt.dep(&r)
				req = r
				_, err = s.Deposit(context.Background(), user, r)
			}
			if !sameRefusal(err, tt.want) {
				t.Errorf("%+v by %q = %v, want %v", req, user.ID, err, tt.want)
			}
		})
	}
}

// sameRefusal reports whether err is want; for an invalid-argument error
// (which errors.Is matches by kind and message alone), one that names the
// same field.
func sameRefusal(err, want error) bool {
	if w, ok := errs.As(want); ok && len(w.Violations) == 1 {
		e, ok := errs.As(err)
		return ok && errors.Is(err, want) && len(e.Violations) == 1 && e.Violations[0].Field == w.Violations[0].Field
	}
	return errors.Is(err, want)
}

// countedEvents records the security events a service counts, as
// "event/reason".
type countedEvents struct {
	mu  sync.Mutex
	got []string
}

func (m *countedEvents) Event(_ context.Context, event, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, event+"/"+reason)
}

// TestHoldsCounted: a transfer or deposit held for a second person is
// counted once, by why it was held, so that an alert sees them stacking up;
// one that posts at once is not counted, and neither is the replay of a held
// one (it was counted when it was made).
func TestHoldsCounted(t *testing.T) {
	t.Parallel()
	settlement := Account{ID: SettlementAccountID("EUR"), Currency: "EUR", Status: AccountActive, Kind: AccountSettlement, Balance: -10}
	move := func(usage int64) MoveState {
		st := state(func(st *MoveState) { st.Usage = usage; st.Accounts[settlement.ID] = settlement })
		return *st
	}
	transfer := TransferRequest{From: acctA, To: acctB, Currency: "EUR", IdempotencyKey: "k"}
	deposit := DepositRequest{AccountID: acctB, Currency: "EUR", Reference: "cash", IdempotencyKey: "k"}
	heldBefore := Transfer{ID: heldID, From: acctA, To: acctB, Amount: 1000, Currency: "EUR", Status: StatusPendingApproval,
		HoldReason: HoldAmount, Kind: KindTransfer, InitiatedBy: alice}
	stored, err := encodeResponse(heldBefore)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		user   string
		amount int64
		st     MoveState
		replay bool
		dep    bool
		want   []string
	}{
		{name: "transfer posted", user: alice, amount: 100, st: move(0)},
		{name: "transfer held by its amount", user: alice, amount: 1000, st: move(0), want: []string{EventTransferHeld + "/amount"}},
		{name: "transfer held by the day's total", user: alice, amount: 100, st: move(2400), want: []string{EventTransferHeld + "/daily_total"}},
		{name: "replay of a held transfer", user: alice, amount: 1000, replay: true},
		{name: "deposit posted", user: manager, amount: 100, dep: true, st: move(0)},
		{name: "deposit held", user: manager, amount: 1000, dep: true, st: move(0), want: []string{EventDepositHeld + "/amount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := &countedEvents{}
			st := &stubStore{move: tt.st}
			s, err := New(st, Config{Limits: testLimits, NewID: func() string { return heldID }, PageTokens: testPages, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			var out Outcome
			if tt.dep {
				r := deposit
				r.Amount = tt.amount
				out, err = s.Deposit(context.Background(), identity.User{ID: tt.user}, r)
			} else {
				r := transfer
				r.Amount = tt.amount
				if tt.replay {
					st.move = MoveState{Stored: &Stored{Fingerprint: r.fingerprint(), Response: stored}}
				}
				out, err = s.Transfer(context.Background(), identity.User{ID: tt.user}, r)
			}
			if err != nil || out.Replayed != tt.replay || out.Transfer.ID != heldID {
				t.Fatalf("%s = %+v, %v, want transfer %s, no error (replayed %v)", tt.name, out, err, heldID, tt.replay)
			}
			if !slices.Equal(m.got, tt.want) {
				t.Errorf("%s (%s, hold %q) counted %q, want %q", tt.name, out.Transfer.Status, out.Transfer.HoldReason, m.got, tt.want)
			}
		})
	}
}

// TestRefusalAuditRecords: the audit record of a refusal says who was
// refused what, on which resource, why (the reason code, or the kind of a
// refusal that has none) and with which request's details, a refusal under
// the separation of duties naming the rule and counted by it; and a refusal
// whose record cannot be written is not answered as a plain refusal, since
// nobody could review it.
func TestRefusalAuditRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	transfer := TransferRequest{From: acctA, To: acctB, Amount: 100, Currency: "EUR", IdempotencyKey: "k"}
	auditDown := errs.Wrap(errs.Unavailable, "", errors.New("audit: connection reset"))
	tests := []struct {
		name      string
		st        *stubStore
		call      func(*Service) error
		wantKind  errs.Kind // of the error returned
		wantEvent []Event
		wantCount []string
	}{
		{
			name: "transfer refused by a rule",
			st:   &stubStore{fail: ErrInsufficientFunds},
			call: func(s *Service) error {
				_, err := s.Transfer(ctx, identity.User{ID: alice}, transfer)
				return err
			},
			wantKind: errs.Refused,
			wantEvent: []Event{{Action: "transfer.refused", Actor: alice, Resource: "account/" + acctA, Outcome: "refused",
				Reason: "insufficient_funds", Detail: map[string]string{"to": acctB, "amount": "100", "currency": "EUR"}}},
		},
		{
			name: "a refusal without a reason code is recorded by its kind",
			st:   &stubStore{fail: errs.New(errs.Refused, "refused")},
			call: func(s *Service) error {
				_, err := s.Transfer(ctx, identity.User{ID: alice}, transfer)
				return err
			},
			wantKind: errs.Refused,
			wantEvent: []Event{{Action: "transfer.refused", Actor: alice, Resource: "account/" + acctA, Outcome: "refused",
				Reason: errs.Refused.String(), Detail: map[string]string{"to": acctB, "amount": "100", "currency": "EUR"}}},
		},
		{
			name: "deposit into the depositor's own account",
			st:   &stubStore{move: *state()},
			call: func(s *Service) error {
				_, err := s.Deposit(ctx, identity.User{ID: bob}, DepositRequest{AccountID: acctB, Amount: 7, Currency: "EUR", Reference: "r", IdempotencyKey: "k"})
				return err
			},
			wantKind: errs.Permission,
			wantEvent: []Event{{Action: "deposit.refused", Actor: bob, Resource: "account/" + acctB, Outcome: "denied",
				Reason: "separation_of_duties", Detail: map[string]string{"amount": "7", "currency": "EUR", "rule": "own_account"}}},
			wantCount: []string{EventDuties + "/own_account"},
		},
		{
			name: "approval by the initiator",
			st:   &stubStore{decide: pending()},
			call: func(s *Service) error {
				_, err := s.Approve(ctx, identity.User{ID: alice}, heldID)
				return err
			},
			wantKind: errs.Permission,
			wantEvent: []Event{{Action: "transfer.approve_refused", Actor: alice, Resource: "transfer/" + heldID, Outcome: "denied",
				Reason: "separation_of_duties", Detail: map[string]string{"rule": "initiator"}}},
			wantCount: []string{EventDuties + "/initiator"},
		},
		{
			name: "the audit record cannot be written",
			st:   &stubStore{fail: ErrInsufficientFunds, auditFail: auditDown},
			call: func(s *Service) error {
				_, err := s.Transfer(ctx, identity.User{ID: alice}, transfer)
				return err
			},
			wantKind: errs.Unavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := &countedEvents{}
			s, err := New(tt.st, Config{Limits: testLimits, PageTokens: testPages, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			err = tt.call(s)
			if err == nil || errs.KindOf(err) != tt.wantKind {
				t.Errorf("%s = %v (kind %v), want an error of kind %v", tt.name, err, errs.KindOf(err), tt.wantKind)
			}
			if diff := cmp.Diff(tt.wantEvent, tt.st.audited); diff != "" {
				t.Errorf("%s audited (-want +got):\n%s", tt.name, diff)
			}
			if !slices.Equal(m.got, tt.wantCount) {
				t.Errorf("%s counted %q, want %q", tt.name, m.got, tt.wantCount)
			}
		})
	}
}

// TestDecisionPostings: an approval posts the held amount (two entries) and
// releases the hold, leaving the initiator's total of the day as it was; a
// rejection releases the hold and gives the amount back to that total,
// since the money never moved; and neither posts while either account is
// not ACTIVE.
func TestDecisionPostings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	boss := identity.User{ID: manager}
	frozen := func(id string) DecideState {
		st := pending()
		a := st.Accounts[id]
		a.Status = AccountFrozen
		st.Accounts = maps.Clone(st.Accounts)
		st.Accounts[id] = a
		return st
	}
	approve := func(s *Service) error { _, err := s.Approve(ctx, boss, heldID); return err }
	reject := func(s *Service) error { _, err := s.Reject(ctx, boss, heldID, "no"); return err }
	tests := []struct {
		name    string
		st      DecideState
		decide  func(*Service) error
		want    error
		status  Status
		entries []Entry // amount and balance after, per account
		holds   []Hold
		usage   int64
	}{
		{name: "approval", st: pending(), decide: approve, status: StatusCompleted,
			entries: []Entry{{AccountID: acctA, Amount: -1000, BalanceAfter: 5000}, {AccountID: acctB, Amount: 1000, BalanceAfter: 1000}},
			holds:   []Hold{{AccountID: acctA, Delta: -1000}}},
		{name: "rejection", st: pending(), decide: reject, status: StatusRejected,
			holds: []Hold{{AccountID: acctA, Delta: -1000}}, usage: -1000},
		{name: "approval with the source frozen", st: frozen(acctA), decide: approve, want: ErrAccountNotActive},
		{name: "approval with the target frozen", st: frozen(acctB), decide: approve, want: ErrAccountNotActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &stubStore{decide: tt.st}
			err := tt.decide(newService(t, st))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("%s = %v, want %v", tt.name, err, tt.want)
			}
			if tt.want != nil {
				return
			}
			p := st.posting
			var entries []Entry
			for _, e := range p.Entries {
				entries = append(entries, Entry{AccountID: e.AccountID, Amount: e.Amount, BalanceAfter: e.BalanceAfter})
			}
			if p.Transfer.Status != tt.status || p.Transfer.DecidedBy != manager || !slices.Equal(entries, tt.entries) ||
				!slices.Equal(p.Holds, tt.holds) || p.UsageDelta != tt.usage {
				t.Errorf("%s posted %s by %s, entries %+v, holds %+v, usage %+d; want %s by %s, entries %+v, holds %+v, usage %+d",
					tt.name, p.Transfer.Status, p.Transfer.DecidedBy, entries, p.Holds, p.UsageDelta,
					tt.status, manager, tt.entries, tt.holds, tt.usage)
			}
		})
	}
}

// TestNewMovementPostings: a transfer or deposit below the thresholds posts
// at once (two entries, no hold); one that waits for approval writes no
// entry and holds its amount on the debited side (for a deposit, the
// settlement account). Either way its amount counts towards the
// initiator's total of the day, and the audit action says which it was.
func TestNewMovementPostings(t *testing.T) {
	t.Parallel()
	sid := SettlementAccountID("EUR")
	settlement := Account{ID: sid, Currency: "EUR", Status: AccountActive, Kind: AccountSettlement, Balance: -10}
	tests := []struct {
		name    string
		user    string
		amount  int64
		deposit bool
		status  Status
		action  string
		entries []Entry // account and amount
		holds   []Hold
	}{
		{name: "transfer posted", user: alice, amount: 100, status: StatusCompleted, action: "transfer.posted",
			entries: []Entry{{AccountID: acctA, Amount: -100}, {AccountID: acctB, Amount: 100}}},
		{name: "transfer held", user: alice, amount: 1000, status: StatusPendingApproval, action: "transfer.held",
			holds: []Hold{{AccountID: acctA, Delta: 1000}}},
		{name: "deposit posted", user: manager, amount: 100, deposit: true, status: StatusCompleted, action: "deposit.posted",
			entries: []Entry{{AccountID: sid, Amount: -100}, {AccountID: acctB, Amount: 100}}},
		{name: "deposit held", user: manager, amount: 1000, deposit: true, status: StatusPendingApproval, action: "deposit.held",
			holds: []Hold{{AccountID: sid, Delta: 1000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &stubStore{move: *state(func(st *MoveState) { st.Accounts[sid] = settlement })}
			s, user := newService(t, st), identity.User{ID: tt.user}
			var err error
			if tt.deposit {
				_, err = s.Deposit(context.Background(), user, DepositRequest{AccountID: acctB, Amount: tt.amount, Currency: "EUR", Reference: "r", IdempotencyKey: "k"})
			} else {
				_, err = s.Transfer(context.Background(), user, TransferRequest{From: acctA, To: acctB, Amount: tt.amount, Currency: "EUR", IdempotencyKey: "k"})
			}
			if err != nil {
				t.Fatalf("%s = %v", tt.name, err)
			}
			p := st.posting
			var entries []Entry
			for _, e := range p.Entries {
				entries = append(entries, Entry{AccountID: e.AccountID, Amount: e.Amount})
			}
			if p.Transfer.Status != tt.status || p.Event.Action != tt.action || !slices.Equal(entries, tt.entries) ||
				!slices.Equal(p.Holds, tt.holds) || p.UsageDelta != tt.amount {
				t.Errorf("%s wrote %s (%s), entries %+v, holds %+v, usage %+d; want %s (%s), entries %+v, holds %+v, usage %+d",
					tt.name, p.Transfer.Status, p.Event.Action, entries, p.Holds, p.UsageDelta,
					tt.status, tt.action, tt.entries, tt.holds, tt.amount)
			}
		})
	}
}
