package server_test

import (
	"net/http"
	"testing"
)

// TestNonCanonicalPathsAreNotRedirected: a path with empty, "." or ".."
// segments is a problem+json 404, not the standard library's redirect (with
// an HTML body) to the cleaned path, which would give every route a second
// spelling that a path-filtering proxy in front might not know. The docs
// keep their one deliberate redirect, /docs to /docs/.
func TestNonCanonicalPathsAreNotRedirected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	user := h.env.Token(t, ownerID, "user")
	tests := []struct {
		path     string
		status   int
		location string
	}{
		{"//v1/accounts", 404, ""},
		{"/v1//accounts", 404, ""},
		{"/v1/../v1/accounts", 404, ""},
		{"/v1/./accounts", 404, ""},
		{"/v1/accounts/.", 404, ""},
		{"/v1/accounts/" + ownedAccount + "/..", 404, ""},
		{"/v1/%2e%2e/v1/accounts", 404, ""},
		{"/v1%2F%2Faccounts", 404, ""},
		{"//healthz", 404, ""},
		{"/docs/../docs/", 404, ""},
		{"/docs/./index.html", 404, ""},
		{"/docs/../../go.mod", 404, ""},
		{"/v1/accounts", 200, ""},
		{"/docs/", 200, ""},
		{"/docs", 301, "/docs/"},
	}
	for name, c := range map[string]*http.Client{"HTTP/1.1": h.h1, "HTTP/2": h.h2} {
		noFollow := *c
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		for _, tc := range tests {
			t.Run(name+" "+tc.path, func(t *testing.T) {
				resp := h.do(t, &noFollow, request{method: "GET", path: tc.path, token: user})
				if resp.status != tc.status || resp.header.Get("Location") != tc.location {
					t.Fatalf("GET %s = %d (Location %q), want %d (Location %q)", tc.path, resp.status, resp.header.Get("Location"), tc.status, tc.location)
				}
				if tc.status == http.StatusNotFound {
					if p := resp.problem(t); p.Code != "NOT_FOUND" {
						t.Errorf("code = %q, want NOT_FOUND", p.Code)
					}
				}
			})
		}
	}
}
