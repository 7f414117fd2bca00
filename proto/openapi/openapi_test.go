package openapi_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/proto/openapi"
)

// These tests hold the generated document to docs/api.md, written out here a
// second time on purpose: the generator reads the protos, this file reads
// the contract, and a route, status or rule that one has and the other has
// not fails a test.

// Error statuses that every route can answer (docs/api.md's error table): a
// malformed request or unknown query parameter, a rate limit, an upstream
// that is down, and the internal error nobody plans.
var always = []int{400, 429, 500, 503}

// route is one row of docs/api.md's route tables.
type route struct {
	public   bool  // no token (register, login, refresh, JWKS)
	statuses []int // the error statuses beyond always, exactly
	// pending routes are in docs/api.md but not served yet: absent is fine,
	// present they must have at least these statuses and this security.
	pending bool
}

var (
	body  = []int{413, 415}      // a route that reads a JSON body
	user  = []int{401}           // a route that needs a token
	staff = []int{401, 403}      // …and a role not everyone has
	money = []int{409, 413, 415} // idempotent: key in flight
)

func cat(lists ...[]int) []int { return slices.Sorted(slices.Values(slices.Concat(lists...))) }

// contract is docs/api.md's routes with what each can answer.
var contract = map[string]route{
	"POST /v1/auth/register":       {public: true, statuses: cat(body, []int{409})},
	"POST /v1/auth/login":          {public: true, statuses: cat(body, []int{401})},
	"POST /v1/auth/refresh":        {public: true, statuses: cat(body, []int{401})},
	"POST /v1/auth/logout":         {statuses: cat(body, user)},
	"GET /.well-known/jwks.json":   {public: true},
	"GET /v1/users/me":             {statuses: user},
	"PUT /v1/users/{userId}/roles": {statuses: cat(body, staff, []int{404, 422})},

	"POST /v1/accounts":                      {statuses: cat(body, user, []int{422})},
	"GET /v1/accounts":                       {statuses: cat(user, []int{403})}, // ownerId by a plain user
	"GET /v1/accounts/{accountId}":           {statuses: cat(user, []int{404})},
	"POST /v1/accounts/{accountId}:freeze":   {statuses: cat(body, staff, []int{404, 422})},
	"POST /v1/accounts/{accountId}:unfreeze": {statuses: cat(body, staff, []int{404, 422})},

	"POST /v1/transfers":                        {statuses: cat(money, user, []int{404, 422})},
	"GET /v1/transfers/{transferId}":            {statuses: cat(user, []int{404})},
	"GET /v1/transfers":                         {statuses: staff},
	"POST /v1/transfers/{transferId}:approve":   {statuses: cat(body, staff, []int{404, 422})},
	"POST /v1/transfers/{transferId}:reject":    {statuses: cat(body, staff, []int{404, 422})},
	"GET /v1/accounts/{accountId}/transactions": {statuses: cat(user, []int{404})},
	"POST /v1/accounts/{accountId}/deposits":    {statuses: cat(money, staff, []int{404, 422})},

	"GET /v1/users":                                 {statuses: staff},
	"POST /v1/users/{userId}:disable":               {statuses: cat(body, staff, []int{404, 422})}, // 422: never on themselves
	"POST /v1/users/{userId}:enable":                {statuses: cat(body, staff, []int{404})},
	"POST /v1/users/me/password":                    {statuses: cat(body, user, []int{403})}, // 403: a wrong current password
	"GET /v1/users/me/sessions":                     {statuses: user},
	"POST /v1/users/me/sessions/{sessionId}:revoke": {statuses: cat(body, user, []int{404})},
	"POST /v1/users/me/mfa/totp":                    {pending: true, statuses: cat(body, user)},
	"POST /v1/users/me/mfa/totp:verify":             {pending: true, statuses: cat(body, user)},
	"POST /v1/auth/login/mfa":                       {pending: true, public: true, statuses: cat(body, []int{401})},
}

// doc is the parsed document with a $ref resolver.
type doc map[string]any

