package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/platform/postgres/pgtest"
)

// anchoredDB returns a pool on a fresh database with the anchor table,
// prepared by the administrator for writer.
func anchoredDB(t *testing.T, writer string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.PoolConfig{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := audit.PrepareAnchors(context.Background(), pool, writer); err != nil {
		t.Fatalf("PrepareAnchors(%s) = %v", writer, err)
	}
	if err := audit.PrepareAnchors(context.Background(), pool, writer); err != nil {
		t.Fatalf("PrepareAnchors(%s) again = %v, want it idempotent", writer, err)
	}
	return pool
}

// TestRecordedAnchorsCatchWhatTheChainCannot: the chain alone cannot show
// its newest rows cut, or itself rebuilt; a head recorded by an earlier
// verification does, and so does every older one when a newer anchor was
// recorded for a forged chain.
func TestRecordedAnchorsCatchWhatTheChainCannot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := anchoredDB(t, "postgres")
	tests := []struct {
		name  string
		after func(e env) // between the recording and the check
		want  string      // "" for a chain that still holds
	}{
		{"unchanged", func(env) {}, ""},
		{"appended since", func(e env) { appendAndSeal(t, e, 2) }, ""},
		{"tail cut", func(e env) { behindTrigger(t, e, "DELETE FROM %s WHERE seq > 3") },
			"anchor seq 5 is gone, the chain now ends at seq 3"},
		{"whole chain rebuilt", func(e env) {
			behindTrigger(t, e, "DELETE FROM %s")
			appendAndSeal(t, e, 7)
		}, "anchor seq 5 has hash"},
		{"rebuilt and anchored again", func(e env) {
			behindTrigger(t, e, "DELETE FROM %s")
			appendAndSeal(t, e, 7)
			rep := verified(t, e)
			if _, err := e.log.Record(ctx, e.pool, rep); err != nil {
				t.Fatal(err)
			}
		}, "anchor seq 5 has hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvOn(t, pool)
			appendAndSeal(t, e, 5)
			if a, err := e.log.CheckRecorded(ctx, e.pool, 5); err != nil || a.Seq != 0 {
				t.Fatalf("CheckRecorded before any anchor = %+v, %v; want none, nil", a, err)
			}
			rep := verified(t, e)
			if added, err := e.log.Record(ctx, e.pool, rep); !added || err != nil {
				t.Fatalf("Record(%d) = %v, %v; want added", rep.HeadSeq, added, err)
			}
			if added, err := e.log.Record(ctx, e.pool, rep); added || err != nil {
				t.Fatalf("Record(%d) again = %v, %v; want nothing added", rep.HeadSeq, added, err)
			}
			tt.after(e)
			rep = verified(t, e) // the chain alone looks fine in every case
			a, err := e.log.CheckRecorded(ctx, e.pool, rep.HeadSeq)
			var ae *audit.AnchorError
			switch {
			case tt.want == "" && (err != nil || a.Seq < 5):
				t.Errorf("CheckRecorded = %+v, %v; want the anchor at 5 or later to hold", a, err)
			case tt.want != "" && (!errors.As(err, &ae) || !strings.Contains(ae.Problem, tt.want) || ae.Anchor.Seq != 5):
				t.Errorf("CheckRecorded = %+v, %v; want an AnchorError at seq 5 saying %q", a, err, tt.want)
			}
		})
	}
}

// TestAnchorsOnlyTheWriterMayAppend: the verifier's login may read the
// anchors and append to them, and nothing more; a service's role (standing
// here for its runtime role and its schema's owner) may not even read them.
func TestAnchorsOnlyTheWriterMayAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := randomName()
	writer, service := "anchor_writer_"+s, "anchor_service_"+s
	admin := connectAs(t, pgtest.AdminURL(), "")
	for _, role := range []string{writer, service} {
		if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // after the database, and the grants in it, are gone
		for _, role := range []string{writer, service} {
			if _, err := admin.Exec(context.Background(), "DROP ROLE "+role); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	pool := anchoredDB(t, writer)
	e := newEnvOn(t, pool)
	appendAndSeal(t, e, 3)
	rep := verified(t, e)
	dbURL := pool.Config().ConnString()
	w := connectAs(t, dbURL, writer)
	if added, err := e.log.Record(ctx, w, rep); !added || err != nil {
		t.Fatalf("Record as the writer = %v, %v; want added", added, err)
	}
	if _, err := e.log.CheckRecorded(ctx, w, rep.HeadSeq); err == nil {
		t.Errorf("CheckRecorded as the writer read %s.audit_events, which it was never granted", e.schema)
	}
	for who, sqls := range map[string][]string{
		writer: {
			"UPDATE audit_anchors.heads SET seq = 1",
			"DELETE FROM audit_anchors.heads",
			"TRUNCATE audit_anchors.heads",
			"INSERT INTO audit_anchors.heads (schema_name, seq, hash, recorded_by) VALUES ('x', 9, sha256('x'), 'someone else')",
			"ALTER TABLE audit_anchors.heads DISABLE TRIGGER USER",
			"DROP TABLE audit_anchors.heads",
		},
		service: {
			"SELECT * FROM audit_anchors.heads",
			"INSERT INTO audit_anchors.heads (schema_name, seq, hash) VALUES ('x', 9, sha256('x'))",
			"CREATE TABLE audit_anchors.planted (x int)",
		},
	} {
		conn := connectAs(t, dbURL, who)
		for _, sql := range sqls {
			if _, err := conn.Exec(ctx, sql); sqlState(err) != "42501" {
				t.Errorf("as %s, %s: error %v, want permission denied (42501)", who, sql, err)
			}
		}
	}
	// Not even the administrator rewrites an anchor without switching the
	// trigger off first.
	if _, err := admin.Exec(ctx, "UPDATE audit_anchors.heads SET seq = 1"); err == nil {
		t.Error("the administrator's UPDATE of an anchor was not refused by the trigger")
	}
}

// newEnvOn is newEnv on pool's database.
func newEnvOn(t *testing.T, pool *pgxpool.Pool) env {
	t.Helper()
	schema := "audit_" + randomName()
	if err := postgres.Migrate(context.Background(), pool, schema, auditGrants, audit.Migrations(schema)); err != nil {
		t.Fatalf("Migrate(audit.Migrations(%q)) error = %v", schema, err)
	}
	return env{pool: pool, schema: schema, log: audit.New(schema, time.Now)}
}

func appendAndSeal(t *testing.T, e env, n int) {
	t.Helper()
	for range n {
		e.append(t, audit.Event{Actor: "u", Action: "test", Outcome: "ok"})
	}
	e.seal(t)
}

// verified returns the report of a chain that verifies.
func verified(t *testing.T, e env) audit.Report {
	t.Helper()
	rep, err := e.log.Verify(context.Background(), e.pool)
	if err != nil {
		t.Fatalf("Verify() = %+v, %v", rep, err)
	}
	return rep
}

// behindTrigger runs sql (%s is the table) with the audit trigger off, as
// the table's owner or a superuser can.
func behindTrigger(t *testing.T, e env, sql string) {
	t.Helper()
	table := e.schema + ".audit_events"
	stmt := "ALTER TABLE " + table + " DISABLE TRIGGER USER; " + strings.ReplaceAll(sql, "%s", table) + "; ALTER TABLE " + table + " ENABLE TRIGGER USER"
	if _, err := e.pool.Exec(context.Background(), stmt); err != nil {
		t.Fatal(err)
	}
}
