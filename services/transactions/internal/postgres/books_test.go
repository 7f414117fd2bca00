package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// The books cannot be rewritten, even by a connection that bypasses the
// service: entries refuse UPDATE, DELETE and TRUNCATE; a transfer's amount
// and sides never change; a decided transfer cannot be decided again; and a
// transfer cannot be posted with unbalanced entries.
func TestBooksAreAppendOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 1_000, "EUR")
	out, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{From: a, To: b, Amount: 100, Currency: "EUR", IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	tr := out.Transfer.ID
	attacks := []struct {
		name string
		sql  string
		args []any
	}{
		{"edit an entry", `UPDATE ledger.entries SET amount = amount * 10 WHERE transfer_id = $1`, []any{tr}},
		{"delete an entry", `DELETE FROM ledger.entries WHERE transfer_id = $1`, []any{tr}},
		{"truncate entries", `TRUNCATE ledger.entries CASCADE`, nil},
		{"change an amount", `UPDATE ledger.transfers SET amount = 1 WHERE id = $1`, []any{tr}},
		{"redirect a transfer", `UPDATE ledger.transfers SET to_account_id = from_account_id, from_account_id = to_account_id WHERE id = $1`, []any{tr}},
		{"un-complete a transfer", `UPDATE ledger.transfers SET status = 'REJECTED', decided_by = gen_random_uuid(), decided_at = now() WHERE id = $1`, []any{tr}},
		{"delete a transfer", `DELETE FROM ledger.transfers WHERE id = $1`, []any{tr}},
		{"one-sided entry", `WITH t AS (INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, status, kind, initiated_by, created_at)
			VALUES (gen_random_uuid(), $1, $2, 5, 'EUR', 'COMPLETED', 'transfer', gen_random_uuid(), now()) RETURNING id)
			INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
			SELECT id, $2, $1, 5, 5, now() FROM t`, []any{a, b}},
		{"entries that do not match the transfer", `WITH t AS (INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, status, kind, initiated_by, created_at)
			VALUES (gen_random_uuid(), $1, $2, 5, 'EUR', 'COMPLETED', 'transfer', gen_random_uuid(), now()) RETURNING id)
			INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
			SELECT id, $2, $1, 500, 500, now() FROM t UNION ALL SELECT id, $1, $2, -500, 0, now() FROM t`, []any{a, b}},
		{"a third entry on a posted transfer", `INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
			SELECT id, $2, $3, 100, 200, now() FROM ledger.transfers WHERE id = $1`, []any{tr, e.open(bob, "EUR"), a}},
		{"a matching pair on a held transfer", `WITH t AS (INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, status, kind, initiated_by, created_at)
			VALUES (gen_random_uuid(), $1, $2, 5, 'EUR', 'PENDING_APPROVAL', 'transfer', gen_random_uuid(), now()) RETURNING id)
			INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
			SELECT id, $2, $1, 5, 105, now() FROM t UNION ALL SELECT id, $1, $2, -5, 895, now() FROM t`, []any{a, b}},
		{"overdraw", `UPDATE ledger.accounts SET balance = -1 WHERE id = $1`, []any{b}},
		{"hold more than the balance", `UPDATE ledger.accounts SET held = balance + 1 WHERE id = $1`, []any{b}},
	}
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			// Not parallel: TRUNCATE would wait for everyone else's locks.
			if _, err := e.pool.Exec(context.Background(), at.sql, at.args...); err == nil {
				t.Errorf("%s: the database accepted %q, want it refused", at.name, at.sql)
			}
		})
	}
	if m := e.money(b); m.Balance != 100 || m.Held != 0 {
		t.Errorf("target after the attacks = %+v, want 100", m)
	}
	if n := e.count(`SELECT count(*) FROM ledger.entries WHERE transfer_id = $1 AND amount IN (-100, 100)`, tr); n != 2 {
		t.Errorf("entries of the transfer after the attacks = %d, want 2 intact", n)
	}
}

