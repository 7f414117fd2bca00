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