func load(t *testing.T) doc {
	t.Helper()
	var d doc
	if err := json.Unmarshal(openapi.Document(), &d); err != nil {
		t.Fatalf("Unmarshal(document) = %v", err)
	}
	return d
}

// at walks keys from node, following any $ref met on the way.
func (d doc) at(node any, keys ...string) any {
	if root, ok := node.(doc); ok {
		node = map[string]any(root)
	}
	node = d.deref(node)
	for _, k := range keys {
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = d.deref(m[k])
	}
	return node
}

func (d doc) deref(node any) any {
	for range 8 {
		m, ok := node.(map[string]any)
		if !ok {
			return node
		}
		r, ok := m["$ref"].(string)
		if !ok {
			return node
		}
		node = map[string]any(d)
		for _, k := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
			node = node.(map[string]any)[k]
		}
	}
	return node
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// operations returns "METHOD /path" → operation of every route in d.
func (d doc) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	for path, item := range obj(d["paths"]) {
		for method, op := range obj(item) {
			out[strings.ToUpper(method)+" "+path] = obj(op)
		}
	}
	return out
}

func TestDocumentListsExactlyThePublicRoutes(t *testing.T) {
	d := load(t)
	if v, _ := d["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Errorf("openapi = %q, want a 3.x document", v)
	}
	ops := d.operations()
	for name, rt := range contract {
		if _, ok := ops[name]; !ok && !rt.pending {
			t.Errorf("%s is in docs/api.md but not in the OpenAPI document", name)
		}
	}
	for name := range ops {
		if _, ok := contract[name]; !ok {
			t.Errorf("%s is in the OpenAPI document but not in docs/api.md", name)
		}
	}
	for _, internal := range []string{"Ledger", "Revocation", "GetBalances", "WatchRevocations", "idempotencyKey"} {
		if strings.Contains(string(openapi.Document()), internal) {
			t.Errorf("OpenAPI document mentions internal name %q", internal)
		}
	}
}

// TestEveryStatusOfTheContractIsAProblem: each route documents exactly the
// error statuses it can answer, each as application/problem+json with the
// Problem schema, with the headers docs/api.md promises.
func TestEveryStatusOfTheContractIsAProblem(t *testing.T) {
	d := load(t)
	for name, op := range d.operations() {
		rt := contract[name]
		responses := obj(op["responses"])
		var got []int
		for code := range responses {
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response %q is not a status code", name, code)
				continue
			}
			if n != 200 {
				got = append(got, n)
			}
		}
		slices.Sort(got)
		want := cat(always, rt.statuses)
		if rt.pending {
			for _, s := range want {
				if !slices.Contains(got, s) {
					t.Errorf("%s: status %d missing (has %v)", name, s, got)
				}
			}
		} else if !slices.Equal(got, want) {
			t.Errorf("%s: error statuses = %v, want %v", name, got, want)
		}
		if ct := obj(d.at(responses, "200", "content")); ct["application/json"] == nil {
			t.Errorf("%s: 200 is not application/json: %v", name, ct)
		}
		for _, s := range got {
			resp := d.at(responses, strconv.Itoa(s))
			schema := obj(obj(d.at(resp, "content", "application/problem+json"))["schema"])
			if schema == nil || len(schema) != 1 || schema["$ref"] != "#/components/schemas/Problem" {
				t.Errorf("%s %d: body is not the Problem schema as application/problem+json: %v", name, s, d.at(resp, "content"))
			}
			// A 503 may say when to retry (a busy ledger), so it documents
			// Retry-After too, as optional: other 503s carry none.
			wantHeaders := map[int][]string{401: {"WWW-Authenticate"}, 429: {"Retry-After", "RateLimit-Policy", "RateLimit"}, 503: {"Retry-After"}}[s]
			if s == 503 && obj(d.at(resp, "headers", "Retry-After"))["required"] == true {
				t.Errorf("%s 503: Retry-After is documented as always present; only a busy ledger sends it", name)
			}
			for _, h := range append(wantHeaders, "X-Request-Id") {
				if d.at(resp, "headers", h) == nil {
					t.Errorf("%s %d: header %s not documented", name, s, h)
				}
			}
		}
	}
	problem := obj(d.at(d, "components", "schemas", "Problem"))
	for _, f := range []string{"type", "title", "status", "detail", "code", "requestId"} {
		if d.at(problem, "properties", f) == nil || !slices.Contains(strs(problem["required"]), f) {
			t.Errorf("Problem.%s is not a required property", f)
		}
	}
	if slices.Contains(strs(problem["required"]), "violations") {
		t.Errorf("Problem.violations is required; docs/api.md has it on input errors only")
	}
	violation := d.at(problem, "properties", "violations", "items")
	if got := strs(obj(violation)["required"]); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"field", "message"}) {
		t.Errorf("Violation required = %v, want field and message", got)
	}
}

