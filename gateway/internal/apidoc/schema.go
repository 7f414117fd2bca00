package apidoc

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// int64Note is how every 64-bit integer field reads: protojson writes
// them as strings, so that JavaScript clients keep every digit.
const int64Note = "A 64-bit integer written as a decimal string (a JSON number is accepted too)."

// messageSchema returns the object schema of md. omit names the fields a
// request body may not carry (path and header fields); in a request the
// schema is closed (the gateway refuses unknown fields) and required lists
// the fields whose absence fails validation, in a response it lists every
// field the gateway always writes.
func (g *generator) messageSchema(md protoreflect.MessageDescriptor, request bool, omit map[protoreflect.Name]bool) (*Schema, error) {
	s := &Schema{Type: "object", Description: g.comment(md), Properties: map[string]*Schema{}}
	if request {
		s.AdditionalProperties = false
	}
	var required map[protoreflect.Name]bool
	if request {
		var err error
		if required, err = requiredFields(md); err != nil {
			return nil, err
		}
	}
	for _, cel := range messageRules(md) {
		s.Description = join(s.Description, "Rule: "+cel+".")
	}
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if omit[f.Name()] {
			continue
		}
		fs, err := g.fieldSchema(f, request)
		if err != nil {
			return nil, err
		}
		s.Properties[f.JSONName()] = fs
		if (request && required[f.Name()]) || (!request && !f.HasOptionalKeyword()) {
			s.Required = append(s.Required, f.JSONName())
		}
	}
	return s, nil
}

// fieldSchema returns the schema of one field: its type, its comment, and,
// in a request, the protovalidate rules the service applies to it; in a
// response, what the outputs table adds.
func (g *generator) fieldSchema(f protoreflect.FieldDescriptor, request bool) (*Schema, error) {
	var rules *validate.FieldRules
	if request {
		rules, _ = proto.GetExtension(f.Options(), validate.E_Field).(*validate.FieldRules)
	}
	elem, err := g.typeSchema(f)
	if err != nil {
		return nil, err
	}
	if f.IsMap() {
		if rules != nil && rules.WhichType() != validate.FieldRules_Type_not_set_case {
			return nil, fmt.Errorf("%s: map rules have no OpenAPI form here", f.FullName())
		}
		return &Schema{Type: "object", Description: g.comment(f), AdditionalProperties: elem}, nil
	}
	s := elem
	if f.IsList() {
		s = &Schema{Type: "array", Items: elem}
	}
	if elem.Ref != "" && !f.IsList() {
		// A $ref takes no siblings in OpenAPI 3.0: describe the field with
		// the referenced schema's own comment instead.
		return s, nil
	}
	s.Description = join(g.comment(f), s.Description)
	if f.IsList() {
		elem.Description = ""
	}
	if request {
		if err := applyFieldRules(s, f, rules); err != nil {
			return nil, err
		}
	} else if out, ok := outputs[f.FullName()]; ok {
		target := s
		if f.IsList() {
			target = elem
		}
		target.Enum, target.Format, target.Pattern = out.Enum, cmp.Or(out.Format, target.Format), cmp.Or(out.Pattern, target.Pattern)
	}
	return s, nil
}

// typeSchema is the JSON type of one value of f, as protojson writes it.
func (g *generator) typeSchema(f protoreflect.FieldDescriptor) (*Schema, error) {
	if f.IsMap() {
		f = f.MapValue()
	}
	switch f.Kind() {
	case protoreflect.StringKind:
		return &Schema{Type: "string"}, nil
	case protoreflect.BoolKind:
		return &Schema{Type: "boolean"}, nil
	case protoreflect.BytesKind:
		return &Schema{Type: "string", Format: "byte"}, nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return &Schema{Type: "integer", Format: "int32"}, nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return &Schema{Type: "integer", Format: "int64", Minimum: "0"}, nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return &Schema{Type: "string", Format: "int64", Pattern: `^-?[0-9]+$`, Description: int64Note}, nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return &Schema{Type: "string", Format: "uint64", Pattern: `^[0-9]+$`, Description: int64Note}, nil
	case protoreflect.FloatKind:
		return &Schema{Type: "number", Format: "float"}, nil
	case protoreflect.DoubleKind:
		return &Schema{Type: "number", Format: "double"}, nil
	case protoreflect.EnumKind:
		var names []any
		values := f.Enum().Values()
		for i := range values.Len() {
			names = append(names, string(values.Get(i).Name()))
		}
		return &Schema{Type: "string", Enum: names}, nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if f.Message().FullName() == "google.protobuf.Timestamp" {
			return &Schema{Type: "string", Format: "date-time", Description: "An RFC 3339 time in UTC."}, nil
		}
		if f.Message().FullName().Parent() == "google.protobuf" {
			return nil, fmt.Errorf("%s: well-known type %s has no schema here yet", f.FullName(), f.Message().FullName())
		}
		name, err := g.component(f.Message())
		if err != nil {
			return nil, err
		}
		return ref(name), nil
	}
	return nil, fmt.Errorf("%s: kind %v has no schema", f.FullName(), f.Kind())
}

