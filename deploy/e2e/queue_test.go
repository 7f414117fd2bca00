package e2e

import (
	"crypto/rand"
	"slices"
	"testing"
)

// TestApprovalQueue: a manager finds the transfers waiting for a second
// person through GET /v1/transfers?status=PENDING_APPROVAL, oldest first;
// a user may not read the queue; only the queue's own status is accepted.
func TestApprovalQueue(t *testing.T) {
	t.Parallel()
	u, mgr := register(t, "queue"), manager(t, "queue-mgr")
	a, b := u.openAccount("EUR"), u.openAccount("EUR")
	mgr.fund(a, 3_000_000, "EUR")
	var held []string
	for range 2 {
		held = append(held, u.transfer(rand.Text(), a, b, 1_000_000, "EUR").must(t, 200, "held transfer").str("transfer", "id"))
	}
	var seen []string
	path := "/v1/transfers?status=PENDING_APPROVAL&pageSize=100"
	for _, it := range mgr.do("GET", path, nil).must(t, 200, "the queue").list(t, "the queue", "transfers", transferShape) {
		if it["status"] != "PENDING_APPROVAL" {
			t.Errorf("queue holds %v", it)
		}
		seen = append(seen, it["id"].(string))
	}
	i, j := slices.Index(seen, held[0]), slices.Index(seen, held[1])
	if i < 0 || j < 0 || i > j {
		t.Errorf("queue %v: want both held transfers, oldest first", seen)
	}
	mgr.do("GET", "/v1/transfers", nil).must(t, 200, "the queue without a status")
	u.do("GET", path, nil).problem(t, "a user reads the queue", 403, false)
	mgr.do("GET", "/v1/transfers?status=COMPLETED", nil).problem(t, "another status", 400, true)
	mgr.do("GET", "/v1/transfers?pageSize=101", nil).problem(t, "a page too large", 400, true)
	mgr.do("GET", "/v1/transfers?ownerId="+u.userID, nil).problem(t, "an unknown parameter", 400, true)
	// Once decided, a transfer leaves the queue.
	mgr.do("POST", "/v1/transfers/"+held[0]+":approve", map[string]any{}).must(t, 200, "approve")
	for _, it := range mgr.do("GET", path, nil).must(t, 200, "the queue").list(t, "the queue", "transfers", transferShape) {
		if it["id"] == held[0] {
			t.Errorf("the approved transfer %s is still queued", held[0])
		}
	}
}
