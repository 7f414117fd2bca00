package e2e

import (
	"strings"
	"testing"
)

// mfaProblem fails the test unless r is a 403 whose problem type ends in
// mfa-required.
func mfaProblem(t *testing.T, r response, what string) {
	t.Helper()
	r.problem(t, what, 403, false)
	if typ := r.str("type"); !strings.HasSuffix(typ, "mfa-required") {
		t.Errorf("%s: problem type %q, want one ending in mfa-required", what, typ)
	}
}

// TestStaffOperationsNeedMFA: a manager and an admin who logged in with a
// password only get 403 mfa-required on every staff operation, and keep
// their customer routes; the same people with a code pass the check.
func TestStaffOperationsNeedMFA(t *testing.T) {
	t.Parallel()
	owner, adm := register(t, "mfa-owner"), admin(t)
	account := owner.openAccount("EUR")
	weakMgr, weakAdmin := register(t, "mfa-weak-mgr"), register(t, "mfa-weak-admin")
	adm.do("PUT", "/v1/users/"+weakMgr.userID+"/roles", map[string]any{"roles": []string{"manager", "user"}}).must(t, 200, "grant manager")
	adm.do("PUT", "/v1/users/"+weakAdmin.userID+"/roles", map[string]any{"roles": []string{"admin", "user"}}).must(t, 200, "grant admin")
	weakMgr.login("correct horse battery")
	weakAdmin.login("correct horse battery")
	held := manager(t, "mfa-funder").deposit(account, 2_000_000, "EUR").must(t, 200, "a held deposit").str("transfer", "id")

	staff := []struct {
		what, method, path string
		body               any
	}{
		{"deposit", "POST", "/v1/accounts/" + account + "/deposits", map[string]any{"amount": "100", "currency": "EUR", "reference": "x"}},
		{"approve", "POST", "/v1/transfers/" + held + ":approve", map[string]any{}},
		{"reject", "POST", "/v1/transfers/" + held + ":reject", map[string]any{"reason": "x"}},
		{"freeze", "POST", "/v1/accounts/" + account + ":freeze", map[string]any{"reason": "x"}},
		{"unfreeze", "POST", "/v1/accounts/" + account + ":unfreeze", map[string]any{"reason": "x"}},
		{"the approval queue", "GET", "/v1/transfers?status=PENDING_APPROVAL", nil},
		{"listing by owner", "GET", "/v1/accounts?ownerId=" + owner.userID, nil},
	}
	admins := []struct {
		what, method, path string
		body               any
	}{
		{"role change", "PUT", "/v1/users/" + owner.userID + "/roles", map[string]any{"roles": []string{"user", "manager"}}},
		{"disable", "POST", "/v1/users/" + owner.userID + ":disable", map[string]any{"reason": "x"}},
		{"enable", "POST", "/v1/users/" + owner.userID + ":enable", map[string]any{"reason": "x"}},
		{"the user list", "GET", "/v1/users", nil},
	}
	for _, op := range staff {
		hdr := []string{}
		if op.what == "deposit" {
			hdr = []string{"Idempotency-Key", "mfa-" + op.what}
		}
		mfaProblem(t, weakMgr.do(op.method, op.path, op.body, hdr...), "manager without a code: "+op.what)
		mfaProblem(t, weakAdmin.do(op.method, op.path, op.body, hdr...), "admin without a code: "+op.what)
	}
	for _, op := range admins {
		mfaProblem(t, weakAdmin.do(op.method, op.path, op.body), "admin without a code: "+op.what)
	}
	weakMgr.do("GET", "/v1/accounts/"+account, nil).must(t, 200, "a manager without a code still reads any account")
	weakMgr.do("GET", "/v1/accounts", nil).must(t, 200, "and lists their own")
	owner.do("GET", "/v1/accounts?ownerId="+weakMgr.userID, nil).problem(t, "a customer listing by owner", 403, false)
	if typ := owner.do("GET", "/v1/accounts?ownerId="+weakMgr.userID, nil).str("type"); strings.HasSuffix(typ, "mfa-required") {
		t.Errorf("a customer listing by owner got %q: a code would not help them, so the refusal is a plain 403", typ)
	}
	if booked, _ := owner.balances(account); booked != "0" {
		t.Errorf("balance = %s after refused staff operations, want 0 (the deposit is held)", booked)
	}
	// The same operations with a code pass the MFA check.
	adm.do("GET", "/v1/users?email="+owner.email, nil).must(t, 200, "the user list with a code")
	adm.do("GET", "/v1/transfers?status=PENDING_APPROVAL", nil).must(t, 200, "the queue with a code")
	adm.do("POST", "/v1/transfers/"+held+":approve", map[string]any{}).must(t, 200, "approve with a code")
}
