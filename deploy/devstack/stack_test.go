package devstack

import (
	"strings"
	"testing"
)

func TestDatabaseURLs(t *testing.T) {
	t.Parallel()
	admin, db, err := splitDatabaseURL("postgres://postgres:pw@127.0.0.1:5432/bank?sslmode=disable")
	if err != nil || db != "bank" || !strings.Contains(admin, "/postgres?sslmode=disable") {
		t.Errorf("splitDatabaseURL = %q, %q, %v", admin, db, err)
	}
	if _, db, _ := splitDatabaseURL("postgres://postgres@127.0.0.1"); db != "bank" {
		t.Errorf("default database = %q, want bank", db)
	}
	for _, bad := range []string{"mysql://x/y", "::not a url", "http://127.0.0.1/bank"} {
		if _, _, err := splitDatabaseURL(bad); err == nil {
			t.Errorf("splitDatabaseURL(%q) succeeded", bad)
		}
	}
	u := roleURL("postgres://postgres:superpw@127.0.0.1:5432/bank?sslmode=disable", "bank_auth", "s3cret")
	if strings.Contains(u, "superpw") || !strings.HasPrefix(u, "postgres://bank_auth:s3cret@127.0.0.1:5432/bank") {
		t.Errorf("roleURL = %q; want the service role's credentials only", u)
	}
}

func TestSecretsAreStable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := secretValue(dir+"/s", 24)
	if err != nil || len(a) != 48 {
		t.Fatalf("secretValue = %q, %v", a, err)
	}
	if b, _ := secretValue(dir+"/s", 24); b != a {
		t.Error("secretValue changed an existing secret")
	}
	if err := ensureSecretFile(dir+"/k", 32); err != nil {
		t.Fatal(err)
	}
}

// TestRolesAreNamedAfterTheDatabase: the default database keeps the names
// every document uses, another database gets names of its own, and a name
// too long for PostgreSQL's 63 bytes is refused before anything is made.
func TestRolesAreNamedAfterTheDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		db, schema         string
		wantOwner, wantRun string
	}{
		{"bank", "ledger", "bank_ledger_owner", "bank_ledger"},
		{"bank", "auth", "bank_auth_owner", "bank_auth"},
		{"workshop_7", "accounts", "workshop_7_accounts_owner", "workshop_7_accounts"},
	}
	for _, tt := range tests {
		if got := roleSpec(tt.db, tt.schema); got.Owner != tt.wantOwner || got.Role != tt.wantRun {
			t.Errorf("roleSpec(%q, %q) = %s, %s; want %s, %s", tt.db, tt.schema, got.Owner, got.Role, tt.wantOwner, tt.wantRun)
		}
	}
	if got := auditReader("bank").Role; got != "bank_audit" {
		t.Errorf("auditReader(bank) = %q, want bank_audit", got)
	}
	long := strings.Repeat("d", maxDatabaseName)
	if _, _, err := splitDatabaseURL("postgres://postgres@127.0.0.1/" + long); err != nil || len(roleSpec(long, "accounts").Owner) > 63 {
		t.Errorf("database of %d characters: %v, role %q; want accepted, every role name within 63 bytes", len(long), err, roleSpec(long, "accounts").Owner)
	}
	if _, _, err := splitDatabaseURL("postgres://postgres@127.0.0.1/" + long + "d"); err == nil {
		t.Errorf("database of %d characters accepted, want refused", len(long)+1)
	}
}
