package apidoc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/gateway/internal/server"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// build is the document of the gateway's own routes, without comments
// (the compiled descriptors carry no source info).
func build(t *testing.T) *Document {
	t.Helper()
	doc, err := Build(server.PublicServices(), nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return doc
}

// TestDocumentIsTheGatewaysRoutes: every method the gateway's policy
// admits has exactly one operation, with the query parameters the policy
// lets through (under their JSON names) and the header it reads; nothing
// else is documented.
func TestDocumentIsTheGatewaysRoutes(t *testing.T) {
	t.Parallel()
	doc := build(t)
	ops := map[string]*Operation{}
	for _, item := range doc.Paths {
		for _, op := range item {
			ops[op.OperationID] = op
		}
	}
	routed := 0
	for _, sd := range server.PublicServices() {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			rule, err := rbac.RuleOf(md)
			if err != nil {
				t.Fatal(err)
			}
			query, hasRoute := policy.QueryNames(md)
			op := ops[string(md.Name())]
			if !hasRoute || rule.ServiceOnly || !rule.AllowsCaller(policy.CallerName) {
				if op != nil {
					t.Errorf("%s is documented but the gateway does not route it", md.FullName())
				}
				continue
			}
			routed++
			if op == nil {
				t.Errorf("%s is routed but not documented", md.FullName())
				continue
			}
			var gotQuery, wantQuery []string
			for _, p := range op.Parameters {
				if p.In == "query" {
					gotQuery = append(gotQuery, p.Name)
				}
			}
			fields := md.Input().Fields()
			for j := range fields.Len() {
				if f := fields.Get(j); slices.Contains(query, f.JSONName()) {
					wantQuery = append(wantQuery, f.JSONName())
				}
			}
			if !slices.Equal(gotQuery, wantQuery) {
				t.Errorf("%s query parameters = %v, want the policy's %v", md.FullName(), gotQuery, wantQuery)
			}
			header := slices.ContainsFunc(op.Parameters, func(p *Parameter) bool { return p.In == "header" && p.Name == IdempotencyHeader })
			if want := fields.ByName(policy.IdempotencyField) != nil; header != want {
				t.Errorf("%s Idempotency-Key header = %v, want %v", md.FullName(), header, want)
			}
		}
	}
	if len(ops) != routed {
		t.Errorf("document has %d operations, the gateway routes %d", len(ops), routed)
	}
}

// TestProblemCodesAreTheRenderersCodes: the code enum of the Problem
// schema is every code the one renderer can write, and only those.
func TestProblemCodesAreTheRenderersCodes(t *testing.T) {
	t.Parallel()
	rd := &edge.Renderer{}
	var got []string
	record := func(write func(w http.ResponseWriter, r *http.Request)) {
		rec := httptest.NewRecorder()
		write(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		var p edge.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("problem body %q: %v", rec.Body, err)
		}
		if !slices.Contains(got, p.Code) {
			got = append(got, p.Code)
		}
	}
	for k := errs.Kind(0); !strings.HasPrefix(k.String(), "kind("); k++ {
		record(func(w http.ResponseWriter, r *http.Request) { rd.Error(w, r, errs.New(k, "x")) })
	}
	for _, code := range []string{edge.CodeRouteNotFound, edge.CodeMethodNotAllowed, edge.CodeTooLarge, edge.CodeMediaType, edge.CodeMalformed} {
		record(func(w http.ResponseWriter, r *http.Request) { rd.Status(w, r, 400, code, "x") })
	}
	var want []string
	for _, c := range problemCodes {
		want = append(want, c.(string))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("renderer codes = %v, Problem.code enum = %v", got, want)
	}
}

// TestTablesNameRealFields: an entry of outputs or serviceOutcomes that
// names no response field or public RPC is a rename nobody carried over.
func TestTablesNameRealFields(t *testing.T) {
	t.Parallel()
	fields := map[protoreflect.FullName]bool{}
	methods := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		fs := md.Fields()
		for i := range fs.Len() {
			f := fs.Get(i)
			if fields[f.FullName()] {
				continue
			}
			fields[f.FullName()] = true
			if f.Message() != nil {
				walk(f.Message())
			}
		}
	}
	for _, sd := range server.PublicServices() {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			methods[md.FullName()] = true
			walk(md.Output())
		}
	}
	for name := range outputs {
		if !fields[name] {
			t.Errorf("outputs[%s]: no such field in any response", name)
		}
	}
	for name := range serviceOutcomes {
		if !methods[name] {
			t.Errorf("serviceOutcomes[%s]: no such public RPC", name)
		}
	}
}

// TestMarshalIsStable: the same descriptors give the same bytes, which
// `make gen-check` relies on.
func TestMarshalIsStable(t *testing.T) {
	t.Parallel()
	a, err := Marshal(build(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(build(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two builds differ")
	}
}

// TestRuleWithoutAFormFails: a protovalidate rule the generator cannot
// publish stops it, rather than being left out of the document.
func TestRuleWithoutAFormFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ rule string }{{"prefix"}, {"not_in"}, {"hostname"}} {
		if err := applyRule(&Schema{Type: "string"}, tc.rule, protoreflect.ValueOfString("x")); err == nil {
			t.Errorf("applyRule(%s) = nil, want an error", tc.rule)
		}
	}
}
