package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// The group commit tests force a batch without sleeping: with a single
// committer, a lone transfer that waits on a row lock the test holds keeps
// the committer busy, the calls of the batch queue behind it one by one
// (so their order is known), and releasing the lock lets the committer
// take them all at once.

// oneCommitter is a group commit whose only committer the tests can hold.
var oneCommitter = withGroupCommit(postgres.GroupCommit{Committers: 1})

// holdCommitter makes the committer busy with a transfer stuck on a row
// lock, and returns the function that lets it go and checks it posted.
func (e *env) holdCommitter() (release func()) {
	e.t.Helper()
	owner := user()
	x, y := e.open(owner, "EUR"), e.open(user(), "EUR")
	e.fund(x, 1, "EUR")
	unlock := e.txLock(`SELECT 1 FROM ledger.accounts WHERE id = $1 FOR UPDATE`, y)
	before := e.store.Stats().Batches
	stuck := make(chan error, 1)
	go func() {
		_, err := e.svc.Transfer(context.Background(), owner, domain.TransferRequest{
			From: x, To: y, Amount: 1, Currency: "EUR", IdempotencyKey: uuid.NewString()})
		stuck <- err
	}()
	waitFor(e.t.(*testing.T), func() bool { return e.store.Stats().Batches > before })
	return func() {
		unlock()
		if err := <-stuck; err != nil {
			e.t.Errorf("Transfer(the transfer that held the committer) = %v", err)
		}
	}
}

// batch runs calls as one batch, in the order given, and returns their
// errors. It fails the test if they did not commit as one batch.
func (e *env) batch(calls ...func() error) []error {
	e.t.Helper()
	errs, failed := e.tryBatch(calls...)
	if failed {
		e.t.Fatalf("the batch's transaction failed and its members ran alone, want one transaction")
	}
	return errs
}

// tryBatch runs calls as batch does, and also reports whether the batch's
// transaction failed, so that its members ran again alone.
func (e *env) tryBatch(calls ...func() error) (_ []error, failed bool) {
	e.t.Helper()
	t := e.t.(*testing.T)
	release := e.holdCommitter()
	before := e.store.Stats()
	errs := make([]error, len(calls))
	done := make(chan struct{}, len(calls))
	for i, call := range calls {
		go func() {
			errs[i] = call()
			done <- struct{}{}
		}()
		waitFor(t, func() bool { return e.store.Stats().Queued == i+1 })
	}
	release()
	for range calls {
		<-done
	}
	after := e.store.Stats()
	if got := after.Batches - before.Batches; got != 1 || after.Moves-before.Moves != int64(len(calls)) {
		t.Fatalf("%d calls ran in %d batches (%d movements), want one batch", len(calls), got, after.Moves-before.Moves)
	}
	return errs, after.Failed > before.Failed
}

// transfer returns a call that sends a transfer, storing its outcome in out.
func (e *env) transfer(u identity.User, from, to string, amount int64, key string, out *domain.Outcome) func() error {
	return func() error {
		o, err := e.svc.Transfer(context.Background(), u, domain.TransferRequest{
			From: from, To: to, Amount: amount, Currency: "EUR", IdempotencyKey: key})
		if out != nil {
			*out = o
		}
		return err
	}
}

// checkBooks fails the test unless every account's history adds up: each
// balance_after follows the one before, and the last is the balance.
func (e *env) checkBooks(accts ...string) {
	e.t.Helper()
	gaps := e.count(`SELECT count(*) FROM (
		SELECT balance_after - amount - lag(balance_after, 1, 0::bigint) OVER (PARTITION BY account_id ORDER BY seq) AS gap
		FROM ledger.entries WHERE account_id = ANY($1::uuid[])) h WHERE gap <> 0`, accts)
	stale := e.count(`SELECT count(*) FROM ledger.accounts a WHERE a.id = ANY($1::uuid[]) AND a.balance <> coalesce((
		SELECT e.balance_after FROM ledger.entries e WHERE e.account_id = a.id ORDER BY e.seq DESC LIMIT 1), 0)`, accts)
	if gaps != 0 || stale != 0 {
		e.t.Errorf("histories: %d entries whose balance_after does not follow, %d stale balances; want 0, 0", gaps, stale)
	}
}

// auditedOnce fails the test unless each transfer has exactly one audit
// record of its own.
func (e *env) auditedOnce(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		if n := e.count(`SELECT count(*) FROM ledger.audit_events WHERE resource = $1`, "transfer/"+id); n != 1 {
			e.t.Errorf("audit records of transfer %s = %d, want 1", id, n)
		}
	}
}