// One statement may book several entries of an account (a batch books all
// of its postings at once), each continuing the one before it, the newest
// equal to the balance; but no step of a customer's history in it may be
// below zero, as no balance of theirs may be. Two transfers that go out and
// back in one statement, moving no balance in the end, are booked when the
// customer could pay the first and refused when the way out overdraws.
func TestBooksRefuseAnOverdraftInsideAStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 1_000, "EUR")
	if _, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{From: a, To: b, Amount: 100, Currency: "EUR", IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		amount int64 // b sends this to a, then a sends it back
		ok     bool
	}{
		{"within the balance", 60, true},
		{"past the balance", 150, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, back := uuid.NewString(), uuid.NewString()
			ctx := context.Background()
			tx, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, status, kind, initiated_by, created_at)
				VALUES ($1, $3, $4, $5, 'EUR', 'COMPLETED', 'transfer', gen_random_uuid(), now()),
					($2, $4, $3, $5, 'EUR', 'COMPLETED', 'transfer', gen_random_uuid(), now())`, out, back, b, a, tc.amount); err != nil {
				t.Fatal(err)
			}
			_, err = tx.Exec(ctx, `INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
				SELECT transfer_id, account_id, counterparty_account_id, amount, balance_after, now()
				FROM (VALUES (1, $1::uuid, $3::uuid, $4::uuid, -$5::bigint, 100 - $5::bigint),
					(2, $1, $4, $3, $5, 900 + $5),
					(3, $2, $4, $3, -$5, 900),
					(4, $2, $3, $4, $5, 100)) AS w(i, transfer_id, account_id, counterparty_account_id, amount, balance_after)
				ORDER BY i`, out, back, b, a, tc.amount)
			if tc.ok && err != nil {
				t.Errorf("a round trip within %s's balance in one statement = %v, want booked", b, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "does not continue its account's history")) {
				t.Errorf("a round trip that overdraws %s in one statement = %v, want refused by the books", b, err)
			}
		})
	}
	if m := e.money(b); m.Balance != 100 {
		t.Errorf("target after the round trips, rolled back = %+v, want 100", m)
	}
}

// An entry must name a transfer that exists, and the accounts of that
// transfer: the books check it once per statement (migration 0007). A
// balanced pair that moves two balances as a real transfer would is booked
// when its transfer exists, and refused when it does not.
func TestBooksRefuseEntriesOfNoTransfer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.open(user(), "EUR"), e.open(user(), "EUR")
	e.fund(a, 1_000, "EUR")
	for _, tc := range []struct {
		name   string
		exists bool
	}{
		{"its transfer exists", true},
		{"its transfer does not", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			ctx := context.Background()
			tx, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if tc.exists {
				if _, err := tx.Exec(ctx, `INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, status, kind, initiated_by, created_at)
					VALUES ($1, $2, $3, 5, 'EUR', 'COMPLETED', 'transfer', gen_random_uuid(), now())`, id, a, b); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE ledger.accounts SET balance = balance + CASE id WHEN $1 THEN -5 ELSE 5 END WHERE id IN ($1, $2)`, a, b); err != nil {
				t.Fatal(err)
			}
			_, err = tx.Exec(ctx, `INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
				VALUES ($1, $2, $3, -5, 995, now()), ($1, $3, $2, 5, 5, now())`, id, a, b)
			if tc.exists && err != nil {
				t.Errorf("entries of an existing transfer = %v, want booked", err)
			}
			if !tc.exists && (err == nil || !strings.Contains(err.Error(), "is not balanced")) {
				t.Errorf("entries of no transfer = %v, want refused by the books", err)
			}
		})
	}
	if m := e.money(b); m.Balance != 0 {
		t.Errorf("target after the attempts, rolled back = %+v, want 0", m)
	}
}

func TestListEntriesPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 10_000, "EUR")
	const n = 45
	for i := range n {
		e.advance(time.Second)
		if _, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{
			From: a, To: b, Amount: int64(i + 1), Currency: "EUR", Description: "n", IdempotencyKey: uuid.NewString()}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		size      int
		wantPages []int
	}{
		{size: 0, wantPages: []int{20, 20, 5}}, // default page size
		{size: 10, wantPages: []int{10, 10, 10, 10, 5}},
		{size: 45, wantPages: []int{45}},
		{size: 1000, wantPages: []int{45}}, // clamped to 100
	}
	for _, tt := range tests {
		var pages []int
		var all []domain.Entry
		before := int64(0)
		for {
			page, err := e.svc.ListEntries(context.Background(), b, before, tt.size)
			if err != nil {
				t.Fatalf("ListEntries(size %d) = %v", tt.size, err)
			}
			pages = append(pages, len(page.Entries))
			all = append(all, page.Entries...)
			if page.Next == 0 {
				break
			}
			before = page.Next
		}
		if !slices.Equal(pages, tt.wantPages) {
			t.Errorf("ListEntries(size %d) pages = %v, want %v", tt.size, pages, tt.wantPages)
		}
		// Newest first, and balance_after counts down by each amount.
		for i, en := range all {
			wantAmount := int64(n - i)
			wantAfter := int64((n - i) * (n - i + 1) / 2)
			if en.Amount != wantAmount || en.BalanceAfter != wantAfter || en.Counterparty != a {
				t.Errorf("entry %d = %+v, want amount %d, balanceAfter %d from %s", i, en, wantAmount, wantAfter, a)
				break
			}
		}
	}
	src, err := e.svc.ListEntries(context.Background(), a, 0, 1)
	if err != nil || len(src.Entries) != 1 || src.Entries[0].Amount != -n || src.Entries[0].BalanceAfter != 10_000-n*(n+1)/2 {
		t.Errorf("ListEntries(source, 1) = %+v, %v, want the last debit", src, err)
	}
	for _, id := range []string{uuid.NewString(), domain.SettlementAccountID("EUR"), "x"} {
		if _, err := e.svc.ListEntries(context.Background(), id, 0, 0); !sameErr(err, domain.ErrAccountNotFound) {
			t.Errorf("ListEntries(%q) = %v, want %v", id, err, domain.ErrAccountNotFound)
		}
	}
}

func TestOwners(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	dep := e.fund(a, 1_000, "EUR")
	out, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{From: a, To: b, Amount: 1, Currency: "EUR", IdempotencyKey: "o"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		resource, id string
		want         []string
	}{
		{"account", a, []string{alice.ID}},
		{"account", upper(b), []string{bob.ID}},
		{"transfer", out.Transfer.ID, []string{alice.ID, bob.ID}},
		{"transfer", dep.ID, []string{alice.ID}}, // the settlement side has no owner
		{"account", uuid.NewString(), nil},
		{"account", domain.SettlementAccountID("EUR"), nil},
		{"account", out.Transfer.ID, nil}, // a transfer id is not an account
		{"transfer", a, nil},
		{"transfer", uuid.NewString(), nil},
		{"user", alice.ID, nil},
		{"", a, nil},
		{"account", "'; DROP TABLE ledger.accounts; --", nil},
	}
	for _, tt := range tests {
		got, err := e.svc.Owners(context.Background(), tt.resource, tt.id)
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tt.want))
		if tt.want == nil && !isKind(err, errs.NotFound) || tt.want != nil && (err != nil || !slices.Equal(got, want)) {
			t.Errorf("Owners(%q, %q) = %v, %v, want %v (nil means NotFound)", tt.resource, tt.id, got, err, tt.want)
		}
	}
}

func TestOpenAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := user()
	id := uuid.NewString()
	ctx := context.Background()
	if err := e.svc.OpenAccount(ctx, id, alice.ID, "SEK"); err != nil {
		t.Fatalf("OpenAccount = %v", err)
	}
	if err := e.svc.OpenAccount(ctx, id, alice.ID, "SEK"); err != nil {
		t.Errorf("OpenAccount(again, same facts) = %v, want nil", err)
	}
	for _, tc := range []struct{ owner, currency string }{{user().ID, "SEK"}, {alice.ID, "NOK"}} {
		if err := e.svc.OpenAccount(ctx, id, tc.owner, tc.currency); !sameErr(err, domain.ErrAccountConflict) {
			t.Errorf("OpenAccount(same id, %s %s) = %v, want %v", tc.owner, tc.currency, err, domain.ErrAccountConflict)
		}
	}
	if err := e.svc.OpenAccount(ctx, domain.SettlementAccountID("SEK"), alice.ID, "SEK"); !sameErr(err, domain.ErrAccountConflict) {
		t.Errorf("OpenAccount(the settlement id) = %v, want %v", err, domain.ErrAccountConflict)
	}
	for _, bad := range [][3]string{{"x", alice.ID, "SEK"}, {id, "x", "SEK"}, {id, alice.ID, "sek"}, {id, alice.ID, "SEKK"}} {
		if err := e.svc.OpenAccount(ctx, bad[0], bad[1], bad[2]); !isKind(err, errs.Invalid) {
			t.Errorf("OpenAccount(%q) = %v, want Invalid", bad, err)
		}
	}
	got, err := e.svc.Balances(ctx, []string{id, domain.SettlementAccountID("SEK"), uuid.NewString(), "junk"})
	if err != nil || len(got) != 1 || got[0].ID != id || got[0].Currency != "SEK" || got[0].Status != domain.AccountActive {
		t.Errorf("Balances = %+v, %v, want just the new ACTIVE SEK account", got, err)
	}
}

// SetAccountStatus waits for a transfer in flight on the account, and every
// transfer after it sees the new status.
func TestFreezeWaitsForInFlightTransfers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 1_000, "EUR")
	release := e.txLock(`SELECT 1 FROM ledger.accounts WHERE id = $1 FOR UPDATE`, a)
	done := make(chan error, 1)
	go func() { done <- e.svc.SetAccountStatus(context.Background(), a, domain.AccountFrozen) }()
	select {
	case err := <-done:
		t.Fatalf("SetAccountStatus returned %v while a transfer held the account, want it to wait", err)
	case <-time.After(200 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("SetAccountStatus = %v", err)
	}
	_, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{From: a, To: b, Amount: 1, Currency: "EUR", IdempotencyKey: "after-freeze"})
	if !sameErr(err, domain.ErrAccountNotActive) {
		t.Errorf("Transfer(after freeze) = %v, want %v", err, domain.ErrAccountNotActive)
	}
	if err := e.svc.SetAccountStatus(context.Background(), a, domain.AccountActive); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{From: a, To: b, Amount: 1, Currency: "EUR", IdempotencyKey: "after-unfreeze"}); err != nil {
		t.Errorf("Transfer(after unfreeze) = %v, want nil", err)
	}
	for _, tc := range []struct {
		id, status string
		kind       errs.Kind
	}{
		{uuid.NewString(), domain.AccountFrozen, errs.NotFound},
		{domain.SettlementAccountID("EUR"), domain.AccountFrozen, errs.NotFound},
		{a, "DELETED", errs.Invalid},
	} {
		if err := e.svc.SetAccountStatus(context.Background(), tc.id, tc.status); !isKind(err, tc.kind) {
			t.Errorf("SetAccountStatus(%s, %s) = %v, want kind %v", tc.id, tc.status, err, tc.kind)
		}
	}
}

