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
// (the table's owner, or a superuser) and checks that Verify names the first
// row that no longer fits the chain.
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for i := 1; i <= 5; i++ {
				e.append(t, audit.Event{Actor: fmt.Sprintf("u-%d", i), Action: "transfer.post", Outcome: "failure",
					Detail: map[string]string{"amount": fmt.Sprint(i * 100)}})
			}
			table := e.schema + ".audit_events"
			sql := append([]string{"ALTER TABLE %[1]s DISABLE TRIGGER USER"}, tt.sql...)
			for _, s := range sql {
				if _, err := e.pool.Exec(context.Background(), fmt.Sprintf(s, table)); err != nil {
					t.Fatalf("tamper %q: %v", s, err)
				}
			}
			n, err := e.log.Verify(context.Background(), e.pool)
			var ce *audit.ChainError
			if !errors.As(err, &ce) || ce.Seq != tt.wantSeq || !strings.Contains(ce.Problem, tt.wantMsg) {
				t.Fatalf("Verify() = %d, %v; want a ChainError at seq %d saying %q", n, err, tt.wantSeq, tt.wantMsg)
			}
			if n != int(tt.wantSeq-1) {
				t.Errorf("Verify() checked %d rows, want %d (those before the break)", n, tt.wantSeq-1)
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
	table := e.schema + ".audit_events"
	for _, s := range []string{"ALTER TABLE " + table + " DISABLE TRIGGER USER", "DELETE FROM " + table + " WHERE seq = 3"} {
		if _, err := e.pool.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := e.log.Verify(context.Background(), e.pool); n != 2 || err != nil {
		t.Errorf("Verify() after dropping the last row = %d, %v; want 2, nil (undetectable without an anchor)", n, err)
	}
}
