package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// prepareStack prepares a stack on database db of the test server, in a
// directory of its own, as `make run` with BANK_DATABASE_URL naming db does.
func prepareStack(t *testing.T, dir, db string) *Prepared {
	t.Helper()
	u, err := url.Parse(pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	p, err := Prepare(context.Background(), Config{Dir: dir, DatabaseURL: u.String(), Addrs: DefaultAddrs()})
	if err != nil {
		t.Fatalf("Prepare(%s) = %v", db, err)
	}
	return p
}

// loginsOf returns every database login p hands out, by role name: the
// servers', the migrate commands' and the audit verifier's.
func loginsOf(t *testing.T, p *Prepared) []string {
	t.Helper()
	var urls []string
	for _, env := range []map[string][]string{p.Env, p.Migrate} {
		for _, vars := range env {
			for _, kv := range vars {
				if v, ok := strings.CutPrefix(kv, "BANK_DATABASE_URL="); ok {
					urls = append(urls, v)
				}
			}
		}
	}
	urls = append(urls, p.AuditURL)
	var roles []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		roles = append(roles, u.User.Username())
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

// verifiers returns the stored password verifier of each role.
func verifiers(t *testing.T, admin *pgx.Conn, roles []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range roles {
		var v string
		if err := admin.QueryRow(context.Background(), "SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = $1", r).Scan(&v); err != nil {
			t.Fatalf("verifier of %s: %v", r, err)
		}
		out[r] = v
	}
	return out
}

// TestStacksOnOneServerKeepTheirOwnRoles: two stacks on two databases of one
// server (a CI runner, a workshop machine) each keep their logins: preparing
// one, again and again as every `make run` does, neither changes the other's
// roles nor opens the other's database to them.
func TestStacksOnOneServerKeepTheirOwnRoles(t *testing.T) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 4)
	rand.Read(b)
	dbs := [2]string{"stack_a_" + hex.EncodeToString(b), "stack_b_" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		for _, db := range dbs {
			if err := postgres.Deprovision(context.Background(), pgtest.AdminURL(), db); err != nil {
				t.Errorf("Deprovision(%s) = %v", db, err)
			}
		}
	})
	dirs := [2]string{filepath.Join(t.TempDir(), ".dev"), filepath.Join(t.TempDir(), ".dev")}
	var logins [2][]string
	for i := range dbs {
		logins[i] = loginsOf(t, prepareStack(t, dirs[i], dbs[i]))
	}
	for round, i := range []int{0, 1, 0} { // each restarts while the other runs
		other := 1 - i
		before := verifiers(t, admin, logins[other])
		logins[i] = loginsOf(t, prepareStack(t, dirs[i], dbs[i]))
		for role, v := range verifiers(t, admin, logins[other]) {
			if v != before[role] {
				t.Errorf("round %d: preparing %s changed the password of %s, a login of %s", round, dbs[i], role, dbs[other])
			}
		}
	}
	for i, db := range dbs {
		for _, role := range logins[1-i] {
			var can bool
			if err := admin.QueryRow(ctx, "SELECT has_database_privilege($1, $2, 'CONNECT')", role, db).Scan(&can); err != nil {
				t.Fatal(err)
			}
			if can {
				t.Errorf("%s, a login of %s, may connect to %s", role, dbs[1-i], db)
			}
		}
	}
}
