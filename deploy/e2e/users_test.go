package e2e

import (
	"net/url"
	"testing"
	"time"
)

// refusedWithin polls path as c until it answers 401, failing the test if
// that takes longer than a second: the contract's bound for a revocation
// to reach every verifier.
func refusedWithin(t *testing.T, c *caller, path, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		r := c.do("GET", path, nil)
		if r.Status == 401 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: token still accepted %v later (status %d)", what, time.Second, r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUserAdministration: an admin finds a user, disables them (their
// tokens die within a second, their logins answer as a wrong password),
// and enables them again.
func TestUserAdministration(t *testing.T) {
	t.Parallel()
	adm, u := admin(t), register(t, "disable-me")
	account := u.openAccount("EUR")
	thief := newCaller(t) // holds a copy of the user's tokens
	thief.token, thief.refresh = u.token, u.refresh

	found := adm.do("GET", "/v1/users?email="+url.QueryEscape(u.email), nil).must(t, 200, "find the user by email")
	users, _ := found.JSON["users"].([]any)
	if len(users) != 1 || found.str("nextPageToken") != "" {
		t.Fatalf("GET /v1/users?email= = %s, want exactly one user", found.Body)
	}
	if got := users[0].(map[string]any); got["id"] != u.userID || got["status"] != "ACTIVE" {
		t.Errorf("listed user = %v, want %s ACTIVE", got, u.userID)
	}
	page := adm.do("GET", "/v1/users?pageSize=1", nil).must(t, 200, "first page")
	next := page.str("nextPageToken")
	if next == "" {
		t.Fatalf("a page of 1 of several users has no next page: %s", page.Body)
	}
	adm.do("GET", "/v1/users?pageSize=1&pageToken="+url.QueryEscape(next), nil).must(t, 200, "second page")
	adm.do("GET", "/v1/users?pageSize=1&pageToken="+url.QueryEscape(next)+"&email="+url.QueryEscape(u.email), nil).
		must(t, 400, "a page token with another filter")
	adm.do("GET", "/v1/users?pageSize=101", nil).must(t, 400, "page too large")

	d := adm.do("POST", "/v1/users/"+u.userID+":disable", map[string]any{"reason": "reported stolen"}).must(t, 200, "disable")
	if d.str("user", "status") != "DISABLED" {
		t.Errorf("disable answered %s, want a DISABLED user", d.Body)
	}
	refusedWithin(t, thief, "/v1/accounts/"+account, "the disabled user's access token")
	thief.token = ""
	thief.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": thief.refresh}).must(t, 401, "the disabled user's refresh token")

	// The right password answers exactly as a wrong one.
	right := newCaller(t).do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "correct horse battery"})
	wrong := newCaller(t).do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "not the password"})
	right.must(t, 401, "login of a disabled user")
	sameProblem(t, "a disabled user's login vs a wrong password", right, wrong)

	e := adm.do("POST", "/v1/users/"+u.userID+":enable", map[string]any{"reason": "card replaced"}).must(t, 200, "enable")
	if e.str("user", "status") != "ACTIVE" {
		t.Errorf("enable answered %s, want an ACTIVE user", e.Body)
	}
	u.login("correct horse battery")
	u.do("GET", "/v1/accounts/"+account, nil).must(t, 200, "the enabled user works again")
}

// TestUserAdministrationRefusals: BFLA (users and managers cannot reach
// the admin routes), BOLA-style probing of ids, validation, and an admin
// disabling themselves.
func TestUserAdministrationRefusals(t *testing.T) {
	t.Parallel()
	u, mgr, adm := register(t, "admin-bfla"), manager(t, "admin-bfla-mgr"), admin(t)
	victim := register(t, "admin-bfla-victim")
	for _, c := range []struct {
		who    string
		caller *caller
	}{{"user", u}, {"manager", mgr}} {
		c.caller.do("GET", "/v1/users", nil).must(t, 403, c.who+" lists users")
		c.caller.do("POST", "/v1/users/"+victim.userID+":disable", map[string]any{"reason": "x"}).must(t, 403, c.who+" disables a user")
		c.caller.do("POST", "/v1/users/"+victim.userID+":enable", map[string]any{"reason": "x"}).must(t, 403, c.who+" enables a user")
	}
	victim.do("GET", "/v1/users/me", nil).must(t, 200, "the victim is untouched")

	adm.do("POST", "/v1/users/"+randomID+":disable", map[string]any{"reason": "x"}).must(t, 404, "disable an unknown user")
	adm.do("POST", "/v1/users/"+randomID+":enable", map[string]any{"reason": "x"}).must(t, 404, "enable an unknown user")
	adm.do("POST", "/v1/users/not-a-uuid:disable", map[string]any{"reason": "x"}).must(t, 400, "disable with a malformed id")
	adm.do("POST", "/v1/users/"+victim.userID+":disable", map[string]any{}).must(t, 400, "disable without a reason")
	adm.do("POST", "/v1/users/"+victim.userID+":disable", map[string]any{"reason": "x\u0000"}).must(t, 400, "a reason with NUL")
	self := adm.do("POST", "/v1/users/"+adm.userID+":disable", map[string]any{"reason": "tired"}).must(t, 422, "an admin disables themselves")
	if self.str("code") == "" {
		t.Errorf("self-disable problem = %s", self.Body)
	}
	adm.do("GET", "/v1/users/me", nil).must(t, 200, "the admin is still active")
}

