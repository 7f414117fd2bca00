package audit

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestEncodeIsUnambiguous(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_900_000_000, 0)
	base := record{seq: 7, at: at, actor: "ab", action: "c", detail: map[string]string{"k": "v"}}
	variants := map[string]record{
		"boundary moved":     {seq: 7, at: at, actor: "a", action: "bc", detail: map[string]string{"k": "v"}},
		"field shifted":      {seq: 7, at: at, action: "ab", resource: "c", detail: map[string]string{"k": "v"}},
		"detail key/value":   {seq: 7, at: at, actor: "ab", action: "c", detail: map[string]string{"kv": ""}},
		"detail into reason": {seq: 7, at: at, actor: "ab", action: "c", reason: "kv"},
		"seq":                {seq: 8, at: at, actor: "ab", action: "c", detail: map[string]string{"k": "v"}},
		"time":               {seq: 7, at: at.Add(time.Microsecond), actor: "ab", action: "c", detail: map[string]string{"k": "v"}},
		"extra empty detail": {seq: 7, at: at, actor: "ab", action: "c", detail: map[string]string{"k": "v", "": ""}},
	}
	for name, v := range variants {
		if bytes.Equal(base.encode(), v.encode()) {
			t.Errorf("%s: encode(%+v) == encode(%+v)", name, v, base)
		}
	}
	// Map iteration order must not matter.
	big := map[string]string{}
	for _, k := range strings.Split("q w e r t y u i o p a s d f g h j k l", " ") {
		big[k] = k + k
	}
	first := (&record{detail: big}).encode()
	for range 20 {
		if !bytes.Equal(first, (&record{detail: big}).encode()) {
			t.Fatal("encode of the same detail map differs between calls")
		}
	}
	// Chaining: the same row after a different predecessor hashes differently.
	if bytes.Equal(base.chainHash(genesis), base.chainHash(bytes.Repeat([]byte{1}, 32))) {
		t.Error("chainHash ignores the previous hash")
	}
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	fsys := Migrations("ledger")
	names := []string{"audit_0001_events.sql", "audit_0002_sealing.sql", "audit_0003_reader.sql", "audit_0004_insert_check_when_sealed.sql", "audit_0005_seal_check_by_row.sql"}
	if err := fstest.TestFS(fsys, names...); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, name := range names {
		got, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), `"ledger".audit_events`) || strings.Contains(string(got), "%!") {
			t.Errorf("%s does not name \"ledger\".audit_events or has a formatting error:\n%s", name, got)
		}
		all = append(all, string(got))
	}
	if len(all) != len(migrations) {
		t.Fatalf("Migrations holds %d files, want all %d migrations", len(all), len(migrations))
	}
	for i, m := range migrations {
		if m.name != names[i] || all[i] != fmt.Sprintf(m.ddl, mustSchema("ledger")) {
			t.Errorf("migration %d = %s, want %s with the schema filled in", i, names[i], m.name)
		}
	}
}

func TestBadSchemaPanics(t *testing.T) {
	t.Parallel()
	for _, schema := range []string{"", "Public", "x; DROP TABLE y", `a"b`, "pg_catalog", strings.Repeat("a", 64)} {
		for name, f := range map[string]func(){
			"New":        func() { New(schema, time.Now) },
			"Migrations": func() { Migrations(schema) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(%q) did not panic", name, schema)
					}
				}()
				f()
			}()
		}
	}
}
