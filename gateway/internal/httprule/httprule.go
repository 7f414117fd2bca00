// Package httprule reads the routes the gateway serves from the google.api.http
// rules in the services' descriptors. The router's Allow table, the body
// shapes, the query-parameter rule and the OpenAPI document all read them
// through here, so they can never disagree on what a rule means.
package httprule

import (
	"iter"
	"net/http"
	"regexp"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Binding is one route of one method: its HTTP method and path template,
// and the rule it comes from.
type Binding struct {
	Method protoreflect.MethodDescriptor
	Rule   *annotations.HttpRule
	Verb   string // GET, POST, …
	Path   string // the template, e.g. /v1/accounts/{account_id}:freeze
}

// Rule returns md's HTTP rule, or nil for a method without a route.
func Rule(md protoreflect.MethodDescriptor) *annotations.HttpRule {
	r, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	return r
}

// Of returns the binding of md's rule (not its additional bindings), and
// false for a method without a route.
func Of(md protoreflect.MethodDescriptor) (Binding, bool) {
	r := Rule(md)
	if r == nil {
		return Binding{}, false
	}
	verb, path := verbAndPath(r)
	return Binding{Method: md, Rule: r, Verb: verb, Path: path}, true
}

// All yields every binding of every method of services: each rule and its
// additional bindings, the routes grpc-gateway generated handlers for.
func All(services []protoreflect.ServiceDescriptor) iter.Seq[Binding] {
	return func(yield func(Binding) bool) {
		for _, sd := range services {
			for i := range sd.Methods().Len() {
				md := sd.Methods().Get(i)
				r := Rule(md)
				if r == nil {
					continue
				}
				for _, b := range append([]*annotations.HttpRule{r}, r.GetAdditionalBindings()...) {
					verb, path := verbAndPath(b)
					if !yield(Binding{Method: md, Rule: b, Verb: verb, Path: path}) {
						return
					}
				}
			}
		}
	}
}

func verbAndPath(r *annotations.HttpRule) (verb, path string) {
	switch {
	case r.GetGet() != "":
		return http.MethodGet, r.GetGet()
	case r.GetPost() != "":
		return http.MethodPost, r.GetPost()
	case r.GetPut() != "":
		return http.MethodPut, r.GetPut()
	case r.GetPatch() != "":
		return http.MethodPatch, r.GetPatch()
	case r.GetDelete() != "":
		return http.MethodDelete, r.GetDelete()
	default:
		return r.GetCustom().GetKind(), r.GetCustom().GetPath()
	}
}

// variable matches one variable of a path template: {field} or
// {field=pattern}, with a field path of proto names.
var variable = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_.]*)(=[^}]*)?\}`)

// Variables returns the field paths a template binds, in order.
func (b Binding) Variables() []string {
	var out []string
	for _, m := range variable.FindAllStringSubmatch(b.Path, -1) {
		out = append(out, m[1])
	}
	return out
}

// MapVariables returns the template with each variable replaced by what
// fn returns for its field path.
func (b Binding) MapVariables(fn func(field string) string) string {
	return variable.ReplaceAllStringFunc(b.Path, func(v string) string {
		return fn(variable.FindStringSubmatch(v)[1])
	})
}
