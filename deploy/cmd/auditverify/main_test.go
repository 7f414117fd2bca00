package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

func TestAuditVerify(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, schema := range []string{"auth", "ledger"} {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema+"; "+audit.MigrationSQL(schema)); err != nil {
			t.Fatal(err)
		}
		log := audit.New(schema, time.Now)
		for i := range 3 {
			if err := log.Append(ctx, conn, audit.Event{Actor: "u", Action: "test", Resource: string(rune('a' + i)), Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"auditverify", url, "auth", "ledger"}, &out); err != nil {
		t.Fatalf("run on intact chains = %v\n%s", err, &out)
	}
	if got := out.String(); strings.Count(got, ": ok, 3 rows; head seq 3 hash ") != 2 {
		t.Errorf("output = %q, want both schemas ok with their heads", got)
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
