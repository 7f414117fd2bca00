package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
)

// TestHoldsAndApproval: a held transfer lowers the available balance only,
// the hold is what a second transfer is measured against, and approval
// needs both accounts still ACTIVE.
func TestHoldsAndApproval(t *testing.T) {
	t.Parallel()
	u, mgr := register(t, "holds"), manager(t, "holds-mgr")
	a, b := u.openAccount("EUR"), u.openAccount("EUR")
	mgr.fund(a, 2_000_000, "EUR")
	held := u.transfer(rand.Text(), a, b, 1_500_000, "EUR").must(t, 200, "held transfer")
	id := held.str("transfer", "id")
	if booked, avail := u.balances(a); booked != "2000000" || avail != "500000" {
		t.Fatalf("held: balance %s, available %s; want 2000000 and 500000", booked, avail)
	}
	u.transfer(rand.Text(), a, b, 500_001, "EUR").problem(t, "a transfer over the available balance", 422, false)
	u.transfer(rand.Text(), a, b, 500_000, "EUR").must(t, 200, "a transfer of exactly the available balance")
	mgr.do("POST", "/v1/accounts/"+b+":freeze", map[string]any{"reason": "check"}).must(t, 200, "freeze the destination")
	mgr.do("POST", "/v1/transfers/"+id+":approve", map[string]any{}).problem(t, "approve into a frozen account", 422, false)
	mgr.do("POST", "/v1/accounts/"+b+":unfreeze", map[string]any{"reason": "cleared"}).must(t, 200, "unfreeze")
	mgr.do("POST", "/v1/transfers/"+id+":approve", map[string]any{}).must(t, 200, "approve once active again")
	mgr.do("POST", "/v1/transfers/"+id+":reject", map[string]any{"reason": "late"}).problem(t, "reject a completed transfer", 422, false)
	mgr.do("POST", "/v1/transfers/"+randomID+":approve", map[string]any{}).problem(t, "approve no such transfer", 404, false)
	if booked, avail := u.balances(a); booked != "0" || avail != "0" {
		t.Errorf("after approval: balance %s, available %s; want 0 twice", booked, avail)
	}
	if booked, _ := u.balances(b); booked != "2000000" {
		t.Errorf("destination = %s, want 2000000: the sum of both accounts is what was deposited", booked)
	}
}

// TestDailyLimit: a user's outgoing total per day, held transfers included,
// stays within BANK_DAILY_LIMIT (500000000 by default); a rejected transfer
// gives its amount back.
func TestDailyLimit(t *testing.T) {
	t.Parallel()
	u, mgr := register(t, "daily"), manager(t, "daily-mgr")
	a, b := u.openAccount("EUR"), u.openAccount("EUR")
	for range 5 {
		mgr.fund(a, 100_000_000, "EUR")
	}
	mgr.deposit(a, 1, "EUR").must(t, 200, "deposit")
	var held []string
	for i := range 5 {
		r := u.transfer(rand.Text(), a, b, 100_000_000, "EUR").must(t, 200, fmt.Sprintf("transfer %d of the maximum", i+1))
		held = append(held, r.str("transfer", "id"))
	}
	r := u.transfer(rand.Text(), a, b, 1, "EUR").problem(t, "one unit over the daily limit", 422, false)
	if !bytes.Contains(r.Body, []byte("daily")) {
		t.Errorf("refusal %s, want the daily limit (the account still has the funds)", r.Body)
	}
	mgr.do("POST", "/v1/transfers/"+held[0]+":reject", map[string]any{"reason": "too much"}).must(t, 200, "reject one")
	u.transfer(rand.Text(), a, b, 1, "EUR").must(t, 200, "within the limit again after a rejection")
}

// TestOpenAccountLimit: at most 10 open accounts per user.
func TestOpenAccountLimit(t *testing.T) {
	t.Parallel()
	u := register(t, "ten")
	for range 10 {
		u.openAccount("EUR")
	}
	u.do("POST", "/v1/accounts", map[string]any{"currency": "EUR"}).problem(t, "the 11th account", 422, false)
	list := u.do("GET", "/v1/accounts", nil).must(t, 200, "list").list(t, "list", "accounts", accountShape)
	if len(list) != 10 {
		t.Errorf("the user has %d accounts, want 10", len(list))
	}
}

// TestIdempotencyContract: a replay is the first response byte for byte,
// for transfers and deposits alike, whatever happened since; concurrent
// requests with one key move money once, and any that overlap the first
// are told so (409) instead of waiting or moving money again.
func TestIdempotencyContract(t *testing.T) {
	t.Parallel()
	u, mgr := register(t, "idem2"), manager(t, "idem2-mgr")
	a, b := u.openAccount("EUR"), u.openAccount("EUR")

	depKey := rand.Text()
	depBody := map[string]any{"amount": "2000000", "currency": "EUR", "reference": "idem"}
	first := mgr.do("POST", "/v1/accounts/"+a+"/deposits", depBody, "Idempotency-Key", depKey).must(t, 200, "deposit")
	again := mgr.do("POST", "/v1/accounts/"+a+"/deposits", map[string]any{"amount": 2000000, "currency": "EUR", "reference": "idem"}, "Idempotency-Key", depKey).
		must(t, 200, "the deposit again, amount as a number")
	if again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.Body, first.Body) {
		t.Errorf("deposit replay = %s (Idempotent-Replayed %q), want the first response %s", again.Body, again.Header.Get("Idempotent-Replayed"), first.Body)
	}
	mgr.do("POST", "/v1/accounts/"+a+"/deposits", map[string]any{"amount": "2000001", "currency": "EUR", "reference": "idem"}, "Idempotency-Key", depKey).
		problem(t, "the deposit key with another amount", 422, false)
	// At the approval threshold the deposit waits for a second manager.
	manager(t, "idem2-approver").do("POST", "/v1/transfers/"+first.str("transfer", "id")+":approve", map[string]any{}).
		must(t, 200, "a second manager approves the deposit")

	heldKey := rand.Text()
	held := u.transfer(heldKey, a, b, 1_000_000, "EUR").must(t, 200, "held transfer")
	mgr.do("POST", "/v1/transfers/"+held.str("transfer", "id")+":approve", map[string]any{}).must(t, 200, "approve")
	replay := u.transfer(heldKey, a, b, 1_000_000, "EUR").must(t, 200, "replay after approval")
	if !bytes.Equal(replay.Body, held.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay after approval = %s, want the first response again: %s", replay.Body, held.Body)
	}

	key := rand.Text()
	const n = 8
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := *u
			c.t = t
			results[i] = c.transfer(key, a, b, 7, "EUR")
		})
	}
	wg.Wait()
	var ids []string
	for _, r := range results {
		switch r.Status {
		case 200:
			ids = append(ids, r.str("transfer", "id"))
		case 409:
			r.problem(t, "same key in flight", 409, false)
		default:
			t.Errorf("concurrent request with one key = %d %s, want 200 or 409", r.Status, r.Body)
		}
	}
	if len(ids) == 0 {
		t.Fatal("no concurrent request with the key succeeded")
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Errorf("concurrent requests with one key made transfers %v, want one", ids)
			break
		}
	}
	if booked, _ := u.balances(a); booked != "999993" {
		t.Errorf("balance = %s, want 999993: the concurrent transfer moved money once", booked)
	}
}
