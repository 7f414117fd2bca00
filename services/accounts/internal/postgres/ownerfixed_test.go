package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// An account's owner never changes, whoever asks: the services remember who
// owns an id (rbac.CacheOwners), so the database refuses an UPDATE of the id
// or the owner, a DELETE and a TRUNCATE, even from the superuser this test
// connects as (migration 0002). Every statement runs in a transaction rolled
// back afterwards, so a missing trigger fails the test without harming the
// tests beside it.
func TestAccountOwnerIsFixed(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	ctx := context.Background()
	id, owner := uuid.NewString(), uuid.NewString()
	if _, err := pool.Exec(ctx, `INSERT INTO accounts.accounts (id, owner_id, currency, status, created_at, updated_at)
		VALUES ($1, $2, 'EUR', 'ACTIVE', now(), now())`, id, owner); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sql     string
		refused bool
	}{
		{"give the account to another owner", `UPDATE accounts.accounts SET owner_id = gen_random_uuid() WHERE id = $1`, true},
		{"give it to another owner with its status", `UPDATE accounts.accounts SET owner_id = gen_random_uuid(), status = 'FROZEN' WHERE id = $1`, true},
		{"move it to another id", `UPDATE accounts.accounts SET id = gen_random_uuid() WHERE id = $1`, true},
		{"delete it", `DELETE FROM accounts.accounts WHERE id = $1`, true},
		{"truncate the table", `TRUNCATE accounts.accounts`, true},
		{"freeze it", `UPDATE accounts.accounts SET status = 'FROZEN' WHERE id = $1`, false},
		{"rename it, writing the same owner", `UPDATE accounts.accounts SET display_name = 'rent', owner_id = owner_id WHERE id = $1`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			args := []any{id}
			if !strings.Contains(tt.sql, "$1") {
				args = nil
			}
			_, err = tx.Exec(ctx, tt.sql, args...)
			switch {
			case tt.refused && (err == nil || !strings.Contains(err.Error(), "never change")):
				t.Errorf("%s: %q = %v, want refused by the owner trigger", tt.name, tt.sql, err)
			case !tt.refused && err != nil:
				t.Errorf("%s: %q = %v, want it to pass", tt.name, tt.sql, err)
			}
		})
	}
	var got string
	if err := pool.QueryRow(ctx, `SELECT owner_id::text FROM accounts.accounts WHERE id = $1`, id).Scan(&got); err != nil || got != owner {
		t.Errorf("owner after the attempts = %q, %v; want %q", got, err, owner)
	}
}
