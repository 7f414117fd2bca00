package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/duties"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// events records what the ledger counts, for the tests that check that a
// refusal or a hold is visible to an alert.
type events struct {
	mu  sync.Mutex
	got map[string]int // "event/reason" → count
}

func (m *events) Event(_ context.Context, event, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.got == nil {
		m.got = map[string]int{}
	}
	m.got[event+"/"+reason]++
}

func (m *events) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.got[key]
}

// The separation of duties, tried the ways an insider would: every refusal
// is a Permission error with the separation-of-duties reason, changes
// nothing, is audited with the rule it broke, and is counted.
func TestSeparationOfDuties(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type attempt struct {
		name  string
		actor identity.User
		do    func(identity.User) error
		rule  duties.Rule
		ids   []string // accounts that must not change
	}
	m := &events{}
	e := newEnv(t, withMetrics(m))
	mallory := manager() // the insider
	// Mallory's second identity, a plain customer she registered herself.
	alias := user()
	own, aliasAcct, victim := e.open(mallory, "EUR"), e.open(alias, "EUR"), e.open(user(), "EUR")
	e.fund(aliasAcct, 40_000, "EUR")
	e.fund(victim, 40_000, "EUR")
	hold := func(from identity.User, a, b string) domain.Transfer {
		out, err := e.svc.Transfer(ctx, from, domain.TransferRequest{From: a, To: b, Amount: testLimits.ApprovalThreshold,
			Currency: "EUR", IdempotencyKey: uuid.NewString()})
		if err != nil || out.Transfer.Status != domain.StatusPendingApproval {
			t.Fatalf("Transfer(held) = %+v, %v", out, err)
		}
		return out.Transfer
	}
	toMallory := hold(alias, aliasAcct, own) // the alias pays Mallory
	fromMallory := func() domain.Transfer {  // Mallory pays a stranger
		e.fund(own, 20_000, "EUR")
		return hold(mallory, own, victim)
	}()
	stranger := user()
	strangerAcct := e.open(stranger, "EUR")
	e.fund(strangerAcct, 20_000, "EUR")
	strangerToMallory := hold(stranger, strangerAcct, own) // a stranger pays Mallory
	approve := func(id string) func(identity.User) error {
		return func(u identity.User) error { _, err := e.svc.Approve(ctx, u, id); return err }
	}
	reject := func(id string) func(identity.User) error {
		return func(u identity.User) error { _, err := e.svc.Reject(ctx, u, id, "mine"); return err }
	}
	deposit := func(acct string) func(identity.User) error {
		return func(u identity.User) error {
			_, err := e.svc.Deposit(ctx, u, domain.DepositRequest{AccountID: acct, Amount: 500, Currency: "EUR",
				Reference: "cash", IdempotencyKey: uuid.NewString()})
			return err
		}
	}
	attempts := []attempt{
		{"approve her alias's transfer to her", mallory, approve(toMallory.ID), duties.OwnAccount, []string{own, aliasAcct}},
		{"reject her alias's transfer to her", mallory, reject(toMallory.ID), duties.OwnAccount, []string{own, aliasAcct}},
		{"approve a stranger's transfer to her", mallory, approve(strangerToMallory.ID), duties.OwnAccount, []string{own}},
		{"approve her own transfer", mallory, approve(fromMallory.ID), duties.Initiator, []string{own, victim}},
		{"reject her own transfer", mallory, reject(fromMallory.ID), duties.Initiator, []string{own, victim}},
		{"deposit into her own account", mallory, deposit(own), duties.OwnAccount, []string{own}},
		{"deposit into her own account as admin", identity.User{ID: mallory.ID, Roles: []string{identity.RoleAdmin}}, deposit(own), duties.OwnAccount, []string{own}},
	}
	for _, a := range attempts {
		before := e.snapshot(a.actor, a.ids...)
		err := a.do(a.actor)
		if rule, ok := duties.RuleOf(err); !ok || rule != a.rule {
			t.Errorf("%s = %v, want a separation-of-duties refusal (%s)", a.name, err, a.rule)
		}
		if after := e.snapshot(a.actor, a.ids...); !cmp.Equal(before, after) {
			t.Errorf("%s changed the ledger:\n%s", a.name, cmp.Diff(before, after))
		}
	}
	denied := 0
	for _, r := range e.auditOf(mallory.ID) {
		if r.Outcome == "denied" && r.Reason == duties.Reason {
			denied++
		}
	}
	if denied != len(attempts) {
		t.Errorf("audit rows of refused separation-of-duties attempts = %d, want %d", denied, len(attempts))
	}
	if got := m.count(domain.EventDuties+"/own_account") + m.count(domain.EventDuties+"/initiator"); got != len(attempts) {
		t.Errorf("separation_of_duties events counted = %d, want %d (%v)", got, len(attempts), m.got)
	}

	// Someone with no stake in either side may decide each of them.
	for _, tr := range []domain.Transfer{toMallory, fromMallory, strangerToMallory} {
		if _, err := e.svc.Approve(ctx, manager(), tr.ID); err != nil {
			t.Errorf("Approve(%s) by an uninvolved manager = %v, want nil", tr.ID, err)
		}
	}
}

