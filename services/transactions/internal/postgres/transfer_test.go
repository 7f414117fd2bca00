package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// Every refused transfer must leave balances, holds, entries, transfers and
// the daily usage exactly as they were.
func TestTransferRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a := e.open(alice, "EUR")
	b := e.open(bob, "EUR")
	usd := e.open(bob, "USD")
	frozen := e.open(bob, "EUR")
	alicesFrozen := e.open(alice, "EUR")
	e.fund(a, 40_000, "EUR")
	e.fund(alicesFrozen, 1_000, "EUR")
	for _, id := range []string{frozen, alicesFrozen} {
		if err := e.svc.SetAccountStatus(context.Background(), id, domain.AccountFrozen); err != nil {
			t.Fatal(err)
		}
	}
	req := func(mod func(*domain.TransferRequest)) domain.TransferRequest {
		r := domain.TransferRequest{From: a, To: b, Amount: 100, Currency: "EUR", IdempotencyKey: uuid.NewString()}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	tests := []struct {
		name string
		user func() domain.TransferRequest
		as   string // "bob" to send as bob
		kind errs.Kind
		want error
	}{
		{name: "someone else's source account", as: "bob", user: func() domain.TransferRequest { return req(nil) }, kind: errs.NotFound, want: domain.ErrAccountNotFound},
		{name: "unknown source", user: func() domain.TransferRequest {
			return req(func(r *domain.TransferRequest) { r.From = uuid.NewString() })
		}, kind: errs.NotFound, want: domain.ErrAccountNotFound},
		{name: "unknown target", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.To = uuid.NewString() }) }, kind: errs.NotFound, want: domain.ErrAccountNotFound},
		{name: "settlement target", user: func() domain.TransferRequest {
			return req(func(r *domain.TransferRequest) { r.To = domain.SettlementAccountID("EUR") })
		}, kind: errs.NotFound, want: domain.ErrAccountNotFound},
		{name: "settlement source", user: func() domain.TransferRequest {
			return req(func(r *domain.TransferRequest) { r.From = domain.SettlementAccountID("EUR") })
		}, kind: errs.NotFound, want: domain.ErrAccountNotFound},
		{name: "malformed id", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.To = "' OR 1=1 --" }) }, kind: errs.NotFound, want: domain.ErrAccountNotFound},
		{name: "same account", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.To = a }) }, kind: errs.Invalid, want: domain.ErrSameAccount},
		{name: "same account in other letter case", user: func() domain.TransferRequest {
			return req(func(r *domain.TransferRequest) { r.To = upper(a) })
		}, kind: errs.Invalid, want: domain.ErrSameAccount},
		{name: "zero amount", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.Amount = 0 }) }, kind: errs.Invalid},
		{name: "negative amount", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.Amount = -500 }) }, kind: errs.Invalid},
		{name: "missing idempotency key", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.IdempotencyKey = "" }) }, kind: errs.Invalid, want: domain.ErrMissingKey},
		{name: "frozen target", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.To = frozen }) }, kind: errs.Refused, want: domain.ErrAccountNotActive},
		{name: "frozen source", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.From = alicesFrozen }) }, kind: errs.Refused, want: domain.ErrAccountNotActive},
		{name: "request currency differs from both", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.Currency = "GBP" }) }, kind: errs.Refused, want: domain.ErrCurrencyMismatch},
		{name: "target in another currency", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.To = usd }) }, kind: errs.Refused, want: domain.ErrCurrencyMismatch},
		{name: "over the per-transfer maximum", user: func() domain.TransferRequest {
			return req(func(r *domain.TransferRequest) { r.Amount = testLimits.MaxTransfer + 1 })
		}, kind: errs.Refused, want: domain.ErrOverMaximum},
		{name: "more than the balance", user: func() domain.TransferRequest { return req(func(r *domain.TransferRequest) { r.Amount = 40_001 }) }, kind: errs.Refused, want: domain.ErrInsufficientFunds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: each case compares a snapshot of shared accounts.
			caller := alice
			if tt.as == "bob" {
				caller = bob
			}
			r := tt.user()
			before := e.snapshot(caller, a, b, usd, frozen, alicesFrozen)
			_, err := e.svc.Transfer(context.Background(), caller, r)
			if !isKind(err, tt.kind) || (tt.want != nil && !sameErr(err, tt.want)) {
				t.Errorf("Transfer(%+v) = %v (kind %v), want %v (kind %v)", r, err, errs.KindOf(err), tt.want, tt.kind)
			}
			if after := e.snapshot(caller, a, b, usd, frozen, alicesFrozen); !cmp.Equal(before, after) {
				t.Errorf("Transfer(%+v) changed the ledger (-before +after):\n%s", r, cmp.Diff(before, after))
			}
		})
	}
}

func TestTransferPostsBothEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 5_000, "EUR")
	out, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{
		From: a, To: b, Amount: 1_234, Currency: "EUR", Description: "rent", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatalf("Transfer = %v", err)
	}
	tr := out.Transfer
	if tr.Status != domain.StatusCompleted || out.Replayed || tr.InitiatedBy != alice.ID || tr.Kind != domain.KindTransfer {
		t.Errorf("Transfer = %+v, want a fresh COMPLETED transfer by alice", out)
	}
	if got, want := e.money(a), (money{Balance: 3_766}); got != want {
		t.Errorf("source = %+v, want %+v", got, want)
	}
	if got, want := e.money(b), (money{Balance: 1_234}); got != want {
		t.Errorf("target = %+v, want %+v", got, want)
	}
	stored, err := e.svc.GetTransfer(context.Background(), tr.ID)
	if err != nil || !cmp.Equal(stored, tr) {
		t.Errorf("GetTransfer(%s) = %+v, %v, want %+v", tr.ID, stored, err, tr)
	}
	page, err := e.svc.ListEntries(context.Background(), b, 0, 0)
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("ListEntries(target) = %+v, %v, want one entry", page, err)
	}
	got := page.Entries[0]
	want := domain.Entry{Seq: got.Seq, TransferID: tr.ID, AccountID: b, Counterparty: a, Amount: 1_234,
		BalanceAfter: 1_234, Description: "rent", CreatedAt: tr.CreatedAt}
	if !cmp.Equal(got, want) {
		t.Errorf("target entry (-got +want):\n%s", cmp.Diff(got, want))
	}
	if n := e.count(`SELECT count(*) FROM ledger.entries WHERE transfer_id = $1 HAVING sum(amount) = 0`, tr.ID); n != 2 {
		t.Errorf("entries of %s summing to zero = %d, want 2", tr.ID, n)
	}
}

func TestDailyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLimits(domain.Limits{ApprovalThreshold: 5_000, MaxTransfer: 10_000, DailyLimit: 12_000}))
	alice, bob, boss := user(), user(), manager()
	a1, a2, b := e.open(alice, "EUR"), e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a1, 10_000, "EUR")
	e.fund(a1, 10_000, "EUR")
	e.fund(a2, 10_000, "EUR")
	send := func(from string, amount int64) (domain.Transfer, error) {
		out, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{
			From: from, To: b, Amount: amount, Currency: "EUR", IdempotencyKey: uuid.NewString()})
		return out.Transfer, err
	}
	if _, err := send(a1, 4_000); err != nil {
		t.Fatal(err)
	}
	held, err := send(a2, 6_000) // held, but it counts: the limit is per user, across accounts
	if err != nil || held.Status != domain.StatusPendingApproval {
		t.Fatalf("send(6000) = %+v, %v, want PENDING_APPROVAL", held, err)
	}
	if _, err := send(a1, 2_001); !sameErr(err, domain.ErrDailyLimit) {
		t.Errorf("send(2001) over the daily limit = %v, want %v", err, domain.ErrDailyLimit)
	}
	if _, err := send(a1, 2_000); err != nil {
		t.Errorf("send(2000) up to the daily limit = %v, want nil", err)
	}
	if _, err := send(a1, 1); !sameErr(err, domain.ErrDailyLimit) {
		t.Errorf("send(1) at the daily limit = %v, want %v", err, domain.ErrDailyLimit)
	}
	// A rejected transfer never left, so it gives its amount back.
	if _, err := e.svc.Reject(context.Background(), boss, held.ID, "suspicious"); err != nil {
		t.Fatal(err)
	}
	if _, err := send(a1, 6_000); err != nil {
		t.Errorf("send(6000) after the rejection freed the limit = %v, want nil", err)
	}
	// A new UTC day starts a new budget.
	e.advance(12 * time.Hour)
	if _, err := send(a1, 4_999); err != nil {
		t.Errorf("send(4999) on the next day = %v, want nil", err)
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
