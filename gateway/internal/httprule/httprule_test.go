package httprule_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/gateway/internal/httprule"
)

func TestBindings(t *testing.T) {
	t.Parallel()
	accounts := accountsv1.File_bank_accounts_v1_accounts_proto.Services().ByName("AccountsService")
	txs := transactionsv1.File_bank_transactions_v1_transactions_proto.Services().ByName("TransactionsService")
	ledger := transactionsv1.File_bank_transactions_v1_transactions_proto.Services().ByName("LedgerService")
	tests := []struct {
		md        protoreflect.MethodDescriptor
		verb      string
		path      string
		variables []string
		ok        bool
	}{
		{accounts.Methods().ByName("FreezeAccount"), "POST", "/v1/accounts/{account_id}:freeze", []string{"account_id"}, true},
		{accounts.Methods().ByName("ListAccounts"), "GET", "/v1/accounts", nil, true},
		{txs.Methods().ByName("ListTransactions"), "GET", "/v1/accounts/{account_id}/transactions", []string{"account_id"}, true},
		{ledger.Methods().ByName("GetBalances"), "", "", nil, false}, // internal: no route
	}
	for _, tt := range tests {
		b, ok := httprule.Of(tt.md)
		if ok != tt.ok || b.Verb != tt.verb || b.Path != tt.path || !slices.Equal(b.Variables(), tt.variables) {
			t.Errorf("Of(%s) = %s %s %v, %v; want %s %s %v, %v", tt.md.FullName(), b.Verb, b.Path, b.Variables(), ok, tt.verb, tt.path, tt.variables, tt.ok)
		}
	}
	freeze, _ := httprule.Of(accounts.Methods().ByName("FreezeAccount"))
	if got := freeze.MapVariables(func(f string) string { return "{" + strings.ToUpper(f) + "}" }); got != "/v1/accounts/{ACCOUNT_ID}:freeze" {
		t.Errorf("MapVariables = %q, want the variable replaced and the rest kept", got)
	}
	n := 0
	for b := range httprule.All([]protoreflect.ServiceDescriptor{accounts, ledger}) {
		if b.Method.Parent() != accounts {
			t.Errorf("All yielded %s, which has no route", b.Method.FullName())
		}
		n++
	}
	if n != accounts.Methods().Len() {
		t.Errorf("All yielded %d bindings, want one per AccountsService method (%d)", n, accounts.Methods().Len())
	}
}
