// Package apidoc builds the OpenAPI 3.0 document of the gateway's public
// routes from the same descriptors the gateway routes and polices with
// (server.PublicServices), so the document cannot list a route the gateway
// does not serve, or miss one it does:
//
//   - paths, methods and parameters from each RPC's google.api.http rule,
//     with the query parameters policy.QueryNames admits and the
//     Idempotency-Key header wherever the request has policy.IdempotencyField;
//   - security and x-bastion-access from the RPC's bank.authz.v1.access rule
//     (public routes need no token; roles and ownership are described);
//   - schemas from the messages as protojson writes them (lowerCamelCase,
//     64-bit integers as strings, timestamps as RFC 3339), with the
//     protovalidate rules of requests as required, enum, format, length,
//     range and pattern, and the outputs table for responses;
//   - every error status the route can answer (edgeOutcomes and
//     serviceOutcomes), each an application/problem+json Problem;
//   - descriptions from the proto comments, read from a descriptor set
//     that carries source info (the generated Go code has none).
//
// `make gen` runs it through gateway/cmd/apidoc after buf has regenerated
// the Go code, so the document always matches the protos of the same run.
package apidoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	authzv1 "github.com/bastion-bank/bastion/proto/bank/authz/v1"

	"github.com/bastion-bank/bastion/gateway/internal/httprule"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// IdempotencyHeader is the header the gateway copies into the request's
// policy.IdempotencyField.
const IdempotencyHeader = "Idempotency-Key"

// bearer is the name of the security scheme.
const bearer = "bearer"

const description = `The public REST surface of the Bastion reference bank: HTTPS only, JSON bodies of at most 64 KiB.

- Field names are lowerCamelCase; 64-bit integers (amounts) are decimal strings, and numbers are accepted too.
- A body or query string naming a field the operation does not take is refused (400), and so is any string holding a C0 control character.
- Every error is application/problem+json (RFC 9457); every response carries X-Request-Id.
- Authenticate with Authorization: Bearer and an access token from login or refresh; register, login, refresh and the JWKS are public.`

// Build returns the document of the routes of services. source holds the
// same proto files with their source info, for the comments; nil leaves
// every description but the generated ones empty.
func Build(services []protoreflect.ServiceDescriptor, source *protoregistry.Files) (*Document, error) {
	g := &generator{source: source, schemas: problemSchemas(), names: map[string]protoreflect.FullName{}}
	doc := &Document{
		OpenAPI:  Version,
		Info:     Info{Title: "Bastion bank API", Version: "1.0", Description: description},
		Servers:  []Server{{URL: "/"}},
		Security: []SecurityRequirement{{bearer: {}}},
		Paths:    map[string]PathItem{},
		Components: Components{
			Headers: headers(),
			SecuritySchemes: map[string]*SecurityScheme{bearer: {
				Type: "http", Scheme: "bearer", BearerFormat: "JWT",
				Description: "An access token from POST /v1/auth/login or /v1/auth/refresh, sent as Authorization: Bearer <token>.",
			}},
		},
	}
	ids := map[string]bool{}
	for _, sd := range services {
		doc.Tags = append(doc.Tags, Tag{Name: string(sd.Name()), Description: g.comment(sd)})
		methods := sd.Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			method, path, op, err := g.operation(sd, md)
			if err != nil {
				return nil, err
			}
			if op == nil {
				continue
			}
			if ids[op.OperationID] {
				return nil, fmt.Errorf("%s: operationId %s is taken by another service's method", md.FullName(), op.OperationID)
			}
			ids[op.OperationID] = true
			item := doc.Paths[path]
			if item == nil {
				item = PathItem{}
				doc.Paths[path] = item
			}
			if item[method] != nil {
				return nil, fmt.Errorf("%s: %s %s is bound twice", md.FullName(), method, path)
			}
			item[method] = op
		}
	}
	doc.Components.Schemas = g.schemas
	return doc, nil
}

