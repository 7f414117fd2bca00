package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
)

func TestMapError(t *testing.T) {
	t.Parallel()
	pool := openPool(t, packageURL)
	ctx := context.Background()
	schema := "e_" + suffix()
	exec(t, pool, "CREATE SCHEMA "+schema)
	exec(t, pool, "CREATE TABLE "+schema+".secret_accounts (id int PRIMARY KEY, balance int CONSTRAINT balance_never_negative CHECK (balance >= 0), owner int REFERENCES "+schema+".secret_accounts)")
	exec(t, pool, "INSERT INTO "+schema+".secret_accounts VALUES (1, 5, NULL)")
	// Real errors from the server, not hand-made ones.
	insert := func(sql string) error {
		_, err := pool.Exec(ctx, "INSERT INTO "+schema+".secret_accounts "+sql)
		return err
	}
	var id int
	noRows := pool.QueryRow(ctx, "SELECT id FROM "+schema+".secret_accounts WHERE id = 42").Scan(&id)
	mine := errs.New(errs.Permission, "not yours")

	tests := []struct {
		name     string
		err      error
		wantKind errs.Kind
		wantMsg  string
		unique   bool
	}{
		{"unique violation", insert("VALUES (1, 1, NULL)"), errs.Conflict, "already exists", true},
		{"wrapped unique violation", fmt.Errorf("create: %w", insert("VALUES (1, 1, NULL)")), errs.Conflict, "already exists", true},
		{"check violation", insert("VALUES (2, -1, NULL)"), errs.Refused, "refused by a rule", false},
		{"foreign key violation", insert("VALUES (3, 1, 999)"), errs.Internal, "internal error", false},
		{"syntax error", insert("VALUES ("), errs.Internal, "internal error", false},
		{"no rows", noRows, errs.NotFound, "not found", false},
		{"not from postgres", errors.New("dial tcp: secret-host:5432"), errs.Internal, "internal error", false},
		{"already classified", fmt.Errorf("op: %w", mine), errs.Permission, "not yours", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := postgres.MapError(tt.err)
			if errs.KindOf(got) != tt.wantKind || errs.SafeMessage(got) != tt.wantMsg {
				t.Errorf("MapError(%v) = %v (%q), want kind %v %q", tt.err, got, errs.SafeMessage(got), tt.wantKind, tt.wantMsg)
			}
			// The client sees no table, constraint, host or value.
			for _, leak := range []string{"secret", "balance", "violat", "42"} {
				if strings.Contains(errs.SafeMessage(got), leak) {
					t.Errorf("SafeMessage(MapError(%v)) = %q, leaks %q", tt.err, errs.SafeMessage(got), leak)
				}
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("MapError(%v) lost its cause", tt.err)
			}
			if postgres.IsUniqueViolation(tt.err) != tt.unique {
				t.Errorf("IsUniqueViolation(%v) = %v, want %v", tt.err, !tt.unique, tt.unique)
			}
		})
	}
	if postgres.MapError(nil) != nil || postgres.IsUniqueViolation(nil) {
		t.Errorf("MapError(nil) or IsUniqueViolation(nil) not nil/false")
	}
	if !errors.Is(noRows, pgx.ErrNoRows) {
		t.Fatalf("setup: %v is not ErrNoRows", noRows)
	}
}