// TestPublicRoutesNeedNoToken: one HTTP bearer scheme; register, login,
// refresh and the JWKS say they need nothing, every other route the token.
func TestPublicRoutesNeedNoToken(t *testing.T) {
	d := load(t)
	schemes := obj(d.at(d, "components", "securitySchemes"))
	if len(schemes) != 1 {
		t.Fatalf("security schemes = %v, want one", schemes)
	}
	var scheme string
	for name, s := range schemes {
		scheme = name
		if obj(s)["type"] != "http" || !strings.EqualFold(fmt.Sprint(obj(s)["scheme"]), "bearer") {
			t.Errorf("security scheme %s = %v, want type http, scheme bearer", name, s)
		}
	}
	for name, op := range d.operations() {
		sec, explicit := op["security"].([]any)
		if !explicit {
			sec, _ = d["security"].([]any)
		}
		public := len(sec) == 0 || (len(sec) == 1 && len(obj(sec[0])) == 0)
		if public != contract[name].public {
			t.Errorf("%s: public = %v, want %v (security %v)", name, public, contract[name].public, sec)
		}
		if !public && (len(sec) != 1 || obj(sec[0])[scheme] == nil) {
			t.Errorf("%s: security = %v, want the %s scheme", name, sec, scheme)
		}
	}
}

// TestIdempotencyKeyIsAHeader: docs/api.md takes the key from the required
// Idempotency-Key header (1–255 printable characters) and lists no such
// body field; a client generator must be told the same, or it would send
// the key where it is refused.
func TestIdempotencyKeyIsAHeader(t *testing.T) {
	d := load(t)
	ops := d.operations()
	for name, op := range ops {
		var found map[string]any
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			if p := obj(d.deref(p)); p["name"] == "Idempotency-Key" {
				found = p
			}
		}
		money := name == "POST /v1/transfers" || name == "POST /v1/accounts/{accountId}/deposits"
		switch {
		case !money && found != nil:
			t.Errorf("%s takes an Idempotency-Key header; docs/api.md has it on transfers and deposits only", name)
		case !money:
		case found == nil || found["in"] != "header" || found["required"] != true:
			t.Errorf("%s does not declare the required Idempotency-Key header: %v", name, found)
		default:
			s := obj(found["schema"])
			if s["minLength"] != 1.0 || s["maxLength"] != 255.0 || s["pattern"] == nil {
				t.Errorf("%s: Idempotency-Key schema = %v, want 1 to 255 printable characters", name, s)
			}
		}
	}
}

// bodies are docs/api.md's request bodies: exactly these fields, required or
// optional (a trailing ? in docs/api.md).
var bodies = map[string]map[string]bool{
	"POST /v1/auth/register":                        {"email": true, "password": true, "displayName": true},
	"POST /v1/auth/login":                           {"email": true, "password": true},
	"POST /v1/auth/refresh":                         {"refreshToken": true},
	"POST /v1/auth/logout":                          {"refreshToken": true},
	"PUT /v1/users/{userId}/roles":                  {"roles": true},
	"POST /v1/accounts":                             {"currency": true, "displayName": false},
	"POST /v1/accounts/{accountId}:freeze":          {"reason": true},
	"POST /v1/accounts/{accountId}:unfreeze":        {"reason": true},
	"POST /v1/transfers":                            {"fromAccountId": true, "toAccountId": true, "amount": true, "currency": true, "description": false},
	"POST /v1/transfers/{transferId}:approve":       {},
	"POST /v1/transfers/{transferId}:reject":        {"reason": true},
	"POST /v1/accounts/{accountId}/deposits":        {"amount": true, "currency": true, "reference": true},
	"POST /v1/users/{userId}:disable":               {"reason": true},
	"POST /v1/users/{userId}:enable":                {"reason": true},
	"POST /v1/users/me/password":                    {"currentPassword": true, "newPassword": true},
	"POST /v1/users/me/sessions/{sessionId}:revoke": {},
}

