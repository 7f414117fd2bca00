package grpcserver

import (
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/platform/errs"
)

// ReasonControlChar labels the validation counter when a string field holds
// a C0 control character.
const ReasonControlChar = "string.no_control_chars"

// CheckText refuses a request in which any string, at any depth (lists and
// map keys and values included), holds a C0 control character (U+0000 to
// U+001F): NUL, which PostgreSQL refuses in text and once turned a login
// into a 500, and the others, which split log lines and forge headers
// downstream. It is one rule for every field of every RPC, run by the chain
// before the per-field protovalidate rules; no field is exempt. It returns
// an Invalid error with one violation per offending field, named as clients
// name it, or nil.
func CheckText(msg proto.Message) error {
	var out []errs.Violation
	walkStrings(msg.ProtoReflect(), "", func(path, s string) {
		if hasControl(s) {
			out = append(out, errs.Violation{Field: path, Message: "must not contain control characters"})
		}
	})
	if len(out) == 0 {
		return nil
	}
	return &errs.Error{Kind: errs.Invalid, Msg: "invalid request", Violations: out}
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 }) >= 0
}

// walkStrings calls visit with the JSON path and value of every string set
// in m.
func walkStrings(m protoreflect.Message, prefix string, visit func(path, s string)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := fd.JSONName()
		if prefix != "" {
			path = prefix + "." + path
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				walkValue(fd, l.Get(i), path+"["+strconv.Itoa(i)+"]", visit)
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				key := k.String()
				if hasControl(key) {
					visit(path, key)
				}
				walkValue(fd.MapValue(), mv, path+"["+strconv.Quote(key)+"]", visit)
				return true
			})
		default:
			walkValue(fd, v, path, visit)
		}
		return true
	})
}

func walkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string, visit func(path, s string)) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		visit(path, v.String())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		walkStrings(v.Message(), path, visit)
	}
}
