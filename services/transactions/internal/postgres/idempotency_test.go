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

func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 50_000, "EUR")
	req := domain.TransferRequest{From: a, To: b, Amount: 700, Currency: "EUR", Description: "dinner", IdempotencyKey: "dinner-2030-03-04"}
	first, err := e.svc.Transfer(context.Background(), alice, req)
	if err != nil || first.Replayed {
		t.Fatalf("Transfer(first) = %+v, %v", first, err)
	}
	after := e.snapshot(alice, a, b)

	// Same key, same body: the first response again, nothing moves.
	for range 3 {
		again, err := e.svc.Transfer(context.Background(), alice, req)
		if err != nil || !again.Replayed || !cmp.Equal(again.Transfer, first.Transfer) {
			t.Errorf("Transfer(replay) = %+v, %v, want the first response replayed", again, err)
		}
	}
	// Same key, different body: refused, nothing moves.
	for _, mod := range []func(*domain.TransferRequest){
		func(r *domain.TransferRequest) { r.Amount++ },
		func(r *domain.TransferRequest) { r.Description = "lunch" },
		func(r *domain.TransferRequest) { r.To = e.open(bob, "EUR") },
	} {
		r := req
		mod(&r)
		if _, err := e.svc.Transfer(context.Background(), alice, r); !sameErr(err, domain.ErrKeyReused) || !isKind(err, errs.Refused) {
			t.Errorf("Transfer(same key, other body %+v) = %v, want %v", r, err, domain.ErrKeyReused)
		}
	}
	// A deposit by the same user with the same key is a different request.
	if _, err := e.svc.Deposit(context.Background(), alice, domain.DepositRequest{
		AccountID: b, Amount: 700, Currency: "EUR", Reference: "dinner", IdempotencyKey: req.IdempotencyKey}); !sameErr(err, domain.ErrKeyReused) {
		t.Errorf("Deposit(transfer's key) = %v, want %v", err, domain.ErrKeyReused)
	}
	if got := e.snapshot(alice, a, b); !cmp.Equal(after, got) {
		t.Errorf("replays changed the ledger:\n%s", cmp.Diff(after, got))
	}
	// The replay survives a change of state: the stored response is the first one.
	e.advance(23 * time.Hour)
	again, err := e.svc.Transfer(context.Background(), alice, req)
	if err != nil || !again.Replayed || again.Transfer.ID != first.Transfer.ID {
		t.Errorf("Transfer(replay next day) = %+v, %v, want the first response", again, err)
	}
}

// Another user's identical key is a different key: both transfers happen.
func TestIdempotencyKeysArePerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 1_000, "EUR")
	e.fund(b, 1_000, "EUR")
	x, err1 := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{From: a, To: b, Amount: 10, Currency: "EUR", IdempotencyKey: "shared"})
	y, err2 := e.svc.Transfer(context.Background(), bob, domain.TransferRequest{From: b, To: a, Amount: 10, Currency: "EUR", IdempotencyKey: "shared"})
	if err1 != nil || err2 != nil || x.Replayed || y.Replayed || x.Transfer.ID == y.Transfer.ID {
		t.Errorf("two users' transfers with the same key = %+v, %v / %+v, %v; want two fresh transfers", x, err1, y, err2)
	}
	// Bob cannot learn alice's response by reusing her key with her body.
	_, err := e.svc.Transfer(context.Background(), bob, domain.TransferRequest{From: a, To: b, Amount: 10, Currency: "EUR", IdempotencyKey: "shared"})
	if !sameErr(err, domain.ErrKeyReused) && !sameErr(err, domain.ErrAccountNotFound) {
		t.Errorf("bob replaying alice's request = %v, want a refusal", err)
	}
}

// Business refusals are not stored: after the cause goes away, the same key
// goes through.
func TestRefusalsAreNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	req := domain.TransferRequest{From: a, To: b, Amount: 500, Currency: "EUR", IdempotencyKey: "salary"}
	if _, err := e.svc.Transfer(context.Background(), alice, req); !sameErr(err, domain.ErrInsufficientFunds) {
		t.Fatalf("Transfer(unfunded) = %v, want %v", err, domain.ErrInsufficientFunds)
	}
	e.fund(a, 500, "EUR")
	out, err := e.svc.Transfer(context.Background(), alice, req)
	if err != nil || out.Replayed {
		t.Errorf("Transfer(same key after funding) = %+v, %v, want a fresh transfer", out, err)
	}
	if m := e.money(b); m.Balance != 500 {
		t.Errorf("target = %+v, want 500", m)
	}
}

// A retry while the first request still runs gets a conflict, not a second
// transfer; once the first commits, retries replay it.
func TestRetryWhileInFlight(t *testing.T) {
	t.Parallel()
	app := "ledger-test-" + uuid.NewString()[:8]
	e := newEnv(t, withAppName(app))
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 1_000, "EUR")
	req := domain.TransferRequest{From: a, To: b, Amount: 300, Currency: "EUR", IdempotencyKey: "slow"}

	// Hold the target's row lock, so the first request stops inside its
	// transaction, holding the key.
	release := e.txLock(`SELECT 1 FROM ledger.accounts WHERE id = $1 FOR UPDATE`, b)
	first := make(chan domain.Outcome, 1)
	go func() {
		out, err := e.svc.Transfer(context.Background(), alice, req)
		if err != nil {
			t.Errorf("Transfer(first) = %v", err)
		}
		first <- out
	}()
	waitFor(t, func() bool {
		return e.count(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app) > 0
	})
	_, err := e.svc.Transfer(context.Background(), alice, req)
	if !sameErr(err, domain.ErrInFlight) || !isKind(err, errs.Conflict) {
		t.Errorf("Transfer(while in flight) = %v, want %v", err, domain.ErrInFlight)
	}
	release()
	out := <-first
	again, err := e.svc.Transfer(context.Background(), alice, req)
	if err != nil || !again.Replayed || again.Transfer.ID != out.Transfer.ID {
		t.Errorf("Transfer(after the first) = %+v, %v, want a replay of %s", again, err, out.Transfer.ID)
	}
	if m := e.money(b); m.Balance != 300 {
		t.Errorf("target = %+v, want 300 (moved once)", m)
	}
}

func TestDepositIdempotency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	boss, other := manager(), manager()
	acct := e.open(user(), "CHF")
	req := domain.DepositRequest{AccountID: acct, Amount: 900, Currency: "CHF", Reference: "cash", IdempotencyKey: "dep-1"}
	first, err := e.svc.Deposit(context.Background(), boss, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.Deposit(context.Background(), boss, req)
	if err != nil || !again.Replayed || again.Transfer.ID != first.Transfer.ID {
		t.Errorf("Deposit(replay) = %+v, %v, want the first", again, err)
	}
	req.Amount = 901
	if _, err := e.svc.Deposit(context.Background(), boss, req); !sameErr(err, domain.ErrKeyReused) {
		t.Errorf("Deposit(same key, other amount) = %v, want %v", err, domain.ErrKeyReused)
	}
	req.Amount = 900
	if out, err := e.svc.Deposit(context.Background(), other, req); err != nil || out.Replayed {
		t.Errorf("Deposit(another manager, same key) = %+v, %v, want a fresh deposit", out, err)
	}
	if m := e.money(acct); m.Balance != 1_800 {
		t.Errorf("account after two deposits = %+v, want 1800", m)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
