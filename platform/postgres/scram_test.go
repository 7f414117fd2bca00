package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// randomSuffix keeps cluster-wide names apart between runs.
func randomSuffix() string { return strings.ToLower(rand.Text()[:10]) }

// adminConn connects as the test superuser until the test and its cleanups end.
func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// storedVerifier reads role's password verifier from the server.
func storedVerifier(t *testing.T, conn *pgx.Conn, role string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(context.Background(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&v); err != nil {
		t.Fatalf("read verifier of %s: %v", role, err)
	}
	return v
}

// recompute derives the verifier for password with the salt and iteration
// count found in stored, using this package's code.
func recompute(t *testing.T, stored, password string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	iterText, rest, ok2 := strings.Cut(rest, ":")
	saltText, _, ok3 := strings.Cut(rest, "$")
	iter, err := strconv.Atoi(iterText)
	salt, err2 := base64.StdEncoding.DecodeString(saltText)
	if !ok || !ok2 || !ok3 || err != nil || err2 != nil {
		t.Fatalf("verifier %q is not SCRAM-SHA-256", stored)
	}
	v, err := scramVerifier(password, salt, iter)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestScramVerifierMatchesServer checks this package's SCRAM derivation
// against the server's own: Postgres hashes a plain password, and the Go
// code must derive the same verifier from the same salt. Local trust
// authentication never checks passwords, so this is what proves that
// provisioned roles can log in with theirs.
func TestScramVerifierMatchesServer(t *testing.T) {
	t.Parallel()
	conn := adminConn(t)
	for _, password := range []string{"sixteen-chars-ok", `with 'quotes' and "dq" \ $1:`, strings.Repeat("x", 1024)} {
		role := "scram_" + randomSuffix()
		_, err := conn.Exec(context.Background(), "CREATE ROLE "+ident(role)+" PASSWORD "+quoteLiteral(password))
		if err != nil {
			t.Fatalf("create role: %v", err)
		}
		stored := storedVerifier(t, conn, role)
		conn.Exec(context.Background(), "DROP ROLE "+ident(role))
		if got := recompute(t, stored, password); got != stored {
			t.Errorf("scramVerifier(%q) = %q, server has %q", password, got, stored)
		}
	}
}

func TestProvisionSendsVerifier(t *testing.T) {
	t.Parallel()
	conn := adminConn(t)
	db, role, owner := "prov_"+randomSuffix(), "svc_"+randomSuffix(), "own_"+randomSuffix()
	t.Cleanup(func() {
		if err := Deprovision(context.Background(), pgtest.AdminURL(), db); err != nil {
			t.Errorf("Deprovision(%s) = %v", db, err)
		}
	})
	var verifiers []string
	for _, password := range []string{"first-password-16", "second-password-16"} {
		spec := RoleSpec{Schema: "scram", Owner: owner, OwnerPassword: "owner-" + password, Role: role, Password: password}
		if err := Provision(context.Background(), pgtest.AdminURL(), db, []RoleSpec{spec}); err != nil {
			t.Fatalf("Provision() error = %v", err)
		}
		for login, password := range map[string]string{role: password, owner: "owner-" + password} {
			stored := storedVerifier(t, conn, login)
			if got := recompute(t, stored, password); got != stored {
				t.Errorf("after Provision(%q): stored verifier of %s %q does not match the password", password, login, stored)
			}
		}
		verifiers = append(verifiers, storedVerifier(t, conn, role))
	}
	if verifiers[0] == verifiers[1] {
		t.Errorf("second Provision did not change the password")
	}
}

func TestIsDuplicate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want bool
	}{
		{codeDuplicateObject, true},
		{codeUniqueViolation, true},
		{codeDuplicateSchema, false},
		{"42501", false},
	}
	for _, tt := range tests {
		err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: tt.code})
		if got := isDuplicate(err, codeDuplicateObject); got != tt.want {
			t.Errorf("isDuplicate(%s, %s) = %v, want %v", tt.code, codeDuplicateObject, got, tt.want)
		}
	}
}
