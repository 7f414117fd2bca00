package rbac_test

import (
	"strings"
	"testing"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/bastion-bank/bastion/platform/rbac"

	// The API packages register their descriptors; the test walks all of them.
	_ "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	_ "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	_ "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
)

// bankServices returns every service registered under the bank.* packages.
func bankServices(t *testing.T) []protoreflect.ServiceDescriptor {
	t.Helper()
	var out []protoreflect.ServiceDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "bank.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			out = append(out, fd.Services().Get(i))
		}
		return true
	})
	if len(out) < 5 {
		t.Fatalf("found %d bank services, want at least 5 (auth, revocation, accounts, transactions, ledger)", len(out))
	}
	return out
}

// TestEveryRPCHasAnAccessRule walks every registered service descriptor and
// fails if any RPC lacks a well-formed access rule: an RPC without one would
// be denied at run time, but it must never reach main in the first place.
func TestEveryRPCHasAnAccessRule(t *testing.T) {
	for _, sd := range bankServices(t) {
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i)
			t.Run(string(md.FullName()), func(t *testing.T) {
				r, err := rbac.RuleOf(md)
				if err != nil {
					t.Fatalf("RuleOf(%s) = %v, want a rule", md.FullName(), err)
				}
				if r.ServiceOnly && hasHTTPRule(md) {
					t.Errorf("%s is service_only but has an HTTP mapping", md.FullName())
				}
				if !r.ServiceOnly && !hasHTTPRule(md) {
					t.Errorf("%s has no HTTP mapping, so it must be service_only", md.FullName())
				}
			})
		}
	}
}

// TestEveryRequestFieldIsValidated fails if a request message field has no
// protovalidate rule: input rules live in the .proto, next to the field.
func TestEveryRequestFieldIsValidated(t *testing.T) {
	for _, sd := range bankServices(t) {
		for i := 0; i < sd.Methods().Len(); i++ {
			in := sd.Methods().Get(i).Input()
			for j := 0; j < in.Fields().Len(); j++ {
				f := in.Fields().Get(j)
				rules, _ := proto.GetExtension(f.Options(), validatepb.E_Field).(*validatepb.FieldRules)
				if rules == nil || rules.GetType() == nil && len(rules.GetCel()) == 0 && !rules.GetRequired() {
					t.Errorf("%s has no validation rule", f.FullName())
				}
			}
		}
	}
}

func hasHTTPRule(md protoreflect.MethodDescriptor) bool {
	found := false
	md.Options().ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if fd.FullName() == "google.api.http" {
			found = true
		}
		return !found
	})
	return found
}