// TestBodiesAreAPIMDs: each body has docs/api.md's fields and no other (the
// gateway refuses unknown fields), with docs/api.md's required ones.
func TestBodiesAreAPIMDs(t *testing.T) {
	d := load(t)
	ops := d.operations()
	for name, want := range bodies {
		schema := obj(d.at(ops[name], "requestBody", "content", "application/json", "schema"))
		if schema == nil {
			t.Errorf("%s has no JSON request body", name)
			continue
		}
		got := map[string]bool{}
		for f := range obj(schema["properties"]) {
			got[f] = slices.Contains(strs(schema["required"]), f)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s body fields (name: required) = %v, want %v", name, got, want)
		}
		if schema["additionalProperties"] != false {
			t.Errorf("%s body allows unknown fields; the gateway refuses them", name)
		}
	}
	for name, op := range ops {
		if _, ok := bodies[name]; !ok && op["requestBody"] != nil && !contract[name].pending {
			t.Errorf("%s has a request body that docs/api.md does not list", name)
		}
	}
}

// rule is what a schema must say about one value.
type rule struct {
	typ, format       string
	minLen, maxLen    float64 // 0: not checked
	minimum, maximum  any     // nil: not checked
	exclusiveMin      bool
	enum              []string // at least these values
	exactEnum         bool
	pattern, required bool
}

