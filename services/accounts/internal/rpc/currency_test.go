package rpc

import (
	"slices"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// The proto's `in` rule (checked by the platform before a handler runs) and
// the domain's currency table (which knows the minor units) must list the
// same currencies, or an account could be opened in a currency the domain
// cannot format, or a supported currency refused at the door.
func TestProtoCurrenciesMatchDomain(t *testing.T) {
	t.Parallel()
	field := (&accountsv1.OpenAccountRequest{}).ProtoReflect().Descriptor().Fields().ByName("currency")
	opts, ok := field.Options().(*descriptorpb.FieldOptions)
	if !ok || !proto.HasExtension(opts, validate.E_Field) {
		t.Fatal("OpenAccountRequest.currency has no buf.validate.field rule")
	}
	rules, _ := proto.GetExtension(opts, validate.E_Field).(*validate.FieldRules)
	fromProto := rules.GetString().GetIn()
	var fromDomain []string
	for _, c := range domain.Currencies() {
		fromDomain = append(fromDomain, c.Code)
	}
	if len(fromProto) == 0 || !slices.Equal(fromProto, fromDomain) {
		t.Errorf("proto currencies = %v, domain currencies = %v; want the same list in the same order", fromProto, fromDomain)
	}
}
