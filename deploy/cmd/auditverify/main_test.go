package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// chains returns a fresh database and a connection to it, with an audit
// chain of n sealed rows in each schema.
func chains(t *testing.T, n int, schemas ...string) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if err := audit.PrepareAnchors(ctx, conn, "postgres"); err != nil {
		t.Fatal(err)
	}
	for _, schema := range schemas {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema+"; "+auditDDL(t, schema)); err != nil {
			t.Fatal(err)
		}
		appendSealed(t, conn, schema, n, "u")
	}
	return url, conn
}

// appendSealed appends n rows by actor to schema's chain and seals them.
func appendSealed(t *testing.T, conn *pgx.Conn, schema string, n int, actor string) {
	t.Helper()
	ctx := context.Background()
	log := audit.New(schema, time.Now)
	for i := range n {
		if err := log.Append(ctx, conn, audit.Event{Actor: actor, Action: "test", Resource: string(rune('a' + i%26)), Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := log.Seal(ctx, conn); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	url, conn := chains(t, 3, "auth", "ledger")
	var out bytes.Buffer
	if err := run(ctx, []string{"auditverify", url, "auth", "ledger"}, &out); err != nil {
		t.Fatalf("run on intact chains = %v\n%s", err, &out)
	}
	if got := out.String(); strings.Count(got, ": ok, 3 rows; head seq 3 hash ") != 2 || strings.Count(got, "; 0 pending") != 2 {
		t.Errorf("output = %q, want both schemas ok with their heads and nothing pending", got)
	}

	// Tamper with one row behind the trigger's back: the command must say which.
	if _, err := conn.Exec(ctx, `ALTER TABLE ledger.audit_events DISABLE TRIGGER USER;
		UPDATE ledger.audit_events SET actor = 'someone else' WHERE seq = 2;
		ALTER TABLE ledger.audit_events ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"auditverify", url, "auth", "ledger", "no such schema!"}, &out); err == nil {
		t.Fatal("run on a tampered chain succeeded")
	}
	got := out.String()
	for _, want := range []string{"auth: ok", "ledger: BROKEN at seq 2", "no such schema!: cannot verify"} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
	if err := run(ctx, []string{"auditverify"}, &out); err == nil {
		t.Error("run without arguments succeeded")
	}
}

// TestAuditVerifyAnchors: what the chain alone cannot show (deleted newest
// rows, a chain rebuilt with recomputed hashes), an anchor from an earlier
// run must: the one it recorded, and the one it printed, given back.
func TestAuditVerifyAnchors(t *testing.T) {
	ctx := context.Background()
	url, conn := chains(t, 0)
	appendN := func(schema string, n int, actor string) {
		t.Helper()
		appendSealed(t, conn, schema, n, actor)
	}
	behindTrigger := func(schema, sql string) {
		t.Helper()
		table := schema + ".audit_events"
		if _, err := conn.Exec(ctx, "ALTER TABLE "+table+" DISABLE TRIGGER USER; "+sql+"; ALTER TABLE "+table+" ENABLE TRIGGER USER"); err != nil {
			t.Fatal(err)
		}
	}
	anchorRE := regexp.MustCompile(`-anchor (\w+=\d+:[0-9a-f]+)\)`)
	for _, tc := range []struct {
		name    string
		after   func(schema string) // what happens between the two runs
		want    string
		wantErr bool
	}{
		{"unchanged", func(string) {}, "anchor seq 5 matches", false},
		{"appended since", func(s string) { appendN(s, 2, "later") }, "anchor seq 5 matches", false},
		{"tail deleted", func(s string) { behindTrigger(s, "DELETE FROM "+s+".audit_events WHERE seq > 3") },
			"BROKEN: anchor seq 5 is gone, the chain now ends at seq 3", true},
		{"whole chain rebuilt", func(s string) {
			behindTrigger(s, "DELETE FROM "+s+".audit_events")
			appendN(s, 6, "forger")
		}, "BROKEN: anchor seq 5 has hash", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schema := "anchor_" + strings.ReplaceAll(tc.name, " ", "_")
			if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema+"; "+auditDDL(t, schema)); err != nil {
				t.Fatal(err)
			}
			appendN(schema, 5, "u")
			var out bytes.Buffer
			if err := run(ctx, []string{"auditverify", url, schema}, &out); err != nil {
				t.Fatalf("first run = %v\n%s", err, &out)
			}
			m := anchorRE.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("first run printed no anchor: %q", out.String())
			}
			tc.after(schema)
			// The chain alone looks fine in every case: only an anchor tells,
			// the one the first run recorded or the one given by hand.
			out.Reset()
			err := run(ctx, []string{"auditverify", "-record=false", url, schema}, &out)
			if (err != nil) != tc.wantErr || !strings.Contains(out.String(), strings.TrimPrefix(tc.want, "BROKEN: ")) {
				t.Errorf("run with the recorded anchor = %v, output %q; want error %v and %q", err, out.String(), tc.wantErr, tc.want)
			}
			out.Reset()
			err = run(ctx, []string{"auditverify", "-record=false", "-anchor", m[1], url, schema}, &out)
			if (err != nil) != tc.wantErr || !strings.Contains(out.String(), tc.want) {
				t.Errorf("run -anchor %s = %v, output %q; want error %v and %q", m[1], err, out.String(), tc.wantErr, tc.want)
			}
		})
	}
}

func TestAuditVerifyRejectsBadAnchors(t *testing.T) {
	const hash = "00ff"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no position", []string{"-anchor", "auth", "db", "auth"}},
		{"no hash", []string{"-anchor", "auth=3", "db", "auth"}},
		{"seq zero", []string{"-anchor", "auth=0:" + hash, "db", "auth"}},
		{"seq not a number", []string{"-anchor", "auth=x:" + hash, "db", "auth"}},
		{"hash not hex", []string{"-anchor", "auth=3:zz", "db", "auth"}},
		{"schema not verified", []string{"-anchor", "ledger=3:" + hash, "db", "auth"}},
		{"two anchors for one schema", []string{"-anchor", "auth=3:" + hash, "-anchor", "auth=4:" + hash, "db", "auth"}},
		{"no schema", []string{"-anchor", "auth=3:" + hash, "db"}},
		{"max-pending zero", []string{"-max-pending", "0s", "db", "auth"}},
		{"max-pending not a duration", []string{"-max-pending", "soon", "db", "auth"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"auditverify"}, tc.args...), &out)
			if err == nil || !strings.Contains(err.Error(), "usage:") {
				t.Errorf("run(%q) = %v, want a usage error before connecting", tc.args, err)
			}
			if errors.Is(err, errBroken) {
				t.Errorf("run(%q) verified something", tc.args)
			}
		})
	}
}

// TestAuditVerifyPending: rows not sealed yet are reported, and once one has
// waited longer than -max-pending (no sealer running) the run fails, though
// the chain itself is whole.
func TestAuditVerifyPending(t *testing.T) {
	ctx := context.Background()
	url, conn := chains(t, 1, "auth")
	log := audit.New("auth", time.Now)
	for _, r := range []string{"b", "c"} { // appended, not sealed
		if err := log.Append(ctx, conn, audit.Event{Actor: "u", Action: "test", Resource: r}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"auditverify", "-max-pending", "1h", url, "auth"}, &out); err != nil || !strings.Contains(out.String(), "auth: ok, 1 rows; head seq 1 hash ") ||
		!strings.Contains(out.String(), "; 2 pending, oldest ") {
		t.Fatalf("run with fresh pending rows = %v, output %q; want ok with 1 sealed and 2 pending", err, &out)
	}
	time.Sleep(50 * time.Millisecond)
	out.Reset()
	err := run(ctx, []string{"auditverify", "-max-pending", "20ms", url, "auth"}, &out)
	if !errors.Is(err, errBroken) || !strings.Contains(out.String(), "auth: PENDING: 2 rows have waited longer than 20ms to be sealed") {
		t.Fatalf("run with overdue rows = %v, output %q; want a failure naming the 2 rows", err, &out)
	}
	if _, err := log.Seal(ctx, conn); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"auditverify", "-max-pending", "20ms", url, "auth"}, &out); err != nil || !strings.Contains(out.String(), "auth: ok, 3 rows; head seq 3 hash ") {
		t.Errorf("run after sealing = %v, output %q; want ok with 3 rows", err, &out)
	}
}

// TestAuditVerifyAnchorDir: anchors kept as one file per schema (a mounted
// ConfigMap) are used like -anchor, and a schema without a file is verified
// without one.
func TestAuditVerifyAnchorDir(t *testing.T) {
	ctx := context.Background()
	url, _ := chains(t, 1, "auth", "ledger")
	var out bytes.Buffer
	if err := run(ctx, []string{"auditverify", url, "auth"}, &out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`-anchor auth=(\d+:[0-9a-f]+)\)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no anchor in %q", &out)
	}
	dir := t.TempDir()
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "auth"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(m[1] + "\n") // as kubectl writes a value given --from-file
	out.Reset()
	t.Setenv("AUDITVERIFY_TEST_URL", url) // as the CronJob passes it, out of argv
	if err := run(ctx, []string{"auditverify", "-anchor-dir", dir, "env:AUDITVERIFY_TEST_URL", "auth", "ledger"}, &out); err != nil ||
		!strings.Contains(out.String(), "auth: anchor seq 1 matches") || strings.Contains(out.String(), "ledger: anchor") {
		t.Fatalf("run -anchor-dir = %v, output %q; want auth anchored and ledger not", err, &out)
	}

	write("1:" + strings.Repeat("00", 32))
	out.Reset()
	if err := run(ctx, []string{"auditverify", "-anchor-dir", dir, url, "auth"}, &out); !errors.Is(err, errBroken) ||
		!strings.Contains(out.String(), "auth: BROKEN: anchor seq 1 has hash") {
		t.Errorf("run with a wrong anchor file = %v, output %q; want BROKEN", err, &out)
	}

	for name, args := range map[string][]string{
		"junk in the file":      {"-anchor-dir", dir, url, "auth"},
		"file and flag":         {"-anchor", "auth=" + m[1], "-anchor-dir", dir, url, "auth"},
		"no such directory":     {"-anchor-dir", filepath.Join(dir, "missing"), url, "auth"},
		"URL variable unset":    {"env:AUDITVERIFY_TEST_UNSET", "auth"},
		"schema outside of dir": {"-anchor-dir", dir, url, "../" + filepath.Base(dir) + "/auth"},
	} {
		if name == "junk in the file" {
			write("the head, roughly")
		} else {
			write(m[1])
		}
		if err := run(ctx, append([]string{"auditverify"}, args...), &out); err == nil || !strings.Contains(err.Error(), "usage:") {
			t.Errorf("%s: run = %v, want a usage error before connecting", name, err)
		}
	}
}

// TestAuditVerifyCatchesTailTruncationByDefault: a run records the head it
// verified where the services cannot write, and the next run checks against
// it without being given an anchor, so the newest rows cut by someone who
// can get past the trigger (here a superuser) are seen.
func TestAuditVerifyCatchesTailTruncationByDefault(t *testing.T) {
	ctx := context.Background()
	url, conn := chains(t, 5, "ledger")
	var out bytes.Buffer
	if err := run(ctx, []string{"auditverify", url, "ledger"}, &out); err != nil {
		t.Fatalf("first run = %v\n%s", err, &out)
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE ledger.audit_events DISABLE TRIGGER USER;
		DELETE FROM ledger.audit_events WHERE seq > 2;
		ALTER TABLE ledger.audit_events ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := run(ctx, []string{"auditverify", url, "ledger"}, &out)
	if !errors.Is(err, errBroken) || !strings.Contains(out.String(), "ledger: BROKEN: anchor seq 5 is gone, the chain now ends at seq 2") {
		t.Errorf("run after the tail was cut = %v, output %q; want BROKEN against the recorded anchor", err, &out)
	}
}

// TestAuditVerifyAsTheAuditLogin runs the command as it is meant to run: as
// the database's audit login, whose sessions are read-only and which may
// read the audit tables and append to the anchors, nothing more. It
// verifies, records the head, and checks against it on the next run.
func TestAuditVerifyAsTheAuditLogin(t *testing.T) {
	ctx := context.Background()
	b := make([]byte, 5)
	rand.Read(b)
	login := "verifier_" + hex.EncodeToString(b)
	var db string
	t.Cleanup(func() { // after pgtest has dropped the database: the login is the server's
		if err := postgres.Deprovision(context.Background(), pgtest.AdminURL(), db); err != nil {
			t.Errorf("Deprovision(%s) = %v", db, err)
		}
	})
	dbURL, conn := chains(t, 3, "auth", "ledger")
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db = strings.TrimPrefix(u.Path, "/")
	reader := postgres.ReaderSpec{Role: login, Password: "verifier-password-" + hex.EncodeToString(b), Group: audit.ReaderRole,
		Tables: []string{"auth.audit_events", "ledger.audit_events"}}
	if err := postgres.ProvisionReader(ctx, pgtest.AdminURL(), db, reader); err != nil {
		t.Fatal(err)
	}
	if err := audit.PrepareAnchors(ctx, conn, login); err != nil {
		t.Fatal(err)
	}
	u.User = url.User(login)
	var out bytes.Buffer
	for i, want := range []string{"auth: recorded head seq 3 in audit_anchors.heads", "auth: recorded anchor seq 3 matches"} {
		out.Reset()
		if err := run(ctx, []string{"auditverify", u.String(), "auth", "ledger"}, &out); err != nil || !strings.Contains(out.String(), want) {
			t.Errorf("run %d as %s = %v, output %q; want %q", i+1, login, err, &out, want)
		}
	}
}

// auditDDL is the audit table's migrations for schema, in the order
// postgres.Migrate runs them, as one script for a single connection.
func auditDDL(t *testing.T, schema string) string {
	t.Helper()
	set := audit.Migrations(schema)
	names, err := fs.Glob(set, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("audit.Migrations(%q): files %v, error %v", schema, names, err)
	}
	var ddl strings.Builder
	for _, name := range names {
		b, err := fs.ReadFile(set, name)
		if err != nil {
			t.Fatal(err)
		}
		ddl.Write(b)
		ddl.WriteString(";\n")
	}
	return ddl.String()
}