// Marshal writes doc as indented JSON with a final newline: the same bytes
// for the same document, so `make gen-check` can compare.
func Marshal(doc *Document) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type generator struct {
	source  *protoregistry.Files
	schemas map[string]*Schema
	names   map[string]protoreflect.FullName // component name → the message it was made from
}

// operation returns the operation of md, or a nil one for a method the
// gateway does not route (no HTTP rule, a stream, an internal rule).
func (g *generator) operation(sd protoreflect.ServiceDescriptor, md protoreflect.MethodDescriptor) (method, path string, op *Operation, err error) {
	rule, err := rbac.RuleOf(md)
	if err != nil {
		return "", "", nil, err
	}
	b, routed := httprule.Of(md)
	hr := b.Rule
	if !routed || md.IsStreamingClient() || md.IsStreamingServer() || rule.ServiceOnly || !rule.AllowsCaller(policy.CallerName) {
		return "", "", nil, nil
	}
	if len(hr.GetAdditionalBindings()) > 0 {
		return "", "", nil, fmt.Errorf("%s: additional_bindings are not documented yet", md.FullName())
	}
	method = b.Verb
	in := md.Input()
	required, err := requiredFields(in)
	if err != nil {
		return "", "", nil, err
	}
	comment := g.comment(md)
	op = &Operation{
		OperationID: string(md.Name()),
		Tags:        []string{string(sd.Name())},
		Summary:     firstSentence(comment),
		Description: join(comment, accessText(rule)),
		Security:    []SecurityRequirement{{bearer: {}}},
		Access:      access(rule),
	}
	if rule.Public {
		op.Security = []SecurityRequirement{}
	}

	notInBody := map[protoreflect.Name]bool{}
	var badPath error
	path = b.MapVariables(func(field string) string {
		name := protoreflect.Name(field)
		f := in.Fields().ByName(name)
		if f == nil {
			badPath = fmt.Errorf("%s: path variable %s is no field of %s", md.FullName(), name, in.FullName())
			return "{" + field + "}"
		}
		notInBody[name] = true
		p, err := g.parameter(f, "path", true)
		if err != nil {
			badPath = err
		}
		op.Parameters = append(op.Parameters, p)
		return "{" + f.JSONName() + "}"
	})
	if badPath != nil {
		return "", "", nil, badPath
	}

	idem := in.Fields().ByName(policy.IdempotencyField)
	if idem != nil {
		notInBody[idem.Name()] = true
		p, err := g.parameter(idem, "header", required[idem.Name()])
		if err != nil {
			return "", "", nil, err
		}
		p.Name = IdempotencyHeader
		op.Parameters = append(op.Parameters, p)
	}

	query, _ := policy.QueryNames(md)
	fields := in.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if notInBody[f.Name()] || !slices.Contains(query, f.JSONName()) {
			continue
		}
		p, err := g.parameter(f, "query", required[f.Name()])
		if err != nil {
			return "", "", nil, err
		}
		op.Parameters = append(op.Parameters, p)
	}

	switch body := hr.GetBody(); body {
	case "":
	case "*":
		if op.RequestBody, err = g.requestBody(in, notInBody); err != nil {
			return "", "", nil, err
		}
	default:
		return "", "", nil, fmt.Errorf("%s: body %q: only \"*\" is documented yet", md.FullName(), body)
	}

	if op.Responses, err = responses(md.FullName(), route{rule: rule, hasBody: hr.GetBody() != "", idempotent: idem != nil}); err != nil {
		return "", "", nil, err
	}
	out, err := g.component(md.Output())
	if err != nil {
		return "", "", nil, err
	}
	ok := &Response{
		Description: "OK",
		Headers: map[string]*Header{
			hdrRequestID:       headerRef(hdrRequestID),
			hdrRateLimitPolicy: headerRef(hdrRateLimitPolicy),
			hdrRateLimit:       headerRef(hdrRateLimit),
		},
		Content: map[string]MediaType{"application/json": {Schema: ref(out)}},
	}
	if idem != nil {
		ok.Headers[hdrReplayed] = headerRef(hdrReplayed)
	}
	op.Responses["200"] = ok
	return strings.ToLower(method), path, op, nil
}

