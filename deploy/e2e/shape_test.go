package e2e

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// schema is a JSON object shape of docs/api.md: member name → kind. A name
// ending in "?" is optional (approvedBy); every other member must be
// present, and no member outside the schema may appear.
//
// Kinds: "uuid4" (a random, lower-case UUID), "uuid" (any UUID), "string",
// "text" (a non-empty string), "minor" (a non-negative integer as a decimal
// string), "signed" (a signed integer as a decimal string), "time" (RFC 3339),
// "int" (a JSON number without a fraction), "roles", "currency",
// "one of:A|B" (an enum spelled exactly so), and "object" / "array of" a
// nested schema, given in nested.
type schema map[string]string

// The shapes docs/api.md lists, one per object.
var (
	userShape = schema{"id": "uuid4", "email": "text", "displayName": "string", "roles": "roles", "createdAt": "time",
		"status": "one of:ACTIVE|DISABLED", "mfaEnabled": "bool"}
	moneyShape   = schema{"currency": "currency", "amount": "minor"}
	accountShape = schema{"id": "uuid4", "ownerId": "uuid4", "currency": "currency", "displayName": "string",
		"status": "one of:ACTIVE|FROZEN|CLOSED", "balance": "money", "availableBalance": "money", "createdAt": "time"}
	transferShape = schema{"id": "uuid4", "fromAccountId": "uuid", "toAccountId": "uuid4", "amount": "minor", "currency": "currency",
		"description": "string", "status": "one of:COMPLETED|PENDING_APPROVAL|REJECTED", "initiatedBy": "uuid4",
		"approvedBy?": "uuid4", "createdAt": "time", "kind": "one of:TRANSFER|DEPOSIT", "holdReason?": "one of:amount|daily_total",
		"rejectedBy?": "uuid4", "rejectionReason?": "text", "reference?": "text"}
	entryShape = schema{"transferId": "uuid4", "amount": "signed", "balanceAfter": "signed", "counterpartyAccountId": "uuid",
		"description": "string", "createdAt": "time"}
	tokensShape  = schema{"accessToken": "text", "refreshToken": "text", "tokenType": "one of:Bearer", "expiresIn": "int"}
	problemShape = schema{"type": "text", "title": "text", "status": "int", "detail": "string", "code": "code",
		"requestId": "text", "violations?": "violations"}
	violationShape = schema{"field": "text", "message": "text"}
)

var (
	uuidPattern  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	uuid4Pattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	minorPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	signPattern  = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)
	codePattern  = regexp.MustCompile(`^[A-Z][A-Z_]*$`)
	isoPattern   = regexp.MustCompile(`^[A-Z]{3}$`)
	// requestIDPattern is what a client may expect to see echoed: short and plain.
	requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// checkShape reports every way v differs from s, naming where by path.
func checkShape(t *testing.T, path string, v any, s schema) {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s = %v, want a JSON object", path, v)
		return
	}
	for name, kind := range s {
		key, optional := strings.CutSuffix(name, "?")
		val, present := obj[key]
		if !present {
			if !optional {
				t.Errorf("%s lacks %q (have %v)", path, key, keysOf(obj))
			}
			continue
		}
		checkKind(t, path+"."+key, val, kind)
	}
	for key := range obj {
		if _, ok := s[key]; !ok {
			if _, ok := s[key+"?"]; !ok {
				t.Errorf("%s has %q, which docs/api.md does not list", path, key)
			}
		}
	}
}

