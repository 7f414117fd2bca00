package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// TestReadStoredProbesEachKey checks that the batch reads each stored
// idempotency record by its primary key even when the planner prefers
// anything but a nested loop, as it did from the stale statistics of a
// young table: it then read the whole table by a hash join on every batch.
func TestReadStoredProbesEachKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	users := []string{uuid.NewString(), uuid.NewString()}
	keys := []string{uuid.NewString(), uuid.NewString()}
	for _, setting := range []string{"on", "off"} {
		t.Run("enable_nestloop="+setting, func(t *testing.T) {
			var plan []string
			err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SET LOCAL enable_nestloop = "+setting); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, "EXPLAIN (COSTS OFF) "+postgres.ReadStoredSQL, users, keys)
				if err != nil {
					return err
				}
				plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, "Index Scan using idempotency_keys_pkey") || strings.Contains(text, "Seq Scan") {
				t.Errorf("plan of the stored-record read =\n%s\nwant one primary key probe per key and no sequential scan", text)
			}
		})
	}
}

// TestBooksCheckPlansByKey checks that the books' statement trigger still
// plans its queries as index probes (migration 0009): a later migration
// that replaces the function with CREATE OR REPLACE drops these settings
// unless it repeats them.
func TestBooksCheckPlansByKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var config []string
	err := e.pool.QueryRow(context.Background(), `SELECT coalesce(p.proconfig, '{}') FROM pg_proc p
		WHERE p.oid = 'ledger.entries_balanced()'::regprocedure`).Scan(&config)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"enable_seqscan=off", "enable_hashjoin=off", "enable_mergejoin=off"} {
		if !slices.Contains(config, want) {
			t.Errorf("ledger.entries_balanced() settings = %v, want %s among them", config, want)
		}
	}
}