// rules are docs/api.md's limits and formats (and the protos' validation rules
// behind them), by "METHOD /path" and a field: a body field, a parameter
// ("?name", "{name}", "header name"), or "200 a.b" for a response field.
var rules = map[string]map[string]rule{
	"POST /v1/auth/register": {
		"email":                {typ: "string", format: "email", required: true},
		"password":             {typ: "string", minLen: 12, maxLen: 128, required: true},
		"displayName":          {typ: "string", minLen: 1, maxLen: 64, pattern: true, required: true},
		"200 user":             {typ: "object", required: true},
		"200 user.id":          {typ: "string", format: "uuid", required: true},
		"200 user.roles.items": {typ: "string", enum: []string{"user", "manager", "admin"}, exactEnum: true},
		"200 user.createdAt":   {typ: "string", format: "date-time", required: true},
	},
	"POST /v1/auth/login": {
		"email":            {typ: "string", required: true},
		"password":         {typ: "string", maxLen: 128, required: true},
		"200 accessToken":  {typ: "string", required: true},
		"200 refreshToken": {typ: "string", required: true},
		"200 tokenType":    {typ: "string", enum: []string{"Bearer"}, required: true},
		"200 expiresIn":    {typ: "integer", required: true},
	},
	"POST /v1/auth/refresh": {
		"refreshToken":  {typ: "string", minLen: 1, required: true},
		"200 tokenType": {typ: "string", enum: []string{"Bearer"}, required: true},
	},
	"PUT /v1/users/{userId}/roles": {
		"{userId}":    {typ: "string", format: "uuid", required: true},
		"roles":       {typ: "array", required: true},
		"roles.items": {typ: "string", enum: []string{"user", "manager", "admin"}, exactEnum: true},
	},
	"POST /v1/accounts": {
		"currency":                              {typ: "string", enum: []string{"EUR", "USD", "GBP", "CHF", "JPY"}, required: true},
		"displayName":                           {typ: "string", maxLen: 64, pattern: true},
		"200 account.id":                        {typ: "string", format: "uuid", required: true},
		"200 account.ownerId":                   {typ: "string", format: "uuid", required: true},
		"200 account.status":                    {typ: "string", enum: []string{"ACTIVE", "FROZEN", "CLOSED"}, exactEnum: true, required: true},
		"200 account.balance.amount":            {typ: "string", format: "int64", required: true},
		"200 account.availableBalance.currency": {typ: "string", required: true},
	},
	"GET /v1/accounts": {
		"?pageSize":  {typ: "integer", minimum: 0.0, maximum: 100.0},
		"?pageToken": {typ: "string"},
		"?ownerId":   {typ: "string", format: "uuid"},
	},
	"POST /v1/accounts/{accountId}:freeze": {
		"{accountId}": {typ: "string", format: "uuid", required: true},
		"reason":      {typ: "string", minLen: 1, maxLen: 280, required: true},
	},
	"POST /v1/transfers": {
		"header Idempotency-Key":   {typ: "string", minLen: 1, maxLen: 255, pattern: true, required: true},
		"fromAccountId":            {typ: "string", format: "uuid", required: true},
		"toAccountId":              {typ: "string", format: "uuid", required: true},
		"amount":                   {typ: "string", format: "int64", minimum: 0.0, exclusiveMin: true, required: true},
		"currency":                 {typ: "string", enum: []string{"EUR", "USD", "GBP", "CHF", "JPY"}, required: true},
		"description":              {typ: "string", maxLen: 140},
		"200 transfer.kind":        {typ: "string", enum: []string{"TRANSFER", "DEPOSIT"}, exactEnum: true, required: true},
		"200 transfer.status":      {typ: "string", enum: []string{"COMPLETED", "PENDING_APPROVAL", "REJECTED"}, exactEnum: true, required: true},
		"200 transfer.holdReason":  {typ: "string", enum: []string{"amount", "daily_total"}, exactEnum: true},
		"200 transfer.approvedBy":  {typ: "string", format: "uuid"},
		"200 transfer.rejectedBy":  {typ: "string", format: "uuid"},
		"200 transfer.reference":   {typ: "string"},
		"200 transfer.amount":      {typ: "string", format: "int64", required: true},
		"200 transfer.initiatedBy": {typ: "string", format: "uuid", required: true},
	},
	"GET /v1/transfers": {
		"?status":   {typ: "string", enum: []string{"PENDING_APPROVAL"}},
		"?pageSize": {typ: "integer", maximum: 100.0},
	},
	"POST /v1/accounts/{accountId}/deposits": {
		"header Idempotency-Key": {typ: "string", minLen: 1, maxLen: 255, pattern: true, required: true},
		"amount":                 {typ: "string", format: "int64", minimum: 0.0, exclusiveMin: true, required: true},
		"reference":              {typ: "string", minLen: 1, maxLen: 140, required: true},
	},
	"GET /v1/users": {
		"?pageSize":              {typ: "integer", minimum: 0.0, maximum: 100.0},
		"?pageToken":             {typ: "string"},
		"?email":                 {typ: "string", format: "email"},
		"200 users.items.status": {typ: "string", enum: []string{"ACTIVE", "DISABLED"}, exactEnum: true, required: true},
		"200 nextPageToken":      {typ: "string", required: true},
	},
	"POST /v1/users/me/password": {
		"currentPassword": {typ: "string", maxLen: 128, required: true},
		"newPassword":     {typ: "string", minLen: 12, maxLen: 128, required: true},
	},
	"GET /v1/users/me/sessions": {
		"200 sessions.items.id":         {typ: "string", format: "uuid", required: true},
		"200 sessions.items.createdAt":  {typ: "string", format: "date-time", required: true},
		"200 sessions.items.lastUsedAt": {typ: "string", format: "date-time", required: true},
		"200 sessions.items.current":    {typ: "boolean", required: true},
	},
	"POST /v1/users/me/sessions/{sessionId}:revoke": {
		"{sessionId}": {typ: "string", format: "uuid", required: true},
	},
	"GET /v1/accounts/{accountId}/transactions": {
		"{accountId}":                             {typ: "string", format: "uuid", required: true},
		"?pageSize":                               {typ: "integer", maximum: 100.0},
		"200 entries.items.amount":                {typ: "string", format: "int64", required: true},
		"200 entries.items.balanceAfter":          {typ: "string", format: "int64", required: true},
		"200 entries.items.counterpartyAccountId": {typ: "string", required: true},
		"200 nextPageToken":                       {typ: "string", required: true},
	},
}