// parameter documents field f of a request as a path, query or header
// parameter.
func (g *generator) parameter(f protoreflect.FieldDescriptor, in string, required bool) (*Parameter, error) {
	s, err := g.fieldSchema(f, true)
	if err != nil {
		return nil, err
	}
	desc := s.Description
	s.Description = ""
	return &Parameter{Name: f.JSONName(), In: in, Description: desc, Required: required || in == "path", Schema: s}, nil
}

// requestBody documents the JSON body of a `body: "*"` route: the request
// message less the fields bound from the path and the header.
func (g *generator) requestBody(in protoreflect.MessageDescriptor, omit map[protoreflect.Name]bool) (*RequestBody, error) {
	s, err := g.messageSchema(in, true, omit)
	if err != nil {
		return nil, err
	}
	name := string(in.Name())
	if err := g.claim(name, in.FullName()); err != nil {
		return nil, err
	}
	g.schemas[name] = s
	return &RequestBody{
		// A route whose body has no required field also takes an empty body.
		Required: len(s.Required) > 0,
		Content:  map[string]MediaType{"application/json": {Schema: ref(name)}},
	}, nil
}

// component returns the name of md's response schema, adding it (and the
// messages it refers to) on first use.
func (g *generator) component(md protoreflect.MessageDescriptor) (string, error) {
	name := string(md.Name())
	if g.names[name] == md.FullName() {
		return name, nil
	}
	if err := g.claim(name, md.FullName()); err != nil {
		return "", err
	}
	s, err := g.messageSchema(md, false, nil)
	if err != nil {
		return "", err
	}
	g.schemas[name] = s
	return name, nil
}

// claim reserves a component name for message full; two messages of one
// short name in different packages would need qualified names, which no
// client should have to see until it happens.
func (g *generator) claim(name string, full protoreflect.FullName) error {
	if other, ok := g.names[name]; ok && other != full {
		return fmt.Errorf("schema name %s: both %s and %s", name, other, full)
	}
	if _, ok := g.schemas[name]; ok && g.names[name] == "" {
		return fmt.Errorf("schema name %s: %s clashes with a built-in schema", name, full)
	}
	g.names[name] = full
	return nil
}

// comment returns the leading comment of d from the source files, as one
// paragraph (proto comments wrap at 80 columns, not at sentences).
func (g *generator) comment(d protoreflect.Descriptor) string {
	if g.source == nil {
		return ""
	}
	sd, err := g.source.FindDescriptorByName(d.FullName())
	if err != nil {
		return ""
	}
	c := sd.ParentFile().SourceLocations().ByDescriptor(sd).LeadingComments
	return strings.Join(strings.Fields(c), " ")
}

// access is the x-bastion-access of rule.
func access(rule rbac.Rule) Access {
	a := Access{Public: rule.Public, Roles: rule.Roles, RateClass: rateClass(rule)}
	if rule.Owner != nil {
		a.Owner = rule.Owner.Resource
	}
	return a
}

// rateClass names the edge budget of rule as configuration does: auth,
// user, money or public.
func rateClass(rule rbac.Rule) string {
	name := authzv1.RateClass_name[int32(policy.ClassOf(rule))]
	return strings.ToLower(strings.TrimPrefix(name, "RATE_CLASS_"))
}

// accessText says in a sentence or two who may call a route.
func accessText(rule rbac.Rule) string {
	if rule.Public {
		return "Public: no token needed."
	}
	s := "Needs a bearer token with one of the roles: " + strings.Join(rule.Roles, ", ") + "."
	if o := rule.Owner; o != nil {
		s += " The caller must own the " + o.Resource
		if len(o.BypassRoles) > 0 {
			s += ", unless they are " + strings.Join(o.BypassRoles, " or ")
		}
		s += "; anyone else gets 404."
	}
	return s
}
