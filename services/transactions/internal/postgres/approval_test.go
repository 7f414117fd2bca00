package postgres_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/duties"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// held creates a transfer at the approval threshold from a fresh funded
// account and returns it with its two accounts.
func (e *env) held(initiator identity.User, amount int64) (tr domain.Transfer, from, to string) {
	e.t.Helper()
	from, to = e.open(initiator, "EUR"), e.open(user(), "EUR")
	e.fund(from, 30_000, "EUR")
	out, err := e.svc.Transfer(context.Background(), initiator, domain.TransferRequest{
		From: from, To: to, Amount: amount, Currency: "EUR", IdempotencyKey: uuid.NewString()})
	if err != nil || out.Transfer.Status != domain.StatusPendingApproval {
		e.t.Fatalf("Transfer(%d) = %+v, %v, want PENDING_APPROVAL", amount, out, err)
	}
	return out.Transfer, from, to
}

func TestHeldTransferReservesFunds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := user()
	tr, from, to := e.held(alice, testLimits.ApprovalThreshold)
	if got, want := e.money(from), (money{Balance: 30_000, Held: 10_000}); got != want {
		t.Errorf("source while held = %+v, want %+v", got, want)
	}
	if got := e.money(to); got != (money{}) {
		t.Errorf("target while held = %+v, want nothing", got)
	}
	if n := e.count(`SELECT count(*) FROM ledger.entries WHERE transfer_id = $1`, tr.ID); n != 0 {
		t.Errorf("entries of a held transfer = %d, want 0", n)
	}
	// Only the available 20 000 may still leave.
	_, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{
		From: from, To: to, Amount: 20_001, Currency: "EUR", IdempotencyKey: uuid.NewString()})
	if !sameErr(err, domain.ErrInsufficientFunds) {
		t.Errorf("Transfer(more than available) = %v, want %v", err, domain.ErrInsufficientFunds)
	}
}

func TestApprove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, boss := user(identity.RoleUser, identity.RoleManager), manager()
	tr, from, to := e.held(alice, 12_000)

	// The initiator may not approve, even as a manager; nothing moves.
	before := e.snapshot(alice, from, to)
	self := duties.Refusal(duties.Initiator)
	if _, err := e.svc.Approve(context.Background(), alice, tr.ID); !sameErr(err, self) || !isKind(err, errs.Permission) {
		t.Errorf("Approve(by initiator) = %v, want %v", err, self)
	}
	if _, err := e.svc.Reject(context.Background(), alice, tr.ID, "mine"); !sameErr(err, self) {
		t.Errorf("Reject(by initiator) = %v, want %v", err, self)
	}
	if after := e.snapshot(alice, from, to); !cmp.Equal(before, after) {
		t.Errorf("self-decision changed the ledger:\n%s", cmp.Diff(before, after))
	}

	got, err := e.svc.Approve(context.Background(), boss, tr.ID)
	if err != nil {
		t.Fatalf("Approve = %v", err)
	}
	if got.Status != domain.StatusCompleted || got.DecidedBy != boss.ID || got.DecidedAt.IsZero() {
		t.Errorf("Approve = %+v, want COMPLETED decided by the manager", got)
	}
	if m := e.money(from); m != (money{Balance: 18_000}) {
		t.Errorf("source after approval = %+v, want 18000 booked and the hold released", m)
	}
	if m := e.money(to); m != (money{Balance: 12_000}) {
		t.Errorf("target after approval = %+v, want 12000", m)
	}
	page, err := e.svc.ListEntries(context.Background(), from, 0, 0)
	if err != nil || len(page.Entries) != 2 || page.Entries[0].Amount != -12_000 || page.Entries[0].BalanceAfter != 18_000 {
		t.Errorf("ListEntries(source) = %+v, %v, want the approval's debit first with balance 18000", page, err)
	}

	// Decided once: approving or rejecting again is refused and moves nothing.
	before = e.snapshot(alice, from, to)
	other := manager()
	if _, err := e.svc.Approve(context.Background(), other, tr.ID); !sameErr(err, domain.ErrNotPending) {
		t.Errorf("Approve(again) = %v, want %v", err, domain.ErrNotPending)
	}
	if _, err := e.svc.Reject(context.Background(), other, tr.ID, "late"); !sameErr(err, domain.ErrNotPending) {
		t.Errorf("Reject(after approval) = %v, want %v", err, domain.ErrNotPending)
	}
	if after := e.snapshot(alice, from, to); !cmp.Equal(before, after) {
		t.Errorf("a second decision changed the ledger:\n%s", cmp.Diff(before, after))
	}
}

