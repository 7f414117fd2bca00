package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/audit"
)

// TestVerifyDetectsTampering plays an attacker who can switch the trigger off
// (the table's owner, or a superuser) after rows were sealed, and checks
// that Verify names the first row that no longer fits the chain.
func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sql     []string // %[1]s is the table
		wantSeq int64
		wantMsg string
	}{
		{"edit actor", []string{"UPDATE %[1]s SET actor = 'admin' WHERE seq = 3"}, 3, "hash does not match"},
		{"edit outcome", []string{"UPDATE %[1]s SET outcome = 'success' WHERE seq = 2"}, 2, "hash does not match"},
		{"move text between fields", []string{"UPDATE %[1]s SET actor = actor || left(action, 1), action = substr(action, 2) WHERE seq = 4"}, 4, "hash does not match"},
		{"backdate", []string{"UPDATE %[1]s SET at = at - interval '1 microsecond' WHERE seq = 3"}, 3, "hash does not match"},
		{"edit detail", []string{`UPDATE %[1]s SET detail = '{"amount": "1"}' WHERE seq = 3`}, 3, "hash does not match"},
		{"detail not strings", []string{`UPDATE %[1]s SET detail = '{"amount": 1}' WHERE seq = 3`}, 3, "detail is not a map of strings"},
		{"edit and re-link hash", []string{"UPDATE %[1]s SET actor = 'admin', hash = (SELECT hash FROM %[1]s WHERE seq = 4) WHERE seq = 3"}, 3, "hash does not match"},
		{"delete middle", []string{"DELETE FROM %[1]s WHERE seq = 3"}, 3, "missing"},
		{"delete first", []string{"DELETE FROM %[1]s WHERE seq = 1"}, 1, "missing"},
		{"renumber after delete", []string{"DELETE FROM %[1]s WHERE seq = 3", "UPDATE %[1]s SET seq = seq - 1 WHERE seq > 3"}, 3, "prev_hash does not match"},
		{"insert forged row", []string{"INSERT INTO %[1]s SELECT 6, at, 'admin', action, resource, outcome, reason, client_ip, trace_id, detail, hash, sha256(hash) FROM %[1]s WHERE seq = 5"}, 6, "hash does not match"},
		{"replay a row", []string{"INSERT INTO %[1]s SELECT 6, at, actor, action, resource, outcome, reason, client_ip, trace_id, detail, prev_hash, hash FROM %[1]s WHERE seq = 5"}, 6, "prev_hash does not match"},
		{"swap two rows", []string{"UPDATE %[1]s SET seq = 100 WHERE seq = 2", "UPDATE %[1]s SET seq = 2 WHERE seq = 3", "UPDATE %[1]s SET seq = 3 WHERE seq = 100"}, 2, "prev_hash does not match"},
		{"swap contents of two rows", []string{`UPDATE %[1]s a SET actor = b.actor, detail = b.detail FROM %[1]s b WHERE a.seq = 2 AND b.seq = 3`}, 2, "hash does not match"},
		// Unsealed, a row drops out of the chain; a sealer then links it
		// again at the end, and the hole it left stays.
		{"unseal a row", []string{"UPDATE %[1]s SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = 3"}, 3, "missing"},
		{"unseal and let it be resealed", []string{"UPDATE %[1]s SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = 3", "seal"}, 3, "missing"},
		{"move a row to the end", []string{"UPDATE %[1]s SET seq = 6, prev_hash = (SELECT hash FROM %[1]s WHERE seq = 5) WHERE seq = 2"}, 2, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for i := 1; i <= 5; i++ {
				e.append(t, audit.Event{Actor: fmt.Sprintf("u-%d", i), Action: "transfer.post", Outcome: "failure",
					Detail: map[string]string{"amount": fmt.Sprint(i * 100)}})
			}
			e.seal(t)
			e.verify(t, 5)
			table := e.schema + ".audit_events"
			sql := append([]string{"ALTER TABLE %[1]s DISABLE TRIGGER USER"}, tt.sql...)
			for _, s := range sql {
				if s == "seal" {
					e.seal(t)
					continue
				}
				if _, err := e.pool.Exec(context.Background(), fmt.Sprintf(s, table)); err != nil {
					t.Fatalf("tamper %q: %v", s, err)
				}
			}
			rep, err := e.log.Verify(context.Background(), e.pool)
			var ce *audit.ChainError
			if !errors.As(err, &ce) || ce.Seq != tt.wantSeq || !strings.Contains(ce.Problem, tt.wantMsg) {
				t.Fatalf("Verify() = %+v, %v; want a ChainError at seq %d saying %q", rep, err, tt.wantSeq, tt.wantMsg)
			}
			if rep.Sealed != int(tt.wantSeq-1) {
				t.Errorf("Verify() checked %d rows, want %d (those before the break)", rep.Sealed, tt.wantSeq-1)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("seq %d", tt.wantSeq)) {
				t.Errorf("error %q does not name seq %d", err, tt.wantSeq)
			}
		})
	}
}

// TestVerifyCannotSeeTailTruncation pins down the known limit documented on
// the package: without an anchor kept elsewhere, removing the newest rows
// leaves a valid chain.
func TestVerifyCannotSeeTailTruncation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for range 3 {
		e.append(t, audit.Event{Action: "x"})
	}
	e.seal(t)
	table := e.schema + ".audit_events"
	for _, s := range []string{"ALTER TABLE " + table + " DISABLE TRIGGER USER", "DELETE FROM " + table + " WHERE seq = 3"} {
		if _, err := e.pool.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := e.log.Verify(context.Background(), e.pool); rep.Sealed != 2 || err != nil {
		t.Errorf("Verify() after dropping the last row = %+v, %v; want 2 rows, nil (undetectable without an anchor)", rep, err)
	}
}
