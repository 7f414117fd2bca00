package server_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/gateway/internal/server"
)

// TestMethodNotAllowedSaysWhatIsAllowed: every 405 carries the Allow header
// RFC 9110 §15.5.6 requires, listing what the path does serve.
func TestMethodNotAllowedSaysWhatIsAllowed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		method, path, allow string
	}{
		{"DELETE", "/v1/accounts", "GET, POST"},
		{"HEAD", "/v1/accounts", "GET, POST"},
		{"OPTIONS", "/v1/accounts", "GET, POST"},
		{"PATCH", "/v1/accounts/" + ownedAccount, "GET"},
		{"DELETE", "/v1/accounts/" + ownedAccount + ":freeze", "GET, POST"}, // GET is GetAccount of the id "…:freeze"
		{"DELETE", "/v1/transfers/" + toAccount + ":approve", "GET, POST"},
		{"GET", "/v1/users/" + otherUserID + "/roles", "PUT"},
		{"PUT", "/.well-known/jwks.json", "GET"},
		{"POST", "/healthz", "GET, HEAD"},
		{"DELETE", "/readyz", "GET, HEAD"},
		{"POST", "/openapi.json", "GET, HEAD"},
		{"POST", "/docs", "GET, HEAD"},
		{"PUT", "/docs/index.html", "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := len(h.rec.Calls())
			resp := h.do(t, h.h2, request{method: tc.method, path: tc.path})
			if resp.status != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s = %d, want 405 (body %s)", tc.method, tc.path, resp.status, resp.body)
			}
			if got := resp.header.Values("Allow"); !slices.Equal(got, []string{tc.allow}) {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if tc.method != "HEAD" {
				if p := resp.problem(t); p.Code != "METHOD_NOT_ALLOWED" {
					t.Errorf("code = %q, want METHOD_NOT_ALLOWED", p.Code)
				}
			}
			if len(h.rec.Calls()) > before {
				t.Errorf("a service handler ran for a 405")
			}
		})
	}
}

// TestEveryRouteNamesItsMethodInAllow asks every public route's path with a
// method no route uses; the 405 must name the route's own method. It holds
// the gateway's route table, read from the google.api.http rules, to the
// routes grpc-gateway actually registered.
func TestEveryRouteNamesItsMethodInAllow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	variable := regexp.MustCompile(`\{[^}]*\}`)
	for _, sd := range server.PublicServices() {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			rule, ok := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
			if !ok || rule == nil {
				continue
			}
			method, template := httpRule(rule)
			path := variable.ReplaceAllString(template, ownedAccount)
			t.Run(string(md.Name()), func(t *testing.T) {
				resp := h.do(t, h.h1, request{method: "TRACE", path: path})
				allow := strings.Split(resp.header.Get("Allow"), ", ")
				if resp.status != http.StatusMethodNotAllowed || !slices.Contains(allow, method) {
					t.Errorf("TRACE %s = %d with Allow %q, want 405 naming %s", path, resp.status, allow, method)
				}
			})
		}
	}
}

func httpRule(r *annotations.HttpRule) (method, template string) {
	for _, b := range []struct{ method, template string }{
		{"GET", r.GetGet()}, {"POST", r.GetPost()}, {"PUT", r.GetPut()}, {"PATCH", r.GetPatch()}, {"DELETE", r.GetDelete()},
	} {
		if b.template != "" {
			return b.method, b.template
		}
	}
	return r.GetCustom().GetKind(), r.GetCustom().GetPath()
}