func TestReject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, boss := user(), manager()
	tr, from, to := e.held(alice, 15_000)
	got, err := e.svc.Reject(context.Background(), boss, tr.ID, "looks like fraud")
	if err != nil {
		t.Fatalf("Reject = %v", err)
	}
	if got.Status != domain.StatusRejected || got.DecidedBy != boss.ID || got.Reason != "looks like fraud" {
		t.Errorf("Reject = %+v, want REJECTED by the manager with the reason", got)
	}
	if m := e.money(from); m != (money{Balance: 30_000}) {
		t.Errorf("source after rejection = %+v, want 30000 and no hold", m)
	}
	if m := e.money(to); m != (money{}) {
		t.Errorf("target after rejection = %+v, want nothing", m)
	}
	if _, err := e.svc.Approve(context.Background(), boss, tr.ID); !sameErr(err, domain.ErrNotPending) {
		t.Errorf("Approve(rejected) = %v, want %v", err, domain.ErrNotPending)
	}
	if n := e.count(`SELECT count(*) FROM ledger.entries WHERE transfer_id = $1`, tr.ID); n != 0 {
		t.Errorf("entries of a rejected transfer = %d, want 0", n)
	}
}

// Approval checks the accounts again: one frozen since the transfer was
// made cannot receive or send it, and the transfer stays pending, still
// rejectable.
func TestApproveRechecksAccounts(t *testing.T) {
	t.Parallel()
	for _, side := range []string{"source", "target"} {
		t.Run(side, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			alice, boss := user(), manager()
			tr, from, to := e.held(alice, 11_000)
			frozen := from
			if side == "target" {
				frozen = to
			}
			if err := e.svc.SetAccountStatus(context.Background(), frozen, domain.AccountFrozen); err != nil {
				t.Fatal(err)
			}
			before := e.snapshot(alice, from, to)
			if _, err := e.svc.Approve(context.Background(), boss, tr.ID); !sameErr(err, domain.ErrAccountNotActive) {
				t.Errorf("Approve(%s frozen) = %v, want %v", side, err, domain.ErrAccountNotActive)
			}
			if after := e.snapshot(alice, from, to); !cmp.Equal(before, after) {
				t.Errorf("refused approval changed the ledger:\n%s", cmp.Diff(before, after))
			}
			if got, _ := e.svc.GetTransfer(context.Background(), tr.ID); got.Status != domain.StatusPendingApproval {
				t.Errorf("status after refused approval = %s, want PENDING_APPROVAL", got.Status)
			}
			if _, err := e.svc.Reject(context.Background(), boss, tr.ID, "account frozen"); err != nil {
				t.Errorf("Reject(%s frozen) = %v, want nil", side, err)
			}
			if m := e.money(from); m.Held != 0 {
				t.Errorf("hold after rejection = %d, want 0", m.Held)
			}
		})
	}
}

func TestDecideUnknownTransfer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
		if _, err := e.svc.Approve(context.Background(), manager(), id); !sameErr(err, domain.ErrTransferNotFound) {
			t.Errorf("Approve(%q) = %v, want %v", id, err, domain.ErrTransferNotFound)
		}
		if _, err := e.svc.Reject(context.Background(), manager(), id, "x"); !sameErr(err, domain.ErrTransferNotFound) {
			t.Errorf("Reject(%q) = %v, want %v", id, err, domain.ErrTransferNotFound)
		}
	}
}

// Two managers approving the same transfer at once: exactly one wins, the
// money moves once.
func TestConcurrentApprovals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := user()
	tr, from, to := e.held(alice, 10_000)
	// Half approve and half reject, decided by the goroutine's index (not
	// by how many results have arrived, which is 0 for all of them when
	// they start together), all released at once.
	errc := make(chan error, 8)
	start := make(chan struct{})
	for i := range 8 {
		go func() {
			<-start
			var err error
			if i%2 == 0 {
				_, err = e.svc.Approve(context.Background(), manager(), tr.ID)
			} else {
				_, err = e.svc.Reject(context.Background(), manager(), tr.ID, "race")
			}
			errc <- err
		}()
	}
	close(start)
	wins := 0
	for range 8 {
		err := <-errc
		switch {
		case err == nil:
			wins++
		case !sameErr(err, domain.ErrNotPending):
			t.Errorf("concurrent decision = %v, want nil or %v", err, domain.ErrNotPending)
		}
	}
	if wins != 1 {
		t.Errorf("%d decisions succeeded, want exactly 1", wins)
	}
	f, g := e.money(from), e.money(to)
	if f.Held != 0 || f.Balance+g.Balance != 30_000 {
		t.Errorf("after the race: source %+v, target %+v; want no hold and 30000 in total", f, g)
	}
}
