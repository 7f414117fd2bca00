package postgres_test

import (
	"context"
	"math/rand/v2"
	"strings"
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

// Eight managers deciding the same transfer at once, half approving and
// half rejecting: exactly one decision wins, the money moves (or is
// released) once, and every loser is refused and audited as such. The race
// is run on fresh transfers until each kind has won once: a test in which
// one kind always wins would not show that the two really race.
func TestConcurrentApprovals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	won := map[bool]int{} // rounds won by an approval, by a rejection
	for round := 0; round < 40 && (won[true] == 0 || won[false] == 0); round++ {
		won[raceDecisions(t, e)]++
	}
	if won[true] == 0 || won[false] == 0 {
		t.Errorf("approvals won %d rounds and rejections %d, want each to win one: the decisions did not race", won[true], won[false])
	}
}

// raceDecisions releases four approvals and four rejections of one held
// transfer at once, checks that exactly one wins, and reports whether it
// was an approval.
func raceDecisions(t *testing.T, e *env) bool {
	t.Helper()
	tr, from, to := e.held(user(), 10_000)
	// Which goroutine approves is shuffled each round (goroutines started
	// first are not favoured), and all are released at once.
	type result struct {
		approve bool
		err     error
	}
	results := make(chan result, 8)
	start := make(chan struct{})
	for _, i := range rand.Perm(8) {
		go func() {
			<-start
			r := result{approve: i%2 == 0}
			if r.approve {
				_, r.err = e.svc.Approve(context.Background(), manager(), tr.ID)
			} else {
				_, r.err = e.svc.Reject(context.Background(), manager(), tr.ID, "race")
			}
			results <- r
		}()
	}
	close(start)
	var winners []bool // approve or not, per successful decision
	for range 8 {
		r := <-results
		switch {
		case r.err == nil:
			winners = append(winners, r.approve)
		case !sameErr(r.err, domain.ErrNotPending):
			t.Errorf("concurrent decision (approve=%v) = %v, want nil or %v", r.approve, r.err, domain.ErrNotPending)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d decisions succeeded, want exactly 1", len(winners))
	}
	// Both kinds reached the store: four of each, decided or refused.
	resource := "transfer/" + tr.ID
	for _, kind := range []string{"approve", "reject"} {
		n := e.count(`SELECT count(*) FROM ledger.audit_events WHERE resource = $1 AND action IN ($2, $3)`,
			resource, "transfer."+kind+"_refused", "transfer."+strings.TrimSuffix(kind, "e")+"ed")
		if n != 4 {
			t.Errorf("audited %s decisions = %d, want 4 (decided or refused)", kind, n)
		}
	}
	f, g := e.money(from), e.money(to)
	want := money{Balance: 30_000} // rejected: the hold is released, nothing moves
	if winners[0] {
		want = money{Balance: 20_000}
	}
	if f != want || f.Balance+g.Balance != 30_000 {
		t.Errorf("after the race (approved=%v): source %+v, target %+v; want source %+v and 30000 in total", winners[0], f, g, want)
	}
	return winners[0]
}
