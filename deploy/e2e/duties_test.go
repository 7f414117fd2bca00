package e2e

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSeparationOfDuties tries, through the gateway, every way one insider
// could mint or move money alone: a manager depositing into their own
// account, approving or rejecting a payment into it from a second identity
// they registered, deciding their own transfer, and freezing or unfreezing
// their own account. Each is 403 with the separation-of-duties problem
// type, leaves every balance as it was, is audited, and is counted.
func TestSeparationOfDuties(t *testing.T) {
	t.Parallel()
	mallory := manager(t, "mallory-insider")
	alias := register(t, "mallory-alias") // plus-addressing: a second identity of hers
	other := manager(t, "sod-colleague")
	own, aliasAcct, stranger := mallory.openAccount("EUR"), alias.openAccount("EUR"), register(t, "sod-stranger")
	strangerAcct := stranger.openAccount("EUR")
	other.fund(aliasAcct, 2_000_000, "EUR")
	other.fund(own, 2_000_000, "EUR")
	toMallory := alias.transfer(rand.Text(), aliasAcct, own, 1_000_000, "EUR").must(t, 200, "alias pays mallory").str("transfer", "id")
	fromMallory := mallory.transfer(rand.Text(), own, strangerAcct, 1_000_000, "EUR").must(t, 200, "mallory pays a stranger").str("transfer", "id")

	before := func() map[string][2]string {
		out := map[string][2]string{}
		for _, a := range []string{own, aliasAcct, strangerAcct} {
			b, av := other.balances(a)
			out[a] = [2]string{b, av}
		}
		return out
	}
	metricsBefore := scrape(t, "transactions")
	accountsBefore := scrape(t, "accounts")
	start := before()
	attempts := []struct {
		name           string
		method, path   string
		body           map[string]any
		idempotencyKey bool
	}{
		{"deposit into her own account", "POST", "/v1/accounts/" + own + "/deposits", map[string]any{"amount": "500", "currency": "EUR", "reference": "cash"}, true},
		{"approve her alias's transfer to her", "POST", "/v1/transfers/" + toMallory + ":approve", map[string]any{}, false},
		{"reject her alias's transfer to her", "POST", "/v1/transfers/" + toMallory + ":reject", map[string]any{"reason": "x"}, false},
		{"approve her own transfer", "POST", "/v1/transfers/" + fromMallory + ":approve", map[string]any{}, false},
		{"reject her own transfer", "POST", "/v1/transfers/" + fromMallory + ":reject", map[string]any{"reason": "x"}, false},
		{"freeze her own account", "POST", "/v1/accounts/" + own + ":freeze", map[string]any{"reason": "x"}, false},
	}
	for _, a := range attempts {
		var hdr []string
		if a.idempotencyKey {
			hdr = []string{"Idempotency-Key", rand.Text()}
		}
		r := mallory.do(a.method, a.path, a.body, hdr...).problem(t, a.name, 403, false)
		if typ := r.str("type"); !strings.HasSuffix(typ, "separation-of-duties") {
			t.Errorf("%s: problem type %q, want one ending in separation-of-duties", a.name, typ)
		}
	}
	// Frozen by a colleague, she may not let herself out.
	other.do("POST", "/v1/accounts/"+own+":freeze", map[string]any{"reason": "investigation"}).must(t, 200, "a colleague freezes her account")
	r := mallory.do("POST", "/v1/accounts/"+own+":unfreeze", map[string]any{"reason": "all good"}).problem(t, "unfreeze her own account", 403, false)
	if !strings.HasSuffix(r.str("type"), "separation-of-duties") {
		t.Errorf("self-unfreeze: problem type %q, want separation-of-duties", r.str("type"))
	}
	if got := other.do("GET", "/v1/accounts/"+own, nil).must(t, 200, "read her account").str("account", "status"); got != "FROZEN" {
		t.Errorf("her account after the self-unfreeze = %s, want FROZEN", got)
	}
	if end := before(); len(end) != len(start) || end[own] != start[own] || end[aliasAcct] != start[aliasAcct] || end[strangerAcct] != start[strangerAcct] {
		t.Errorf("balances moved: before %v, after %v", start, end)
	}

	// Every refusal is in the audit trail of the service that refused it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, bank.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for schema, want := range map[string]int{"ledger": 5, "accounts": 2} {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.audit_events
			WHERE actor = $1 AND outcome = 'denied' AND reason = 'separation_of_duties'`, mallory.userID).Scan(&n)
		if err != nil || n != want {
			t.Errorf("%s audit rows of refused separation-of-duties attempts = %d, %v; want %d", schema, n, err, want)
		}
	}
	// And counted, so an alert can fire on a manager probing the rules.
	for process, want := range map[string]float64{"transactions": 5, "accounts": 2} {
		old := map[string]map[string]float64{"transactions": metricsBefore, "accounts": accountsBefore}[process]
		got := sum(scrape(t, process), "bank_security_events_total", `event="separation_of_duties"`) -
			sum(old, "bank_security_events_total", `event="separation_of_duties"`)
		if got < want {
			t.Errorf("%s: separation_of_duties events counted %v, want at least %v", process, got, want)
		}
	}

	// Someone with no stake decides both transfers.
	other.do("POST", "/v1/transfers/"+toMallory+":reject", map[string]any{"reason": "self-dealing"}).must(t, 200, "colleague rejects")
	other.do("POST", "/v1/transfers/"+fromMallory+":reject", map[string]any{"reason": "account frozen"}).must(t, 200, "colleague rejects")
}

// TestSplittingDoesNotAvoidApproval: pieces just below the approval
// threshold add up; the one that brings the day's outgoing total to the
// daily threshold (3 × the threshold by default) is held, and says why.
func TestSplittingDoesNotAvoidApproval(t *testing.T) {
	t.Parallel()
	u, mgr := register(t, "splitter"), manager(t, "split-mgr")
	a, b := u.openAccount("EUR"), register(t, "split-payee").openAccount("EUR")
	mgr.fund(a, 5_000_000, "EUR")
	before := scrape(t, "transactions")
	for i := range 3 {
		r := u.transfer(rand.Text(), a, b, 999_999, "EUR").must(t, 200, "a piece below the threshold")
		if r.str("transfer", "status") != "COMPLETED" || r.JSON["transfer"].(map[string]any)["holdReason"] != nil {
			t.Fatalf("piece %d = %s, want COMPLETED with no hold reason (the day's total is still below 3000000)", i+1, r.Body)
		}
	}
	r := u.transfer(rand.Text(), a, b, 3, "EUR").must(t, 200, "the piece that reaches the daily threshold")
	if r.str("transfer", "status") != "PENDING_APPROVAL" || r.str("transfer", "holdReason") != "daily_total" {
		t.Errorf("transfer reaching the daily threshold = %s, want PENDING_APPROVAL with holdReason daily_total", r.Body)
	}
	if booked, avail := u.balances(a); booked != "2000003" || avail != "2000000" {
		t.Errorf("after the held piece: balance %s available %s, want 2000003 and 2000000", booked, avail)
	}
	if got := sum(scrape(t, "transactions"), "bank_security_events_total", `event="transfer_held"`, `reason="daily_total"`) -
		sum(before, "bank_security_events_total", `event="transfer_held"`, `reason="daily_total"`); got < 1 {
		t.Errorf("transfer_held{reason=daily_total} counted %v more, want at least 1", got)
	}
	rej := mgr.do("POST", "/v1/transfers/"+r.str("transfer", "id")+":reject", map[string]any{"reason": "structuring"}).must(t, 200, "reject")
	if rej.str("transfer", "rejectedBy") != mgr.userID || rej.str("transfer", "rejectionReason") != "structuring" || rej.str("transfer", "holdReason") != "daily_total" {
		t.Errorf("rejected = %s, want rejectedBy, rejectionReason and the hold reason", rej.Body)
	}
}
