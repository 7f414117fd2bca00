package grpcserver_test

import (
	"testing"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
)

// TestViolationsNameTheJSONField: a request refused by its validation rules
// names the field as clients send it, lowerCamelCase with its index
// ("accountIds[1]", not "account_ids[1]"), so the problem document a client
// reads points into its own JSON.
func TestViolationsNameTheJSONField(t *testing.T) {
	h := newHarness(t)
	ledger := transactionsv1.NewLedgerServiceClient(h.env.Dial(t, "accounts", h.addr, "accounts"))
	_, err := ledger.GetBalances(ctxAs(t, ""), &transactionsv1.GetBalancesRequest{AccountIds: []string{aliceAcct, "not-a-uuid"}})
	e, ok := errs.As(err)
	if !ok || e.Kind != errs.Invalid || len(e.Violations) != 1 || e.Violations[0].Field != "accountIds[1]" {
		t.Fatalf("GetBalances(second id not a uuid) = %+v, want one violation on accountIds[1]", err)
	}
}
