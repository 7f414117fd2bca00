package e2e

import (
	"strconv"
	"testing"
)

// TestFailedAuthBudget: a client network that keeps failing authentication
// (here: guessing tokens) gets 429 on every request once it has had
// BANK_RATE_LIMIT_FAILED_AUTH (60) refusals in a minute, even with a valid
// token, while another network's requests go on.
func TestFailedAuthBudget(t *testing.T) {
	t.Parallel()
	guesser := register(t, "guesser") // a real user: the valid token it holds must not help
	valid := guesser.token
	for i := range 60 {
		guesser.token = "guess." + strconv.Itoa(i) + ".x"
		guesser.do("GET", "/v1/users/me", nil).must(t, 401, "a guessed token")
	}
	guesser.token = valid
	r := guesser.do("GET", "/v1/users/me", nil).problem(t, "a valid token after 60 failures", 429, false)
	if r.Header.Get("Retry-After") == "" || r.str("type") != "urn:bastion:problem:failed-auth" {
		t.Errorf("the refusal = %s (Retry-After %q), want type failed-auth with Retry-After", r.Body, r.Header.Get("Retry-After"))
	}
	bystander := register(t, "bystander")
	bystander.do("GET", "/v1/users/me", nil).must(t, 200, "another client network")
}
