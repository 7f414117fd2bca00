package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	bankpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/services/auth/internal/postgres"
)

// dbURL is this package's database, created by TestMain and dropped after.
var dbURL string

func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { dbURL = u }) }

// openRepo returns a store on the package database, migrated.
func openRepo(t testing.TB) (*postgres.Store, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := bankpg.Open(ctx, dbURL, bankpg.PoolConfig{MaxConns: 20})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return postgres.New(pool, time.Now), pool
}
