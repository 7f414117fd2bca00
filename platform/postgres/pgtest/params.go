package pgtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// uuidArrayParam matches a parameter sent as uuid[] (`$3::uuid[]`). pgx
// encodes a Go []string for uuid[] by first trying the binary format, which
// has no plan for strings: it builds an error that formats the whole slice
// with %#v and then falls back to text (5 % of the ledger's CPU per
// transfer). A []string sent as text[] and cast in SQL (`$3::text[]::uuid[]`)
// is encoded in one step.
var uuidArrayParam = regexp.MustCompile(`\$\d+::uuid\[\]`)

// RequireTextIDLists fails t for every `$n::uuid[]` parameter in the
// non-test Go files of the current directory (the package under test):
// id lists go as `$n::text[]::uuid[]`.
func RequireTextIDLists(t testing.TB) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range uuidArrayParam.FindAllIndex(src, -1) {
			line := 1 + strings.Count(string(src[:loc[0]]), "\n")
			t.Errorf("%s:%d: %s: send ids as $n::text[]::uuid[] (pgtest.RequireTextIDLists)", f, line, src[loc[0]:loc[1]])
		}
	}
}
