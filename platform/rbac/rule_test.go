package rbac_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	authzv1 "github.com/bastion-bank/bastion/proto/bank/authz/v1"

	"github.com/bastion-bank/bastion/platform/rbac"
)

// ruleMethod builds a method Do whose request has one field of each shape an
// ownership rule could name (a string, an int64, a repeated string and a
// map), carrying rule as its access option. The real .proto files only
// hold well-formed rules, so a malformed one has to be made here.
func ruleMethod(t *testing.T, rule *authzv1.AccessRule) protoreflect.MethodDescriptor {
	t.Helper()
	opts := &descriptorpb.MethodOptions{}
	proto.SetExtension(opts, authzv1.E_Access, rule)
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(n), Type: typ.Enum(), Label: label.Enum()}
	}
	const (
		str      = descriptorpb.FieldDescriptorProto_TYPE_STRING
		optional = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		repeated = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	)
	tags := field("tags", 4, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, repeated)
	tags.TypeName = proto.String(".bank.rbactest.v1.Req.TagsEntry")
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("bank/rbactest/v1/rule.proto"),
		Package: proto.String("bank.rbactest.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Req"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("account_id", 1, str, optional),
				field("count", 2, descriptorpb.FieldDescriptorProto_TYPE_INT64, optional),
				field("ids", 3, str, repeated),
				tags,
			},
			NestedType: []*descriptorpb.DescriptorProto{{
				Name:    proto.String("TagsEntry"),
				Field:   []*descriptorpb.FieldDescriptorProto{field("key", 1, str, optional), field("value", 2, str, optional)},
				Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
			}},
		}, {Name: proto.String("Resp")}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("Svc"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name: proto.String("Do"), InputType: proto.String(".bank.rbactest.v1.Req"),
				OutputType: proto.String(".bank.rbactest.v1.Resp"), Options: opts,
			}},
		}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("build descriptor: %v", err)
	}
	return fd.Services().Get(0).Methods().Get(0)
}

// TestRuleOfRefusesMalformedRules: a typo in a rule fails at start-up with
// an error naming what is wrong, never a rule that opens the RPC (and never
// a panic). The ownership field in particular must be a single string: the
// id handed to the owner resolver is read from it.
func TestRuleOfRefusesMalformedRules(t *testing.T) {
	t.Parallel()
	user := []authzv1.Role{authzv1.Role_ROLE_USER}
	owned := func(field string) *authzv1.AccessRule {
		return &authzv1.AccessRule{Roles: user, Owner: &authzv1.Ownership{Resource: "account", Field: field}}
	}
	tests := []struct {
		name string
		rule *authzv1.AccessRule
		want string // in the error; "" for a rule that is well formed
	}{
		{"ownership by a string field", owned("account_id"), ""},
		{"ownership field missing", owned("acount_id"), `ownership field "acount_id" is not a string field`},
		{"ownership field not a string", owned("count"), `ownership field "count" is not a string field`},
		{"ownership field a list", owned("ids"), `ownership field "ids" is not a string field`},
		{"ownership field a map", owned("tags"), `ownership field "tags" is not a string field`},
		{"ownership naming no resource", &authzv1.AccessRule{Roles: user, Owner: &authzv1.Ownership{Field: "account_id"}}, "names no resource"},
		{"ownership without roles", &authzv1.AccessRule{Public: true, Owner: &authzv1.Ownership{Resource: "account", Field: "account_id"}}, "needs roles"},
		{"no kind at all", &authzv1.AccessRule{}, "exactly one of"},
		{"public and roles", &authzv1.AccessRule{Public: true, Roles: user}, "exactly one of"},
		{"service_only naming no callers", &authzv1.AccessRule{ServiceOnly: true}, "names no callers"},
		{"a bad caller name", &authzv1.AccessRule{ServiceOnly: true, Callers: []string{"Accounts"}}, `bad caller name "Accounts"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md := ruleMethod(t, tt.rule)
			r, err := rbac.RuleOf(md)
			if tt.want == "" {
				if err != nil || r.Owner == nil || r.Owner.Field != tt.rule.GetOwner().GetField() {
					t.Errorf("RuleOf(%v) = %+v, %v, want the rule", tt.rule, r, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RuleOf(%v) = %v, want an error containing %q", tt.rule, err, tt.want)
			}
		})
	}
}

// TestRuleForRefusesMalformedNames: a name that is not "/service/method" is
// refused as malformed before the registry is asked, whatever the registry
// happens to hold.
func TestRuleForRefusesMalformedNames(t *testing.T) {
	t.Parallel()
	for _, m := range []string{
		"",
		"bank.accounts.v1.AccountsService/GetAccount",
		"/bank.accounts.v1.AccountsService",
		"//GetAccount",
		"/bank.accounts.v1.AccountsService/",
		"/bank.accounts.v1.AccountsService/GetAccount/x",
	} {
		if _, err := rbac.RuleFor(m); err == nil || !strings.Contains(err.Error(), "malformed method name") {
			t.Errorf("RuleFor(%q) = %v, want a malformed method name", m, err)
		}
	}
}
