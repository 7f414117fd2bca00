package e2e

import (
	"crypto/rand"
	"testing"
)

// TestRoleMatrix: docs/api.md's "who" column for every route that depends on the
// role, tried by a user, a manager and an admin on resources that belong to
// none of them. A manager may approve, reject, freeze, deposit and read any
// account; an admin may do all of that and change roles; a user may do
// none of it, and learns nothing about the resources (404 where docs/api.md
// hides existence, 403 where the route itself is not theirs).
func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	owner, funder := register(t, "matrix-owner"), manager(t, "matrix-funder")
	acct, dest := owner.openAccount("EUR"), owner.openAccount("EUR")
	funder.fund(acct, 10_000_000, "EUR")
	small := owner.transfer(rand.Text(), acct, dest, 100, "EUR").must(t, 200, "small transfer").str("transfer", "id")
	held := func() string {
		return owner.transfer(rand.Text(), acct, dest, 1_000_000, "EUR").must(t, 200, "held transfer").str("transfer", "id")
	}
	callers := map[string]*caller{"user": register(t, "matrix-user"), "manager": manager(t, "matrix-mgr"), "admin": admin(t)}
	type want struct{ user, manager, admin int }
	cases := []struct {
		name   string
		method string
		path   func() string
		body   any
		money  bool // needs an Idempotency-Key
		want   want
	}{
		{"read the account", "GET", func() string { return "/v1/accounts/" + acct }, nil, false, want{404, 200, 200}},
		{"list the owner's accounts", "GET", func() string { return "/v1/accounts?ownerId=" + owner.userID }, nil, false, want{403, 200, 200}},
		{"read the history", "GET", func() string { return "/v1/accounts/" + acct + "/transactions" }, nil, false, want{404, 200, 200}},
		{"read a transfer", "GET", func() string { return "/v1/transfers/" + small }, nil, false, want{404, 200, 200}},
		{"freeze", "POST", func() string { return "/v1/accounts/" + dest + ":freeze" }, map[string]any{"reason": "matrix"}, false, want{403, 200, 200}},
		{"unfreeze", "POST", func() string { return "/v1/accounts/" + dest + ":unfreeze" }, map[string]any{"reason": "matrix"}, false, want{403, 200, 200}},
		{"deposit", "POST", func() string { return "/v1/accounts/" + acct + "/deposits" }, map[string]any{"amount": "1", "currency": "EUR", "reference": "matrix"}, true, want{403, 200, 200}},
		{"approve", "POST", func() string { return "/v1/transfers/" + held() + ":approve" }, map[string]any{}, false, want{403, 200, 200}},
		{"reject", "POST", func() string { return "/v1/transfers/" + held() + ":reject" }, map[string]any{"reason": "matrix"}, false, want{403, 200, 200}},
		{"change roles", "PUT", func() string { return "/v1/users/" + owner.userID + "/roles" }, map[string]any{"roles": []string{"user"}}, false, want{403, 403, 200}},
	}
	for _, tc := range cases {
		for _, role := range []string{"user", "manager", "admin"} {
			t.Run(tc.name+" as "+role, func(t *testing.T) {
				c := *callers[role]
				c.t = t
				var hdr []string
				if tc.money {
					hdr = []string{"Idempotency-Key", rand.Text()}
				}
				status := map[string]int{"user": tc.want.user, "manager": tc.want.manager, "admin": tc.want.admin}[role]
				r := c.do(tc.method, tc.path(), tc.body, hdr...)
				if status != 200 {
					r.problem(t, tc.name+" as "+role, status, false)
				} else {
					r.must(t, 200, tc.name+" as "+role)
				}
			})
		}
	}
	// Two approvals and two deposits moved money; the two transfers the user
	// tried to decide are still held.
	if booked, avail := owner.balances(acct); booked != "7999902" || avail != "5999902" {
		t.Errorf("after the matrix: balance %s, available %s; want 7999902 and 5999902", booked, avail)
	}
	// The owner of either side may read a transfer; nobody else without a role.
	payee := register(t, "matrix-payee")
	in := payee.openAccount("EUR")
	paid := owner.transfer(rand.Text(), acct, in, 5, "EUR").must(t, 200, "pay").str("transfer", "id")
	payee.do("GET", "/v1/transfers/"+paid, nil).must(t, 200, "the payee reads the transfer")
	owner.do("GET", "/v1/transfers/"+paid, nil).must(t, 200, "the payer reads the transfer")
	payee.do("GET", "/v1/accounts/"+acct, nil).problem(t, "the payee reads the payer's account", 404, false)
}
