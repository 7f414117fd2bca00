package policy

import (
	"net/url"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/gateway/internal/httprule"
	"github.com/bastion-bank/bastion/platform/errs"
)

// QueryNames returns the query parameters a route accepts: none when the
// body carries the request ("*"), else the request's fields that neither the
// path nor a header fills, under both their JSON and proto names, as
// grpc-gateway accepts either. ok is false for a method without an HTTP
// route.
func QueryNames(md protoreflect.MethodDescriptor) (names []string, ok bool) {
	b, ok := httprule.Of(md)
	if !ok {
		return nil, false
	}
	rule := b.Rule
	if rule.GetBody() == "*" {
		return nil, true
	}
	inPath := map[string]bool{IdempotencyField: true}
	for _, v := range b.Variables() {
		inPath[v] = true
	}
	fields := md.Input().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if !inPath[string(f.Name())] && f.Name() != protoreflect.Name(rule.GetBody()) {
			names = append(names, string(f.Name()), f.JSONName())
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(names))), true
}

// checkQuery refuses a query string that names a parameter the route does
// not take, or that does not parse: an ignored parameter is a request that
// did not do what its sender meant (POST /v1/accounts?ownerId=… opens an
// account for the caller, not for ownerId). The first unknown parameter is
// named, cut to a safe length.
func checkQuery(raw string, allowed []string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return errs.New(errs.Invalid, "malformed query string")
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	}) {
		if !slices.Contains(allowed, name) {
			return errs.InvalidField(safeName(name), "unknown query parameter")
		}
	}
	return nil
}

// safeName keeps a client-chosen parameter name short and printable before
// it is echoed in a violation.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
