package e2e

import (
	"crypto/rand"
	"testing"
	"time"
)

// TestBankingStory walks the happy path of docs/api.md end to end: register, log
// in, open accounts, a manager's deposit, a transfer, the history, a large
// transfer held and approved by a different manager, and logout.
func TestBankingStory(t *testing.T) {
	t.Parallel()
	alice, bob := register(t, "alice"), register(t, "bob")
	mgr := manager(t, "manager")

	me := alice.do("GET", "/v1/users/me", nil).must(t, 200, "me")
	if got := me.str("user", "email"); got != alice.email {
		t.Errorf("me email = %q, want %q", got, alice.email)
	}
	if me.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store on an authenticated response", me.Header.Get("Cache-Control"))
	}
	for _, secret := range []string{"password", "hash", "Token"} {
		if _, ok := me.JSON["user"].(map[string]any)[secret]; ok {
			t.Errorf("user object carries %q", secret)
		}
	}

	a1, a2 := alice.openAccount("EUR"), alice.openAccount("EUR")
	b1 := bob.openAccount("EUR")
	mgr.fund(a1, 5_000_000, "EUR")
	if booked, _ := alice.balances(a1); booked != "5000000" {
		t.Fatalf("balance after deposit = %s, want 5000000", booked)
	}

	tr := alice.transfer(rand.Text(), a1, b1, 2_500, "EUR").must(t, 200, "transfer")
	if tr.str("transfer", "status") != "COMPLETED" {
		t.Errorf("small transfer status = %q, want COMPLETED", tr.str("transfer", "status"))
	}
	id := tr.str("transfer", "id")
	bob.do("GET", "/v1/transfers/"+id, nil).must(t, 200, "receiver reads the transfer")
	if booked, _ := bob.balances(b1); booked != "2500" {
		t.Errorf("receiver balance = %s, want 2500", booked)
	}

	hist := alice.do("GET", "/v1/accounts/"+a1+"/transactions?pageSize=10", nil).must(t, 200, "history")
	entries, _ := hist.JSON["entries"].([]any)
	if len(entries) != 2 {
		t.Fatalf("history has %d entries, want 2 (deposit, transfer): %s", len(entries), hist.Body)
	}
	newest := entries[0].(map[string]any)
	if newest["transferId"] != id || newest["amount"] != "-2500" || newest["balanceAfter"] != "4997500" {
		t.Errorf("newest entry = %v, want the transfer: amount -2500, balanceAfter 4997500", newest)
	}

	// A large transfer is held: available drops, booked does not.
	big := alice.transfer(rand.Text(), a1, a2, 1_500_000, "EUR").must(t, 200, "large transfer")
	if big.str("transfer", "status") != "PENDING_APPROVAL" {
		t.Fatalf("large transfer status = %q, want PENDING_APPROVAL", big.str("transfer", "status"))
	}
	bigID := big.str("transfer", "id")
	if booked, avail := alice.balances(a1); booked != "4997500" || avail != "3497500" {
		t.Errorf("held: balance %s available %s, want 4997500 and 3497500", booked, avail)
	}
	alice.do("POST", "/v1/transfers/"+bigID+":approve", map[string]any{}).must(t, 403, "a user approving")
	ok := mgr.do("POST", "/v1/transfers/"+bigID+":approve", map[string]any{}).must(t, 200, "manager approves")
	if ok.str("transfer", "status") != "COMPLETED" || ok.str("transfer", "approvedBy") != mgr.userID {
		t.Errorf("approved transfer = %s", ok.Body)
	}
	if booked, avail := alice.balances(a1); booked != "3497500" || avail != "3497500" {
		t.Errorf("after approval: balance %s available %s, want 3497500 twice", booked, avail)
	}
	if booked, _ := alice.balances(a2); booked != "1500000" {
		t.Errorf("a2 after approval = %s, want 1500000", booked)
	}

	// Logout revokes the access token everywhere within a second, and the refresh family.
	oldRefresh := alice.refresh
	alice.do("POST", "/v1/auth/logout", map[string]any{"refreshToken": oldRefresh}).must(t, 200, "logout")
	deadline := time.Now().Add(time.Second)
	for {
		r := alice.do("GET", "/v1/accounts/"+a1, nil)
		if r.Status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access token still accepted %v after logout (status %d)", time.Second, r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	alice.token = ""
	alice.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": oldRefresh}).must(t, 401, "refresh after logout")
}

// TestInitiatorCannotApprove: a manager may not approve their own transfer.
func TestInitiatorCannotApprove(t *testing.T) {
	t.Parallel()
	m1, m2 := manager(t, "m1"), manager(t, "m2")
	from, to := m1.openAccount("EUR"), m1.openAccount("EUR")
	m2.fund(from, 2_000_000, "EUR")
	held := m1.transfer(rand.Text(), from, to, 1_000_000, "EUR").must(t, 200, "threshold transfer")
	if held.str("transfer", "status") != "PENDING_APPROVAL" {
		t.Fatalf("transfer at the threshold = %q, want PENDING_APPROVAL", held.str("transfer", "status"))
	}
	id := held.str("transfer", "id")
	m1.do("POST", "/v1/transfers/"+id+":approve", map[string]any{}).must(t, 403, "initiator approves")
	m2.do("POST", "/v1/transfers/"+id+":reject", map[string]any{"reason": "not today"}).must(t, 200, "other manager rejects")
	if booked, avail := m1.balances(from); booked != "2000000" || avail != "2000000" {
		t.Errorf("after rejection: balance %s available %s, want the hold released", booked, avail)
	}
	m2.do("POST", "/v1/transfers/"+id+":approve", map[string]any{}).must(t, 422, "approve a rejected transfer")
}

// TestRefreshRotation: a refresh token is single use; reusing one kills the family.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	u := register(t, "carol")
	first := u.refresh
	r := u.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": first}).must(t, 200, "refresh")
	second := r.str("refreshToken")
	if second == "" || second == first || r.str("tokenType") != "Bearer" {
		t.Fatalf("refresh response = %s", r.Body)
	}
	u.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": first}).must(t, 401, "reuse of a spent refresh token")
	u.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": second}).must(t, 401, "the family is dead after reuse")
}
