package server

import (
	"fmt"
	"github.com/bastion-bank/bastion/gateway/internal/httprule"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// routeTable is the method and path template of every grpc-gateway route.
// It exists to answer one question the mux cannot: when a path matches a
// route under some other method (a 405), which methods does it support? RFC
// 9110 §15.5.6 requires that list in the Allow header, and grpc-gateway
// keeps its compiled patterns to itself, so the table is read from the same
// google.api.http rules its handlers were generated from.
// TestEveryRouteNamesItsMethodInAllow holds the two to agreeing.
type routeTable []route

// route is one HTTP binding of an RPC.
type route struct {
	method   string
	segments []segment
	verb     string // the custom method after ':', such as "freeze"
}

// segment is a literal path segment, or a variable matching any one segment.
type segment struct {
	literal  string
	variable bool
}

// singleVariable is the only variable form the public API uses: {name} or
// {name=*}, one path segment.
var singleVariable = regexp.MustCompile(`^\{[A-Za-z_][A-Za-z0-9_.]*(=\*)?\}$`)

// newRouteTable reads the HTTP rules of every method of services. A template
// it cannot read (a multi-segment variable, a ** wildcard) is an error
// rather than a route left out, so Allow can never silently go wrong.
func newRouteTable(services []protoreflect.ServiceDescriptor) (routeTable, error) {
	var t routeTable
	for b := range httprule.All(services) {
		rt, err := parseTemplate(b.Verb, b.Path)
		if err != nil {
			return nil, fmt.Errorf("route of %s: %w", b.Method.FullName(), err)
		}
		t = append(t, rt)
	}
	return t, nil
}

func parseTemplate(method, template string) (route, error) {
	rest, ok := strings.CutPrefix(template, "/")
	if !ok || method == "" {
		return route{}, fmt.Errorf("%s %q is not a method and an absolute path", method, template)
	}
	rt := route{method: method}
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexAny(rest, "/}") {
		rest, rt.verb = rest[:i], rest[i+1:]
	}
	for _, s := range strings.Split(rest, "/") {
		switch {
		case singleVariable.MatchString(s):
			rt.segments = append(rt.segments, segment{variable: true})
		case s != "" && !strings.ContainsAny(s, "{}*:"):
			rt.segments = append(rt.segments, segment{literal: s})
		default:
			return route{}, fmt.Errorf("path template %q: segment %q is not a literal or a one-segment variable", template, s)
		}
	}
	return rt, nil
}

// allowed returns the Allow header for path: the methods of the routes that
// match it, sorted, comma-separated. It matches as grpc-gateway's mux does
// by default: on the decoded path split at '/', a variable taking any one
// segment, and a route with a custom verb only a last segment that ends in
// ":verb" after something.
func (t routeTable) allowed(path string) string {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	var methods []string
	for _, rt := range t {
		if rt.matches(parts) && !slices.Contains(methods, rt.method) {
			methods = append(methods, rt.method)
		}
	}
	slices.Sort(methods)
	return strings.Join(methods, ", ")
}

func (rt route) matches(parts []string) bool {
	if len(parts) != len(rt.segments) {
		return false
	}
	if rt.verb != "" {
		n := len(parts) - 1
		last, ok := strings.CutSuffix(parts[n], ":"+rt.verb)
		if !ok || last == "" {
			return false
		}
		parts = append(parts[:n:n], last)
	}
	for i, s := range rt.segments {
		if !s.variable && parts[i] != s.literal {
			return false
		}
	}
	return true
}