func TestDeposits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, boss := user(), manager()
	a := e.open(alice, "GBP")
	frozen := e.open(alice, "GBP")
	if err := e.svc.SetAccountStatus(context.Background(), frozen, domain.AccountFrozen); err != nil {
		t.Fatal(err)
	}
	settlement := domain.SettlementAccountID("GBP")
	dep := func(acct string, amount int64, currency string) error {
		_, err := e.svc.Deposit(context.Background(), boss, domain.DepositRequest{AccountID: acct, Amount: amount,
			Currency: currency, Reference: "ref", IdempotencyKey: uuid.NewString()})
		return err
	}
	// A deposit at or above the approval threshold is held like a transfer:
	// on the settlement side, nothing credited, until a second person
	// approves it.
	big, err := e.svc.Deposit(context.Background(), boss, domain.DepositRequest{AccountID: a, Amount: testLimits.ApprovalThreshold * 2,
		Currency: "GBP", Reference: "ref", IdempotencyKey: uuid.NewString()})
	if err != nil || big.Transfer.Status != domain.StatusPendingApproval || big.Transfer.HoldReason != domain.HoldAmount {
		t.Fatalf("Deposit(large) = %+v, %v, want PENDING_APPROVAL for its amount", big.Transfer, err)
	}
	if m := e.money(a); m != (money{}) {
		t.Errorf("account while a large deposit is held = %+v, want nothing yet", m)
	}
	if m := e.money(settlement); m.Held != 20_000 {
		t.Errorf("settlement while a large deposit is held = %+v, want 20000 held", m)
	}
	if _, err := e.svc.Approve(context.Background(), manager(), big.Transfer.ID); err != nil {
		t.Fatalf("Approve(large deposit) = %v", err)
	}
	if m := e.money(a); m != (money{Balance: 20_000}) {
		t.Errorf("account after a large deposit = %+v, want 20000 booked, nothing held", m)
	}
	refusals := []struct {
		name     string
		acct     string
		amount   int64
		currency string
		want     error
	}{
		{"frozen account", frozen, 10, "GBP", domain.ErrAccountNotActive},
		{"other currency", a, 10, "EUR", domain.ErrCurrencyMismatch},
		{"unknown account", uuid.NewString(), 10, "GBP", domain.ErrAccountNotFound},
		{"into the settlement account", settlement, 10, "GBP", domain.ErrAccountNotFound},
		{"over the maximum", a, testLimits.MaxTransfer + 1, "GBP", domain.ErrOverMaximum},
	}
	for _, r := range refusals {
		before := e.snapshot(boss, a, frozen, settlement)
		if err := dep(r.acct, r.amount, r.currency); !sameErr(err, r.want) {
			t.Errorf("Deposit(%s) = %v, want %v", r.name, err, r.want)
		}
		if after := e.snapshot(boss, a, frozen, settlement); !equalSnapshots(before, after) {
			t.Errorf("Deposit(%s) changed the ledger", r.name)
		}
	}
	for _, bad := range []int64{0, -5} {
		if err := dep(a, bad, "GBP"); !isKind(err, errs.Invalid) {
			t.Errorf("Deposit(%d) = %v, want Invalid", bad, err)
		}
	}
}

func equalSnapshots(a, b snapshot) bool {
	if a.Entries != b.Entries || a.Xfers != b.Xfers || a.Usage != b.Usage || len(a.Money) != len(b.Money) {
		return false
	}
	for k, v := range a.Money {
		if b.Money[k] != v {
			return false
		}
	}
	return true
}

func TestPrune(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t)
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 1_000, "EUR")
	req := domain.TransferRequest{From: a, To: b, Amount: 5, Currency: "EUR", IdempotencyKey: "old"}
	if _, err := e.svc.Transfer(context.Background(), alice, req); err != nil {
		t.Fatal(err)
	}
	keys := func() int {
		return e.count(`SELECT count(*) FROM ledger.idempotency_keys WHERE user_id = $1`, alice.ID)
	}
	usage := func() int { return e.count(`SELECT count(*) FROM ledger.daily_usage WHERE user_id = $1`, alice.ID) }
	// A TTL below a day is raised to a day: 23 hours later the key is kept
	// and still replays, and so is the usage row of today.
	e.advance(23 * time.Hour)
	if _, err := e.svc.Prune(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if out, err := e.svc.Transfer(context.Background(), alice, req); err != nil || !out.Replayed || keys() != 1 || usage() != 1 {
		t.Errorf("after pruning at 23h: Transfer = %+v, %v, keys %d, usage rows %d; want a replay, 1, 1", out, err, keys(), usage())
	}
	// Two days later both are gone, and the key is new again.
	e.advance(25 * time.Hour)
	n, err := e.svc.Prune(context.Background(), 24*time.Hour)
	if err != nil || n < 2 || keys() != 0 || usage() != 0 {
		t.Fatalf("Prune at 48h = %d, %v, keys %d, usage rows %d; want both gone", n, err, keys(), usage())
	}
	if out, err := e.svc.Transfer(context.Background(), alice, req); err != nil || out.Replayed {
		t.Errorf("Transfer(pruned key) = %+v, %v, want a fresh transfer", out, err)
	}
}