// TestPasswordChange: the change needs the current password, revokes every
// other session within a second and keeps the current one.
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	u := register(t, "pw-change")
	other := newCaller(t) // the same user on another device
	other.email = u.email
	other.login("correct horse battery")

	u.do("POST", "/v1/users/me/password", map[string]any{"currentPassword": "not it", "newPassword": "a fresh passphrase here"}).
		must(t, 403, "wrong current password")
	u.do("POST", "/v1/users/me/password", map[string]any{"currentPassword": "correct horse battery", "newPassword": "password1234"}).
		must(t, 400, "a common new password")
	u.do("POST", "/v1/users/me/password", map[string]any{"currentPassword": "correct horse battery", "newPassword": "a fresh passphrase here", "extra": 1}).
		must(t, 400, "an unknown field")
	other.do("GET", "/v1/users/me", nil).must(t, 200, "refusals revoke nothing")

	out := u.do("POST", "/v1/users/me/password", map[string]any{"currentPassword": "correct horse battery", "newPassword": "a fresh passphrase here"}).
		must(t, 200, "change the password")
	if string(out.Body) != "{}" {
		t.Errorf("password change answered %s, want {}", out.Body)
	}
	refusedWithin(t, other, "/v1/users/me", "the other session's access token")
	other.token = ""
	other.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": other.refresh}).must(t, 401, "the other session's refresh token")
	u.do("GET", "/v1/users/me", nil).must(t, 200, "the current session survives")
	u.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": u.refresh}).must(t, 200, "the current session still refreshes")
	newCaller(t).do("POST", "/v1/auth/login", map[string]any{"email": u.email, "password": "correct horse battery"}).must(t, 401, "the old password")
	u.login("a fresh passphrase here")
}

// TestSessions: a user sees their sessions, ends one of them (its tokens
// die within a second), and cannot touch another user's.
func TestSessions(t *testing.T) {
	t.Parallel()
	u, v := register(t, "sessions"), register(t, "sessions-other")
	laptop := newCaller(t)
	laptop.email = u.email
	laptop.login("correct horse battery")

	list := u.do("GET", "/v1/users/me/sessions", nil).must(t, 200, "list sessions")
	sessions, _ := list.JSON["sessions"].([]any)
	if len(sessions) != 2 {
		t.Fatalf("sessions = %s, want 2", list.Body)
	}
	var current, others []string
	for _, s := range sessions {
		m := s.(map[string]any)
		if m["createdAt"] == nil || m["lastUsedAt"] == nil || m["id"] == nil {
			t.Errorf("session %v lacks a field", m)
		}
		if m["current"] == true {
			current = append(current, m["id"].(string))
		} else {
			others = append(others, m["id"].(string))
		}
	}
	if len(current) != 1 || len(others) != 1 {
		t.Fatalf("current %v, others %v; want one of each", current, others)
	}
	theirs := v.do("GET", "/v1/users/me/sessions", nil).must(t, 200, "the other user's sessions")
	theirID := theirs.JSON["sessions"].([]any)[0].(map[string]any)["id"].(string)

	sameProblem(t, "another user's session vs a missing one",
		u.do("POST", "/v1/users/me/sessions/"+theirID+":revoke", map[string]any{}).must(t, 404, "revoke another user's session"),
		u.do("POST", "/v1/users/me/sessions/"+randomID+":revoke", map[string]any{}).must(t, 404, "revoke a missing session"))
	u.do("POST", "/v1/users/me/sessions/nope:revoke", map[string]any{}).must(t, 400, "revoke a malformed id")
	v.do("GET", "/v1/users/me", nil).must(t, 200, "the other user's session survives")

	u.do("POST", "/v1/users/me/sessions/"+others[0]+":revoke", map[string]any{}).must(t, 200, "revoke the laptop's session")
	refusedWithin(t, laptop, "/v1/users/me", "the revoked session's access token")
	laptop.token = ""
	laptop.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": laptop.refresh}).must(t, 401, "the revoked session's refresh token")
	u.do("GET", "/v1/users/me", nil).must(t, 200, "the current session survives")
}
