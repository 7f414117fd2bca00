package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
	accountspg "github.com/bastion-bank/bastion/services/accounts/internal/postgres"
)

// dbURL is the package's database. Every test works on owners and accounts
// of fresh random ids, so tests share it safely and in parallel.
var dbURL string

func TestMain(m *testing.M) { pgtest.Main(m, func(u string) { dbURL = u }) }

// migrated returns a pool on the package database with the schema applied.
// Migrate is idempotent and takes a lock, so every test may call it.
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, dbURL, postgres.PoolConfig{MaxConns: 20})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := accountspg.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pool
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	domaintest.TestStore(t, func(*testing.T) domain.Store { return accountspg.New(pool, time.Now) })
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	if err := accountspg.Migrate(context.Background(), pool); err != nil {
		t.Errorf("second Migrate() error = %v, want nil", err)
	}
}

// The audit trail is written in the change's own transaction, carries the
// client IP and actor, and its hash chain verifies.
func TestAuditTrail(t *testing.T) {
	pool := migrated(t)
	ctx := identity.WithClientIP(context.Background(), "203.0.113.7")
	repo := accountspg.New(pool, time.Now)
	owner, mgr := uuid.NewString(), uuid.NewString()
	at := time.Now().UTC().Truncate(time.Microsecond)
	a := domain.Account{ID: uuid.NewString(), OwnerID: owner, Currency: "EUR", Status: domain.StatusActive, CreatedAt: at, UpdatedAt: at}
	if _, err := repo.Open(ctx, owner, func(int) (domain.Account, domain.Event, error) {
		return a, domain.Event{Action: domain.ActionOpened, Actor: owner, Resource: domain.AccountResource(a.ID), Outcome: domain.OutcomeSuccess}, nil
	}, func(domain.Account) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// A rolled-back change leaves no audit row.
	_, err := repo.Update(ctx, a.ID, func(acc *domain.Account) (*domain.Event, error) {
		acc.Status = domain.StatusFrozen
		return &domain.Event{Action: domain.ActionFrozen, Actor: mgr, Resource: domain.AccountResource(a.ID), Outcome: domain.OutcomeSuccess}, nil
	}, func(domain.Account) error { return errs.New(errs.Unavailable, "ledger unavailable") })
	if errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("Update(confirm fails) error = %v, want Unavailable", err)
	}
	if _, err := repo.Update(ctx, a.ID, func(acc *domain.Account) (*domain.Event, error) {
		acc.Status, acc.StatusReason, acc.StatusChangedBy = domain.StatusFrozen, "fraud", mgr
		return &domain.Event{Action: domain.ActionFrozen, Actor: mgr, Resource: domain.AccountResource(a.ID), Outcome: domain.OutcomeSuccess,
			Detail: map[string]string{"reason": "fraud"}}, nil
	}, func(domain.Account) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT actor, action, outcome, client_ip, detail->>'reason' IS NOT NULL
		FROM accounts.audit_events WHERE resource = $1 ORDER BY id`, "account/"+a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var actor, action, outcome, ip string
		var hasReason bool
		if err := rows.Scan(&actor, &action, &outcome, &ip, &hasReason); err != nil {
			t.Fatal(err)
		}
		got = append(got, actor+" "+action+" "+outcome+" "+ip+" "+map[bool]string{true: "reason", false: "-"}[hasReason])
	}
	want := []string{
		owner + " account.opened success 203.0.113.7 -",
		mgr + " account.frozen success 203.0.113.7 reason",
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("audit rows = %q, want %q", got, want)
	}
	log := audit.New(accountspg.Schema, time.Now)
	if _, err := log.Seal(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if rep, err := log.Verify(ctx, pool); err != nil || rep.Sealed < 2 {
		t.Errorf("audit Verify() = %+v, %v; want at least 2 rows and nil", rep, err)
	}
}

// The table refuses what the domain never writes, as a second line behind
// the domain's checks.
func TestSchemaConstraints(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	insert := `INSERT INTO accounts.accounts (id, owner_id, currency, display_name, status, status_reason, status_changed_by, created_at, updated_at)
		VALUES (gen_random_uuid(), gen_random_uuid(), $1, $2, $3, $4, $5, now(), now())`
	tests := []struct {
		name                            string
		currency, name_, status, reason string
		changedBy                       any
	}{
		{"lower-case currency", "eur", "", "ACTIVE", "", nil},
		{"unknown status", "EUR", "", "DELETED", "", nil},
		{"long name", "EUR", string(make([]byte, 65)), "ACTIVE", "", nil},
		{"reason without actor", "EUR", "", "FROZEN", "why", nil},
		{"actor without reason", "EUR", "", "FROZEN", "", uuid.NewString()},
	}
	for _, tt := range tests {
		if _, err := pool.Exec(context.Background(), insert, tt.currency, tt.name_, tt.status, tt.reason, tt.changedBy); err == nil {
			t.Errorf("insert(%s) error = nil, want a constraint violation", tt.name)
		}
	}
}

func TestStoreErrorsHaveKinds(t *testing.T) {
	t.Parallel()
	pool := migrated(t)
	repo := accountspg.New(pool, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := repo.Get(ctx, uuid.NewString()); errs.KindOf(err) != errs.Unavailable {
		t.Errorf("Get(cancelled) error = %v (kind %v), want Unavailable", err, errs.KindOf(err))
	}
	// A malformed id reaching the database (the domain never sends one) is
	// an Internal error, never a leak of the Postgres text.
	_, err := repo.Get(context.Background(), "not-a-uuid")
	if errs.KindOf(err) != errs.Internal || errs.SafeMessage(err) != "internal error" {
		t.Errorf("Get(malformed) error = %v, want Internal with a generic message", err)
	}
}
