package policy

import (
	"slices"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
)

func method(sd protoreflect.ServiceDescriptor, name string) protoreflect.MethodDescriptor {
	return sd.Methods().ByName(protoreflect.Name(name))
}

func TestQueryNames(t *testing.T) {
	t.Parallel()
	accounts := accountsv1.File_bank_accounts_v1_accounts_proto.Services().ByName("AccountsService")
	txs := transactionsv1.File_bank_transactions_v1_transactions_proto.Services().ByName("TransactionsService")
	ledger := transactionsv1.File_bank_transactions_v1_transactions_proto.Services().ByName("LedgerService")
	tests := []struct {
		md   protoreflect.MethodDescriptor
		want []string
		ok   bool
	}{
		{method(accounts, "OpenAccount"), nil, true}, // body "*": nothing in the query
		{method(txs, "CreateTransfer"), nil, true},   // the idempotency key is a header, never a parameter
		{method(accounts, "GetAccount"), nil, true},  // the only field is in the path
		{method(accounts, "ListAccounts"), []string{"ownerId", "owner_id", "pageSize", "pageToken", "page_size", "page_token"}, true},
		{method(txs, "ListTransactions"), []string{"pageSize", "pageToken", "page_size", "page_token"}, true},
		{method(ledger, "GetBalances"), nil, false}, // internal: no route
	}
	for _, tt := range tests {
		got, ok := QueryNames(tt.md)
		if !slices.Equal(got, tt.want) || ok != tt.ok {
			t.Errorf("QueryNames(%s) = %v, %v, want %v, %v", tt.md.FullName(), got, ok, tt.want, tt.ok)
		}
	}
}

// TestQueryNamesSkipsEveryPathVariable: a route with two path variables
// takes neither in its query (no route of docs/api.md has two yet; the first to
// would otherwise accept its second id twice, from the path and the query).
func TestQueryNamesSkipsEveryPathVariable(t *testing.T) {
	t.Parallel()
	opts := &descriptorpb.MethodOptions{}
	proto.SetExtension(opts, annotations.E_Http, &annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: "/v1/accounts/{account_id}/entries/{entry_id=*}"}})
	str := func(name string, n int32) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n),
			Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("policytest/v1/paths.proto"), Package: proto.String("policytest.v1"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Req"), Field: []*descriptorpb.FieldDescriptorProto{str("account_id", 1), str("entry_id", 2), str("page_token", 3)}},
			{Name: proto.String("Resp")},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Svc"), Method: []*descriptorpb.MethodDescriptorProto{{
			Name: proto.String("Get"), InputType: proto.String(".policytest.v1.Req"), OutputType: proto.String(".policytest.v1.Resp"), Options: opts,
		}}}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Services().Get(0).Methods().Get(0)
	if got, ok := QueryNames(md); !slices.Equal(got, []string{"pageToken", "page_token"}) || !ok {
		t.Errorf("QueryNames(%s) = %v, %v, want [pageToken page_token], true", md.FullName(), got, ok)
	}
}

func TestCheckQuery(t *testing.T) {
	t.Parallel()
	list := []string{"pageSize", "page_size"}
	tests := []struct {
		name, raw string
		allowed   []string
		field     string // the violation; "" for none; "-" for an error without one
	}{
		{"no query", "", nil, ""},
		{"a known parameter", "pageSize=3", list, ""},
		{"its proto spelling", "page_size=3", list, ""},
		{"an unknown one", "pageSize=3&ownerId=x", list, "ownerId"},
		{"any parameter on a body route", "ownerId=x", nil, "ownerId"},
		{"a bare flag", "debug", nil, "debug"},
		{"an empty name", "=x", nil, "-"},
		{"a name with control characters", "a%0Ab=1", nil, "ab"},
		{"a name with a space, which is printable", "a+b=1", nil, "a b"},
		{"a bad escape", "a=%zz", list, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkQuery(tt.raw, tt.allowed)
			e, _ := errs.As(err)
			switch tt.field {
			case "":
				if err != nil {
					t.Errorf("checkQuery(%q) = %v, want nil", tt.raw, err)
				}
			case "-":
				if errs.KindOf(err) != errs.Invalid {
					t.Errorf("checkQuery(%q) = %v, want Invalid", tt.raw, err)
				}
			default:
				if e == nil || e.Kind != errs.Invalid || len(e.Violations) != 1 || e.Violations[0].Field != tt.field {
					t.Errorf("checkQuery(%q) = %+v, want one violation on %q", tt.raw, e, tt.field)
				}
			}
		})
	}
}