// TestSchemasCarryTheRules: the limits, formats, enums and required
// fields of docs/api.md are in the document, where a client generator and a
// schema-driven test read them.
func TestSchemasCarryTheRules(t *testing.T) {
	d := load(t)
	ops := d.operations()
	for name, fields := range rules {
		op := ops[name]
		if op == nil {
			t.Errorf("%s missing", name)
			continue
		}
		for field, want := range fields {
			schema, required := d.find(op, field)
			if schema == nil {
				t.Errorf("%s %s: not documented", name, field)
				continue
			}
			check(t, name+" "+field, schema, required, want)
		}
	}
}

// find returns the schema of field in op, and whether it is required.
func (d doc) find(op map[string]any, field string) (map[string]any, bool) {
	var in, name string
	switch {
	case strings.HasPrefix(field, "?"):
		in, name = "query", field[1:]
	case strings.HasPrefix(field, "{"):
		in, name = "path", strings.Trim(field, "{}")
	case strings.HasPrefix(field, "header "):
		in, name = "header", strings.TrimPrefix(field, "header ")
	}
	if in != "" {
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			if p := obj(d.deref(p)); p["in"] == in && p["name"] == name {
				return obj(d.deref(p["schema"])), p["required"] == true
			}
		}
		return nil, false
	}
	node := d.at(op, "requestBody", "content", "application/json", "schema")
	if rest, ok := strings.CutPrefix(field, "200 "); ok {
		node, field = d.at(op, "responses", "200", "content", "application/json", "schema"), rest
	}
	required := false
	for _, key := range strings.Split(field, ".") {
		parent := obj(d.deref(node))
		if key == "items" {
			node, required = parent["items"], false
			continue
		}
		node = d.at(parent, "properties", key)
		required = slices.Contains(strs(parent["required"]), key)
	}
	return obj(d.deref(node)), required
}

func check(t *testing.T, what string, s map[string]any, required bool, want rule) {
	t.Helper()
	if s["type"] != want.typ {
		t.Errorf("%s: type = %v, want %s", what, s["type"], want.typ)
	}
	if want.format != "" && s["format"] != want.format {
		t.Errorf("%s: format = %v, want %s", what, s["format"], want.format)
	}
	if want.minLen != 0 && s["minLength"] != want.minLen {
		t.Errorf("%s: minLength = %v, want %v", what, s["minLength"], want.minLen)
	}
	if want.maxLen != 0 && s["maxLength"] != want.maxLen {
		t.Errorf("%s: maxLength = %v, want %v", what, s["maxLength"], want.maxLen)
	}
	if want.minimum != nil && (s["minimum"] != want.minimum || (s["exclusiveMinimum"] == true) != want.exclusiveMin) {
		t.Errorf("%s: minimum = %v (exclusive %v), want %v (exclusive %v)", what, s["minimum"], s["exclusiveMinimum"], want.minimum, want.exclusiveMin)
	}
	if want.maximum != nil && s["maximum"] != want.maximum {
		t.Errorf("%s: maximum = %v, want %v", what, s["maximum"], want.maximum)
	}
	if want.pattern && s["pattern"] == nil {
		t.Errorf("%s: no pattern", what)
	}
	got := strs(s["enum"])
	for _, v := range want.enum {
		if !slices.Contains(got, v) {
			t.Errorf("%s: enum %v lacks %q", what, got, v)
		}
	}
	if want.exactEnum && len(got) != len(want.enum) {
		t.Errorf("%s: enum = %v, want %v", what, got, want.enum)
	}
	if required != want.required {
		t.Errorf("%s: required = %v, want %v", what, required, want.required)
	}
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}