func checkKind(t *testing.T, path string, v any, kind string) {
	t.Helper()
	str, isStr := v.(string)
	bad := func() { t.Errorf("%s = %#v, want %s", path, v, kind) }
	switch {
	case kind == "uuid4":
		if !isStr || !uuid4Pattern.MatchString(str) {
			bad()
		}
	case kind == "uuid":
		if !isStr || !uuidPattern.MatchString(str) {
			bad()
		}
	case kind == "string":
		if !isStr {
			bad()
		}
	case kind == "text":
		if !isStr || str == "" {
			bad()
		}
	case kind == "minor":
		if !isStr || !minorPattern.MatchString(str) {
			bad()
		}
	case kind == "signed":
		if !isStr || !signPattern.MatchString(str) {
			bad()
		}
	case kind == "time":
		if _, err := time.Parse(time.RFC3339Nano, str); !isStr || err != nil {
			bad()
		}
	case kind == "bool":
		if _, ok := v.(bool); !ok {
			bad()
		}
	case kind == "int":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			bad()
		}
	case kind == "currency":
		if !isStr || !isoPattern.MatchString(str) {
			bad()
		}
	case kind == "code":
		if !isStr || !codePattern.MatchString(str) {
			bad()
		}
	case kind == "roles":
		roles, ok := v.([]any)
		if !ok || len(roles) == 0 {
			bad()
		}
		for i, r := range roles {
			checkKind(t, path+"["+strconv.Itoa(i)+"]", r, "one of:user|manager|admin")
		}
	case strings.HasPrefix(kind, "one of:"):
		if !isStr || !slices.Contains(strings.Split(strings.TrimPrefix(kind, "one of:"), "|"), str) {
			bad()
		}
	case kind == "money":
		checkShape(t, path, v, moneyShape)
	case kind == "violations":
		items, ok := v.([]any)
		if !ok || len(items) == 0 {
			bad()
		}
		for i, it := range items {
			checkShape(t, path+"["+strconv.Itoa(i)+"]", it, violationShape)
		}
	default:
		t.Fatalf("schema kind %q unknown", kind)
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// field returns the member of the body's JSON object named key.
func (r response) field(key string) any { return r.JSON[key] }

// shape checks that a successful response is exactly {key: object of s}.
func (r response) shape(t *testing.T, what, key string, s schema) response {
	t.Helper()
	if len(r.JSON) != 1 {
		t.Errorf("%s: body has members %v, want only %q", what, keysOf(r.JSON), key)
	}
	checkShape(t, what+": "+key, r.field(key), s)
	return r
}

// list checks that a page is exactly {key: [objects of s], nextPageToken}
// and returns the items.
func (r response) list(t *testing.T, what, key string, s schema) []map[string]any {
	t.Helper()
	if got := keysOf(r.JSON); !slices.Equal(got, []string{key, "nextPageToken"}) && !slices.Equal(got, []string{"nextPageToken", key}) {
		t.Errorf("%s: body has members %v, want %q and nextPageToken", what, got, key)
	}
	if _, ok := r.field("nextPageToken").(string); !ok {
		t.Errorf("%s: nextPageToken = %#v, want a string", what, r.field("nextPageToken"))
	}
	items, ok := r.field(key).([]any)
	if !ok {
		t.Errorf("%s: %s = %#v, want an array", what, key, r.field(key))
	}
	var out []map[string]any
	for i, it := range items {
		checkShape(t, what+": "+key+"["+strconv.Itoa(i)+"]", it, s)
		m, _ := it.(map[string]any)
		out = append(out, m)
	}
	return out
}

// problem checks an error response against docs/api.md: the status, the
// problem+json media type, exactly the RFC 9457 members docs/api.md lists,
// status and requestId matching the response, and violations exactly when
// wantViolations (input errors).
func (r response) problem(t *testing.T, what string, status int, wantViolations bool) response {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
		return r
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	checkShape(t, what+": problem", map[string]any(r.JSON), problemShape)
	if got, _ := r.field("status").(float64); int(got) != status {
		t.Errorf("%s: problem status %v, want %d", what, r.field("status"), status)
	}
	if got := r.str("requestId"); got != r.Header.Get("X-Request-Id") {
		t.Errorf("%s: problem requestId %q, want the X-Request-Id header %q", what, got, r.Header.Get("X-Request-Id"))
	}
	if _, has := r.JSON["violations"]; has != wantViolations {
		t.Errorf("%s: violations present = %v, want %v (%s)", what, has, wantViolations, r.Body)
	}
	return r
}

// checkEnvelope holds every response to docs/api.md's transport promises: an
// X-Request-Id (the caller's, when well formed), the security headers, no
// caching of authenticated answers, and JSON or problem+json bodies.
func checkEnvelope(t *testing.T, req *http.Request, r response) {
	t.Helper()
	id := r.Header.Get("X-Request-Id")
	if sent := req.Header.Get("X-Request-Id"); sent != "" && validRequestID(sent) && id != sent {
		t.Errorf("%s %s: X-Request-Id %q, want the well-formed one sent, %q", req.Method, req.URL.Path, id, sent)
	}
	if id == "" || !validRequestID(id) {
		t.Errorf("%s %s: X-Request-Id %q, want a generated id", req.Method, req.URL.Path, id)
	}
	want := map[string]string{"X-Content-Type-Options": "nosniff"}
	if req.Header.Get("Authorization") != "" {
		want["Cache-Control"] = "no-store"
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s %s: %s = %q, want %q", req.Method, req.URL.Path, k, got, v)
		}
	}
	if hsts := r.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("%s %s: Strict-Transport-Security = %q", req.Method, req.URL.Path, hsts)
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case req.Method == http.MethodHead:
	case r.Status < 300 && ct != "application/json":
		t.Errorf("%s %s: %d with Content-Type %q, want application/json", req.Method, req.URL.Path, r.Status, ct)
	case r.Status >= 400 && ct != "application/problem+json":
		t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", req.Method, req.URL.Path, r.Status, ct)
	}
}

func validRequestID(s string) bool { return requestIDPattern.MatchString(s) }