// Several transfers out of one account in one batch are decided in turn
// against the balance the earlier ones left: the one the money no longer
// covers is refused, alone, and the rest post with histories that follow.
func TestBatchSameAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oneCommitter)
	alice := user()
	a, b, c := e.open(alice, "EUR"), e.open(user(), "EUR"), e.open(user(), "EUR")
	e.fund(a, 1_000, "EUR")
	out := make([]domain.Outcome, 4)
	got := e.batch(
		e.transfer(alice, a, b, 400, "k1", &out[0]),
		e.transfer(alice, a, b, 400, "k2", &out[1]),
		e.transfer(alice, a, b, 400, "k3", &out[2]),
		e.transfer(alice, a, c, 200, "k4", &out[3]),
	)
	want := []error{nil, nil, domain.ErrInsufficientFunds, nil}
	for i := range got {
		if !sameErr(got[i], want[i]) {
			t.Errorf("Transfer #%d in the batch = %v, want %v", i+1, got[i], want[i])
		}
	}
	for id, w := range map[string]int64{a: 0, b: 800, c: 200} {
		if m := e.money(id); m.Balance != w {
			t.Errorf("balance of %s = %d, want %d", id, m.Balance, w)
		}
	}
	e.checkBooks(a, b, c)
	e.auditedOnce(out[0].Transfer.ID, out[1].Transfer.ID, out[3].Transfer.ID)
	if n := e.count(`SELECT count(*) FROM ledger.audit_events WHERE actor = $1 AND outcome = 'refused'`, alice.ID); n != 1 {
		t.Errorf("refusals audited = %d, want 1", n)
	}
	if n := e.count(`SELECT amount FROM ledger.daily_usage WHERE user_id = $1`, alice.ID); n != 1_000 {
		t.Errorf("alice's usage = %d, want 1000 (three transfers posted)", n)
	}
}

// A→B and B→A in one batch, where the second is covered only by the
// first: both post, money is conserved, and the batch cannot deadlock with
// itself since it locks every account once, in order.
func TestBatchOppositeDirections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oneCommitter)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 500, "EUR")
	got := e.batch(
		e.transfer(alice, a, b, 500, uuid.NewString(), nil),
		e.transfer(bob, b, a, 300, uuid.NewString(), nil),
		e.transfer(alice, a, b, 300, uuid.NewString(), nil),
		e.transfer(bob, b, a, 501, uuid.NewString(), nil),
	)
	want := []error{nil, nil, nil, domain.ErrInsufficientFunds}
	for i := range got {
		if !sameErr(got[i], want[i]) {
			t.Errorf("Transfer #%d in the batch = %v, want %v", i+1, got[i], want[i])
		}
	}
	if ma, mb := e.money(a), e.money(b); ma.Balance != 0 || mb.Balance != 500 {
		t.Errorf("balances = %d, %d, want 0, 500", ma.Balance, mb.Balance)
	}
	e.checkBooks(a, b)
}

// The rules hold across a batch: two transfers of one user both count
// toward the daily limit and the cumulative approval threshold, a held
// transfer reserves its amount for the ones after it, and a frozen account
// refuses only its own transfer.
func TestBatchRulesCountEveryMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oneCommitter, withLimits(domain.Limits{ApprovalThreshold: 5_000, MaxTransfer: 10_000,
		DailyLimit: 12_000, ApprovalDailyThreshold: 8_000}))
	alice, bob, carol := user(), user(), user()
	a1, a2, b, c := e.open(alice, "EUR"), e.open(alice, "EUR"), e.open(bob, "EUR"), e.open(carol, "EUR")
	e.fund(a1, 5_000, "EUR")
	e.fund(a2, 9_000, "EUR")
	e.fund(c, 100, "EUR")
	if err := e.svc.SetAccountStatus(context.Background(), c, domain.AccountFrozen); err != nil {
		t.Fatal(err)
	}
	out := make([]domain.Outcome, 5)
	got := e.batch(
		e.transfer(alice, a1, b, 4_000, "r1", &out[0]), // posts: usage 4000
		e.transfer(alice, a2, b, 4_999, "r2", &out[1]), // 4000 + 4999 reaches the daily threshold: held
		e.transfer(alice, a1, b, 1_500, "r3", &out[2]), // 1000 left on a1: insufficient
		e.transfer(alice, a2, b, 3_002, "r4", &out[3]), // 4001 free on a2, but usage 8999 + 3002 > 12000
		e.transfer(carol, c, b, 50, "r5", &out[4]),     // frozen
	)
	want := []error{nil, nil, domain.ErrInsufficientFunds, domain.ErrDailyLimit, domain.ErrAccountNotActive}
	for i := range got {
		if !sameErr(got[i], want[i]) {
			t.Errorf("Transfer #%d in the batch = %v, want %v", i+1, got[i], want[i])
		}
	}
	if s := out[0].Transfer.Status; s != domain.StatusCompleted {
		t.Errorf("first transfer status = %s, want COMPLETED", s)
	}
	if s, r := out[1].Transfer.Status, out[1].Transfer.HoldReason; s != domain.StatusPendingApproval || r != domain.HoldDailyTotal {
		t.Errorf("second transfer = %s (%q), want PENDING_APPROVAL for the daily total", s, r)
	}
	if m := e.money(a2); m.Balance != 9_000 || m.Held != 4_999 {
		t.Errorf("a2 = %+v, want 9000 booked, 4999 held", m)
	}
	if m := e.money(a1); m.Balance != 1_000 {
		t.Errorf("a1 = %+v, want 1000", m)
	}
	if n := e.count(`SELECT amount FROM ledger.daily_usage WHERE user_id = $1 AND kind = 'transfer'`, alice.ID); n != 8_999 {
		t.Errorf("alice's usage = %d, want 8999", n)
	}
	e.checkBooks(a1, a2, b, c)
	e.auditedOnce(out[0].Transfer.ID, out[1].Transfer.ID)
	// The held one is approved later like any other.
	if _, err := e.svc.Approve(context.Background(), manager(), out[1].Transfer.ID); err != nil {
		t.Errorf("Approve(held in a batch) = %v", err)
	}
	e.checkBooks(a2, b)
}