// applyFieldRules writes f's protovalidate rules into s (into s.Items for
// the rules of a repeated field's items). A rule without an OpenAPI form
// is an error, so that no rule the service applies goes unpublished.
func applyFieldRules(s *Schema, f protoreflect.FieldDescriptor, rules *validate.FieldRules) error {
	if rules == nil {
		return nil
	}
	for _, r := range rules.GetCel() {
		s.Description = join(s.Description, "Rule: "+r.GetMessage()+".")
	}
	if len(rules.GetCelExpression()) > 0 {
		return fmt.Errorf("%s: cel_expression rules have no message to publish; use cel with a message", f.FullName())
	}
	typed := typeRules(rules)
	if typed == nil {
		return nil
	}
	if rep, ok := typed.Interface().(*validate.RepeatedRules); ok {
		if err := applyRules(s, f, rep.ProtoReflect()); err != nil {
			return err
		}
		if items := rep.GetItems(); items != nil {
			return applyFieldRules(s.Items, f, items)
		}
		return nil
	}
	return applyRules(s, f, typed)
}

// typeRules returns the set member of FieldRules' type oneof, if any.
func typeRules(rules *validate.FieldRules) protoreflect.Message {
	m := rules.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("type")
	fd := m.WhichOneof(od)
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message()
}

// applyRules maps each set rule of one type's rules message (StringRules,
// Int64Rules, RepeatedRules …) onto s.
func applyRules(s *Schema, f protoreflect.FieldDescriptor, typed protoreflect.Message) error {
	var problems []error
	typed.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if err := applyRule(s, string(fd.Name()), v); err != nil {
			problems = append(problems, fmt.Errorf("%s: rule %s.%s: %w", f.FullName(), typed.Descriptor().Name(), fd.Name(), err))
		}
		return true
	})
	return errors.Join(problems...)
}

func applyRule(s *Schema, name string, v protoreflect.Value) error {
	num := func() json.Number { return json.Number(fmt.Sprint(v.Interface())) }
	length := func() *int64 { n := int64(v.Uint()); return &n }
	switch name {
	case "min_len":
		s.MinLength = length()
	case "max_len":
		s.MaxLength = length()
	case "len":
		s.MinLength, s.MaxLength = length(), length()
	case "min_items":
		s.MinItems = length()
	case "max_items":
		s.MaxItems = length()
	case "unique":
		s.UniqueItems = v.Bool()
	case "pattern":
		s.Pattern = v.String()
	case "uuid":
		s.Format = "uuid"
	case "email":
		s.Format = "email"
	case "in":
		s.Enum = nil
		list := v.List()
		for i := range list.Len() {
			s.Enum = append(s.Enum, enumValue(s, list.Get(i)))
		}
	case "gt", "gte":
		s.Minimum, s.ExclusiveMinimum = num(), name == "gt"
		if s.Type == "string" && s.Minimum[0] != '-' {
			s.Pattern = `^[0-9]+$` // a signed decimal string with a lower bound ≥ 0 has no sign
		}
	case "lt", "lte":
		s.Maximum, s.ExclusiveMaximum = num(), name == "lt"
	case "const":
		s.Enum = []any{enumValue(s, v)}
	case "items":
		// RepeatedRules.items: applied to the items' schema by applyFieldRules.
	case "example":
		list := v.List()
		if list.Len() > 0 {
			s.Example = enumValue(s, list.Get(0))
		}
	default:
		return errors.New("no OpenAPI form for it in gateway/internal/apidoc")
	}
	return nil
}

// enumValue is v as the JSON the schema describes: 64-bit integers are
// strings, everything else its natural JSON value.
func enumValue(s *Schema, v protoreflect.Value) any {
	if s.Type == "string" {
		return fmt.Sprint(v.Interface())
	}
	return v.Interface()
}

// requiredFields runs the service's own validator on the empty request:
// a field is required exactly when leaving it out (its zero value, which
// is what protojson makes of an absent field) fails its rules. That
// covers min_len, uuid, email, in, gt and min_items alike, and respects
// ignore: IGNORE_IF_ZERO_VALUE, with no second reading of the rules.
func requiredFields(md protoreflect.MessageDescriptor) (map[protoreflect.Name]bool, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", md.FullName(), err)
	}
	required := map[protoreflect.Name]bool{}
	err = protovalidate.Validate(mt.New().Interface())
	var ve *protovalidate.ValidationError
	switch {
	case err == nil:
		return required, nil
	case !errors.As(err, &ve):
		return nil, fmt.Errorf("%s: validate the empty message: %w", md.FullName(), err)
	}
	for _, v := range ve.Violations {
		if el := v.Proto.GetField().GetElements(); len(el) > 0 {
			required[protoreflect.Name(el[0].GetFieldName())] = true
		}
	}
	return required, nil
}

// messageRules returns the messages of md's message-level CEL rules.
func messageRules(md protoreflect.MessageDescriptor) []string {
	rules, _ := proto.GetExtension(md.Options(), validate.E_Message).(*validate.MessageRules)
	var out []string
	for _, r := range rules.GetCel() {
		out = append(out, r.GetMessage())
	}
	return out
}

// join joins two descriptions with a blank-free space.
func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

// firstSentence is the summary of a comment: up to its first full stop.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}
