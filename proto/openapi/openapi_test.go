package openapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/proto/openapi"
)

// publicRoutes is the route table of API.md: the document must list each one
// and nothing else (internal RPCs must never be published).
var publicRoutes = map[string][]string{
	"/v1/auth/register":                     {"post"},
	"/v1/auth/login":                        {"post"},
	"/v1/auth/refresh":                      {"post"},
	"/v1/auth/logout":                       {"post"},
	"/.well-known/jwks.json":                {"get"},
	"/v1/users/me":                          {"get"},
	"/v1/users/{userId}/roles":              {"put"},
	"/v1/accounts":                          {"get", "post"},
	"/v1/accounts/{accountId}":              {"get"},
	"/v1/accounts/{accountId}:freeze":       {"post"},
	"/v1/accounts/{accountId}:unfreeze":     {"post"},
	"/v1/transfers":                         {"get", "post"},
	"/v1/transfers/{transferId}":            {"get"},
	"/v1/transfers/{transferId}:approve":    {"post"},
	"/v1/transfers/{transferId}:reject":     {"post"},
	"/v1/accounts/{accountId}/transactions": {"get"},
	"/v1/accounts/{accountId}/deposits":     {"post"},
}

func TestDocumentListsExactlyThePublicRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatalf("Unmarshal(document) = %v", err)
	}
	for path, methods := range publicRoutes {
		got, ok := doc.Paths[path]
		if !ok {
			t.Errorf("path %s missing from the OpenAPI document", path)
			continue
		}
		var have []string
		for m := range got {
			have = append(have, m)
		}
		slices.Sort(have)
		want := slices.Clone(methods)
		slices.Sort(want)
		if !slices.Equal(have, want) {
			t.Errorf("path %s methods = %v, want %v", path, have, want)
		}
	}
	for path := range doc.Paths {
		if _, ok := publicRoutes[path]; !ok {
			t.Errorf("path %s is in the OpenAPI document but not in API.md", path)
		}
	}
	for _, internal := range []string{"Ledger", "Revocation", "GetBalances", "WatchRevocations"} {
		if strings.Contains(string(openapi.Document()), internal) {
			t.Errorf("OpenAPI document mentions internal RPC %q", internal)
		}
	}
}

// TestIdempotencyKeyIsAHeader: API.md takes the key from the Idempotency-Key
// header (required) and lists no such body field; the document must tell a
// client generator the same, or it would send the key where it is refused.
func TestIdempotencyKeyIsAHeader(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name     string `json:"name"`
				In       string `json:"in"`
				Required bool   `json:"required"`
			} `json:"parameters"`
		} `json:"paths"`
		Definitions map[string]struct {
			Properties map[string]struct {
				ReadOnly bool `json:"readOnly"`
			} `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatalf("Unmarshal(document) = %v", err)
	}
	for _, path := range []string{"/v1/transfers", "/v1/accounts/{accountId}/deposits"} {
		found := false
		for _, p := range doc.Paths[path]["post"].Parameters {
			found = found || (p.Name == "Idempotency-Key" && p.In == "header" && p.Required)
		}
		if !found {
			t.Errorf("POST %s does not declare the required Idempotency-Key header", path)
		}
	}
	for name, def := range doc.Definitions {
		if p, ok := def.Properties["idempotencyKey"]; ok && !p.ReadOnly {
			t.Errorf("definition %s offers idempotencyKey as a writable body field", name)
		}
	}
}