// Deposits share their currency's settlement account, so a batch of them
// moves that one account many times: once, by their sum, with its entries
// booked in one statement, each following the one before.
func TestBatchDepositsShareSettlement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oneCommitter)
	accts := []string{e.open(user(), "SEK"), e.open(user(), "SEK"), e.open(user(), "SEK")}
	settlement := domain.SettlementAccountID("SEK")
	before := e.money(settlement).Balance
	boss := manager()
	var calls []func() error
	for i, a := range accts {
		for j := range 2 {
			calls = append(calls, func() error {
				_, err := e.svc.Deposit(context.Background(), boss, domain.DepositRequest{AccountID: a, Amount: int64(100*i + j + 1),
					Currency: "SEK", Reference: "cash", IdempotencyKey: uuid.NewString()})
				return err
			})
		}
	}
	for i, err := range e.batch(calls...) {
		if err != nil {
			t.Errorf("Deposit #%d in the batch = %v", i+1, err)
		}
	}
	if got := e.money(settlement).Balance; got != before-(1+2+101+102+201+202) {
		t.Errorf("settlement balance moved by %d, want %d", got-before, -(1 + 2 + 101 + 102 + 201 + 202))
	}
	e.checkBooks(append(accts, settlement)...)
	if n := e.count(`SELECT amount FROM ledger.daily_usage WHERE user_id = $1 AND kind = 'deposit'`, boss.ID); n != 609 {
		t.Errorf("depositor's usage = %d, want 609", n)
	}
}

// One key twice in a batch executes once: the second call with the same
// request gets the first's response, replayed; with another request, the
// key-reused refusal. A key whose first call was refused stays free.
func TestBatchSameKeyTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oneCommitter)
	alice := user()
	a, b := e.open(alice, "EUR"), e.open(user(), "EUR")
	e.fund(a, 1_000, "EUR")
	out := make([]domain.Outcome, 5)
	got := e.batch(
		e.transfer(alice, a, b, 100, "same", &out[0]),
		e.transfer(alice, a, b, 100, "same", &out[1]),
		e.transfer(alice, a, b, 101, "same", &out[2]),
		e.transfer(alice, a, b, 5_000, "free", &out[3]), // refused: stores nothing
		e.transfer(alice, a, b, 200, "free", &out[4]),
	)
	want := []error{nil, nil, domain.ErrKeyReused, domain.ErrInsufficientFunds, nil}
	for i := range got {
		if !sameErr(got[i], want[i]) {
			t.Errorf("Transfer #%d in the batch = %v, want %v", i+1, got[i], want[i])
		}
	}
	if out[0].Replayed || !out[1].Replayed || out[1].Transfer.ID != out[0].Transfer.ID {
		t.Errorf("same key twice = %+v then %+v, want the second a replay of the first", out[0], out[1])
	}
	if out[4].Replayed {
		t.Errorf("key of a refused transfer = %+v, want a fresh transfer", out[4])
	}
	if m := e.money(b); m.Balance != 300 {
		t.Errorf("target = %d, want 300 (100 once, then 200)", m.Balance)
	}
	if n := e.count(`SELECT count(*) FROM ledger.idempotency_keys WHERE user_id = $1`, alice.ID); n != 2 {
		t.Errorf("idempotency records = %d, want 2", n)
	}
}

