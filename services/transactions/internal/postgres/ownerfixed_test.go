package postgres_test

import (
	"context"
	"strings"
	"testing"
)

// An account's owner and kind never change, whoever asks: the ledger
// remembers who owns an account or a transfer (rbac.CacheOwners), so the
// database refuses an UPDATE of an account's id, owner or kind and a DELETE,
// even from the superuser this test connects as (migration 0008). Every
// statement runs in a transaction rolled back afterwards. A transfer's sides
// are fixed by ledger.transfers_guard (TestBooksAreAppendOnly).
func TestAccountOwnerIsFixed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob := user(), user()
	a := e.open(alice, "EUR")
	ctx := context.Background()
	tests := []struct {
		name    string
		sql     string
		args    []any
		refused bool
	}{
		{"give the account to another owner", `UPDATE ledger.accounts SET owner_id = $2 WHERE id = $1`, []any{a, bob.ID}, true},
		{"give it away with its status", `UPDATE ledger.accounts SET owner_id = $2, status = 'FROZEN' WHERE id = $1`, []any{a, bob.ID}, true},
		{"make it a settlement account", `UPDATE ledger.accounts SET owner_id = NULL, kind = 'settlement' WHERE id = $1`, []any{a}, true},
		{"move it to another id", `UPDATE ledger.accounts SET id = gen_random_uuid() WHERE id = $1`, []any{a}, true},
		{"delete it", `DELETE FROM ledger.accounts WHERE id = $1`, []any{a}, true},
		{"freeze it", `UPDATE ledger.accounts SET status = 'FROZEN' WHERE id = $1`, []any{a}, false},
		{"write the same owner and kind", `UPDATE ledger.accounts SET owner_id = owner_id, kind = kind, updated_at = now() WHERE id = $1`, []any{a}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			_, err = tx.Exec(ctx, tt.sql, tt.args...)
			switch {
			case tt.refused && (err == nil || !strings.Contains(err.Error(), "never change")):
				t.Errorf("%s: %q = %v, want refused by the owner trigger", tt.name, tt.sql, err)
			case !tt.refused && err != nil:
				t.Errorf("%s: %q = %v, want it to pass", tt.name, tt.sql, err)
			}
		})
	}
	accts, err := e.store.Accounts(ctx, []string{a})
	if err != nil || len(accts) != 1 || accts[0].OwnerID != alice.ID {
		t.Errorf("Accounts(%s) after the attempts = %+v, %v; want owned by %s", a, accts, err, alice.ID)
	}
}