// A transfer is held when the initiator's total of the day reaches the
// daily threshold, so splitting a large payment into pieces just below the
// threshold still needs a second person; a rejection gives the amount back.
func TestCumulativeThreshold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := &events{}
	limits := testLimits
	limits.ApprovalDailyThreshold = 25_000
	e := newEnv(t, withLimits(limits), withMetrics(m))
	alice := user()
	from, to := e.open(alice, "EUR"), e.open(user(), "EUR")
	e.fund(from, 45_000, "EUR")
	e.fund(from, 45_000, "EUR")
	send := func(amount int64) domain.Transfer {
		t.Helper()
		out, err := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: from, To: to, Amount: amount, Currency: "EUR", IdempotencyKey: uuid.NewString()})
		if err != nil {
			t.Fatalf("Transfer(%d) = %v", amount, err)
		}
		return out.Transfer
	}
	want := []struct {
		amount int64
		status domain.Status
		hold   domain.HoldReason
	}{
		{9_999, domain.StatusCompleted, domain.HoldNone},          // 9 999
		{9_999, domain.StatusCompleted, domain.HoldNone},          // 19 998
		{5_001, domain.StatusCompleted, domain.HoldNone},          // 24 999: one below
		{1, domain.StatusPendingApproval, domain.HoldDailyTotal},  // 25 000: reaches it
		{10_000, domain.StatusPendingApproval, domain.HoldAmount}, // the amount wins
	}
	var held []domain.Transfer
	for _, w := range want {
		got := send(w.amount)
		if got.Status != w.status || got.HoldReason != w.hold {
			t.Errorf("Transfer(%d) = %s/%q, want %s/%q", w.amount, got.Status, got.HoldReason, w.status, w.hold)
		}
		if got.Status == domain.StatusPendingApproval {
			held = append(held, got)
		}
	}
	if m.count(domain.EventTransferHeld+"/daily_total") != 1 || m.count(domain.EventTransferHeld+"/amount") != 1 {
		t.Errorf("holds counted = %v, want one daily_total and one amount", m.got)
	}
	// The reason is stored and survives the decision.
	boss := manager()
	for _, h := range held {
		if _, err := e.svc.Reject(ctx, boss, h.ID, "split payment"); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.GetTransfer(ctx, h.ID)
		if err != nil || got.HoldReason != h.HoldReason || got.Status != domain.StatusRejected || got.Reason != "split payment" {
			t.Errorf("GetTransfer(rejected) = %+v, %v, want REJECTED, hold reason %q and the rejection reason", got, err, h.HoldReason)
		}
	}
	// Rejected transfers do not count: back to 24 999, so 1 more reaches it again.
	if got := send(1); got.HoldReason != domain.HoldDailyTotal {
		t.Errorf("Transfer(1) after the rejections = %+v, want held for the daily total", got)
	}
	// A new UTC day starts from zero.
	e.advance(24 * time.Hour)
	if got := send(9_999); got.Status != domain.StatusCompleted {
		t.Errorf("Transfer(9999) the next day = %s, want COMPLETED", got.Status)
	}
}

// A manager's deposits are capped per UTC day, held ones included, apart
// from their outgoing transfers; a rejected deposit gives its amount back.
func TestDepositDailyLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	limits := testLimits
	limits.DepositDailyLimit = 30_000
	limits.ApprovalDailyThreshold = 1_000_000 // only the cap and the amount rule here
	e := newEnv(t, withLimits(limits))
	boss := manager()
	acct := e.open(user(), "EUR")
	dep := func(amount int64) (domain.Transfer, error) {
		out, err := e.svc.Deposit(ctx, boss, domain.DepositRequest{AccountID: acct, Amount: amount, Currency: "EUR",
			Reference: "branch cash", IdempotencyKey: uuid.NewString()})
		return out.Transfer, err
	}
	if _, err := dep(9_000); err != nil {
		t.Fatal(err)
	}
	held, err := dep(20_000)
	if err != nil || held.Status != domain.StatusPendingApproval {
		t.Fatalf("Deposit(20000) = %+v, %v, want held", held, err)
	}
	if _, err := dep(1_001); !sameErr(err, domain.ErrDepositLimit) || !isKind(err, errs.Refused) {
		t.Errorf("Deposit(past the cap, held deposit counted) = %v, want %v", err, domain.ErrDepositLimit)
	}
	if _, err := dep(1_000); err != nil {
		t.Errorf("Deposit(exactly up to the cap) = %v, want nil", err)
	}
	if _, err := e.svc.Reject(ctx, manager(), held.ID, "no cash arrived"); err != nil {
		t.Fatal(err)
	}
	if _, err := dep(9_999); err != nil {
		t.Errorf("Deposit after a rejected one = %v, want nil (the rejected amount is given back)", err)
	}
	if m := e.money(acct); m != (money{Balance: 9_000 + 1_000 + 9_999}) {
		t.Errorf("account = %+v, want only the posted deposits", m)
	}
	// The cap is the depositor's alone: it does not spend their transfer
	// limit, and another manager has a cap of their own.
	other := manager()
	if _, err := e.svc.Deposit(ctx, other, domain.DepositRequest{AccountID: acct, Amount: 9_000, Currency: "EUR",
		Reference: "r", IdempotencyKey: uuid.NewString()}); err != nil {
		t.Errorf("Deposit by another manager = %v, want nil", err)
	}
	bossAcct := e.open(boss, "EUR")
	e.fund(bossAcct, 5_000, "EUR")
	if _, err := e.svc.Transfer(ctx, boss, domain.TransferRequest{From: bossAcct, To: acct, Amount: 5_000, Currency: "EUR",
		IdempotencyKey: uuid.NewString()}); err != nil {
		t.Errorf("Transfer by a manager at their deposit cap = %v, want nil", err)
	}
}