// A member whose write the database refuses fails the batch's transaction;
// every member then runs again alone, so only that one fails and the
// others post, once each.
func TestBatchFailingWriteRetriesOthersAlone(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, oneCommitter)
	_, err := e.pool.Exec(context.Background(), `
		CREATE FUNCTION public.refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.description = 'refuse me' THEN RAISE EXCEPTION 'refused by the test'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_marked BEFORE INSERT ON ledger.transfers FOR EACH ROW EXECUTE FUNCTION public.refuse_marked();`)
	if err != nil {
		t.Fatal(err)
	}
	alice := user()
	a, b := e.open(alice, "EUR"), e.open(user(), "EUR")
	e.fund(a, 1_000, "EUR")
	send := func(amount int64, desc string) func() error {
		return func() error {
			_, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{
				From: a, To: b, Amount: amount, Currency: "EUR", Description: desc, IdempotencyKey: uuid.NewString()})
			return err
		}
	}
	got, failed := e.tryBatch(send(10, ""), send(20, "refuse me"), send(30, ""), send(40, ""))
	if !failed {
		t.Errorf("the batch's transaction did not fail: the test proved nothing")
	}
	for i, err := range got {
		if wantFail := i == 1; (err != nil) != wantFail || (wantFail && !isKind(err, errs.Internal)) {
			t.Errorf("Transfer #%d in the batch = %v, want failure only for #2, as Internal", i+1, err)
		}
	}
	if m := e.money(b); m.Balance != 80 {
		t.Errorf("target = %d, want 80 (10 + 30 + 40, each once)", m.Balance)
	}
	if n := e.count(`SELECT count(*) FROM ledger.transfers WHERE from_account_id = $1`, a); n != 3 {
		t.Errorf("transfers = %d, want 3", n)
	}
	e.checkBooks(a, b)
}

// When as many movements wait as the queue holds, the next is refused at
// once with ErrBusy (503 with Retry-After at the edge), and the waiting
// ones still run.
func TestBatchFullQueueIsBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withGroupCommit(postgres.GroupCommit{Committers: 1, MaxQueue: 2}))
	alice := user()
	a, b := e.open(alice, "EUR"), e.open(user(), "EUR")
	e.fund(a, 1_000, "EUR")
	release := e.holdCommitter()
	waiting := make(chan error, 2)
	for i := range 2 {
		go func() { waiting <- e.transfer(alice, a, b, 1, uuid.NewString(), nil)() }()
		waitFor(t, func() bool { return e.store.Stats().Queued == i+1 })
	}
	err := e.transfer(alice, a, b, 1, uuid.NewString(), nil)()
	var busy *errs.Error
	if !sameErr(err, domain.ErrBusy) || !errors.As(err, &busy) || busy.Kind != errs.Unavailable || busy.RetryAfter <= 0 {
		t.Errorf("Transfer(queue full) = %v, want %v: Unavailable with a retry delay", err, domain.ErrBusy)
	}
	release()
	for range 2 {
		if err := <-waiting; err != nil {
			t.Errorf("Transfer(waiting when the queue filled) = %v", err)
		}
	}
	if m := e.money(b); m.Balance != 2 {
		t.Errorf("target = %d, want 2", m.Balance)
	}
}

// A caller that gives up while its movement waits takes it out of the
// queue: it is never run.
func TestBatchCallerGivesUpWhileQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oneCommitter)
	alice := user()
	a, b := e.open(alice, "EUR"), e.open(user(), "EUR")
	e.fund(a, 1_000, "EUR")
	release := e.holdCommitter()
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: a, To: b, Amount: 5, Currency: "EUR", IdempotencyKey: "gone"})
		gaveUp <- err
	}()
	waitFor(t, func() bool { return e.store.Stats().Queued == 1 })
	cancel()
	if err := <-gaveUp; !isKind(err, errs.Unavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Transfer(cancelled while queued) = %v, want Unavailable wrapping context.Canceled", err)
	}
	if q := e.store.Stats().Queued; q != 0 {
		t.Errorf("queued after the caller gave up = %d, want 0", q)
	}
	release()
	if m := e.money(b); m.Balance != 0 {
		t.Errorf("target = %d, want 0: the abandoned transfer never ran", m.Balance)
	}
	deadline, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := e.svc.Transfer(deadline, alice, domain.TransferRequest{From: a, To: b, Amount: 5, Currency: "EUR", IdempotencyKey: "gone"}); err != nil || out.Replayed {
		t.Errorf("Transfer(same key, again) = %+v, %v, want a fresh transfer", out, err)
	}
}
