package server

import (
	"encoding/json"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/gateway/internal/httprule"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
)

// bodyShapes holds, per request message of a public route, the fields a
// client may not send in the JSON body although the message has them: the
// ones bound from the path (accountId of …:freeze) and the one filled from
// a header (idempotencyKey). docs/api.md's body shapes leave them out, and
// "unknown fields are rejected", so a body naming one is a 400 rather than
// a value silently replaced.
//
// The check also holds clients to the lowerCamelCase names of docs/api.md:
// protojson would accept a field's proto name too (display_name), a second
// spelling no client was promised and no test of the contract would cover.
type bodyShapes map[protoreflect.FullName]map[string]bool

// newBodyShapes reads the HTTP rule of every method of services.
func newBodyShapes(services []protoreflect.ServiceDescriptor) bodyShapes {
	shapes := bodyShapes{}
	for b := range httprule.All(services) {
		in := b.Method.Input()
		notInBody := shapes[in.FullName()]
		if notInBody == nil {
			notInBody = map[string]bool{}
			shapes[in.FullName()] = notInBody
		}
		if f := in.Fields().ByName(policy.IdempotencyField); f != nil {
			notInBody[f.JSONName()] = true
		}
		for _, v := range b.Variables() {
			if f := in.Fields().ByName(protoreflect.Name(v)); f != nil {
				notInBody[f.JSONName()] = true
			}
		}
	}
	return shapes
}

// check reports whether every member name of the JSON object data (already
// parsed by protojson, so well formed) is a lowerCamelCase field name of md
// that may appear in a body; nested messages are checked the same way.
func (s bodyShapes) check(md protoreflect.MessageDescriptor, data []byte) bool {
	if md.FullName().Parent() == "google.protobuf" {
		return true // a well-known type's JSON is not an object of field names
	}
	return checkNames(md, s[md.FullName()], data)
}

func checkNames(md protoreflect.MessageDescriptor, notInBody map[string]bool, data []byte) bool {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return false
	}
	fields := md.Fields()
	for name, raw := range obj {
		f := fields.ByJSONName(name)
		if f == nil || notInBody[name] {
			return false
		}
		if !checkNested(f, raw) {
			return false
		}
	}
	return true
}

// checkNested checks the names inside a message-typed field. Well-known
// types have JSON forms of their own (a Timestamp is a string) and are left
// to protojson, as are maps, whose keys are data rather than names.
func checkNested(f protoreflect.FieldDescriptor, raw json.RawMessage) bool {
	if f.Message() == nil || f.IsMap() || f.Message().FullName().Parent() == "google.protobuf" || string(raw) == "null" {
		return true
	}
	if !f.IsList() {
		return checkNames(f.Message(), nil, raw)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return false
	}
	for _, it := range items {
		if !checkNames(f.Message(), nil, it) {
			return false
		}
	}
	return true
}
