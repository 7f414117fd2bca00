package grpcserver_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"

	// The API packages register their descriptors; the test walks all of them.
	_ "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	_ "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	_ "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
)

// stringSlot is one place a string can be set in a request: a path of
// fields from the request message down to a string field.
type stringSlot struct {
	path []protoreflect.FieldDescriptor
	json string
}

// stringSlots lists every string field reachable in md, nested messages
// included, to a small depth (the requests are shallow; the depth only
// guards against recursive types).
func stringSlots(md protoreflect.MessageDescriptor, prefix []protoreflect.FieldDescriptor, json string, depth int) []stringSlot {
	if depth > 4 {
		return nil
	}
	var out []stringSlot
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		path := append(append([]protoreflect.FieldDescriptor{}, prefix...), fd)
		name := fd.JSONName()
		if json != "" {
			name = json + "." + name
		}
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.StringKind {
				out = append(out, stringSlot{path, name + `["k"]`})
			}
		case fd.Kind() == protoreflect.StringKind:
			if fd.IsList() {
				name += "[0]"
			}
			out = append(out, stringSlot{path, name})
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList():
			out = append(out, stringSlots(fd.Message(), path, name, depth+1)...)
		}
	}
	return out
}

// set puts s into the slot of a new request message.
func (sl stringSlot) set(md protoreflect.MessageDescriptor, s string) *dynamicpb.Message {
	root := dynamicpb.NewMessage(md)
	m := protoreflect.Message(root)
	for _, fd := range sl.path[:len(sl.path)-1] {
		m = m.Mutable(fd).Message()
	}
	fd := sl.path[len(sl.path)-1]
	switch {
	case fd.IsMap():
		m.Mutable(fd).Map().Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfString(s))
	case fd.IsList():
		m.Mutable(fd).List().Append(protoreflect.ValueOfString(s))
	default:
		m.Set(fd, protoreflect.ValueOfString(s))
	}
	return root
}

// TestEveryStringFieldRefusesControlCharacters walks every request message
// of every bank service and every string field in it, and puts each C0
// control character an attacker reaches for (NUL first: PostgreSQL refuses
// it, and it once made a login a 500) into that one field: the request must
// be refused as Invalid, naming exactly that field, and the same request
// with plain text must pass the rule.
func TestEveryStringFieldRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	seen := 0
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "bank.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				in := sd.Methods().Get(j).Input()
				for _, slot := range stringSlots(in, nil, "", 0) {
					seen++
					if err := grpcserver.CheckText(slot.set(in, "plain text, ünïcode, ✓")); err != nil {
						t.Errorf("%s %s = plain text: CheckText = %v, want nil", in.FullName(), slot.json, err)
					}
					for _, bad := range []string{"a\x00b", "\x00", "line\nbreak", "tab\there", "\x1b[31m", "cr\r", "\x1f"} {
						err := grpcserver.CheckText(slot.set(in, bad))
						e, ok := errs.As(err)
						if !ok || e.Kind != errs.Invalid || len(e.Violations) != 1 || e.Violations[0].Field != slot.json {
							t.Errorf("%s %s = %q: CheckText = %+v, want one Invalid violation on %s", in.FullName(), slot.json, bad, e, slot.json)
						}
					}
				}
			}
		}
		return true
	})
	if seen < 30 {
		t.Errorf("walked %d string fields, want every request field of the bank services (at least 30)", seen)
	}
}
