package policy_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// TestEdgeRefusesStaffOperationsWithoutACode: the edge applies the same
// staff-MFA rule as the services (rbac.Rule.CheckMFA) before anything goes
// upstream, and BANK_STAFF_MFA=off lifts it.
func TestEdgeRefusesStaffOperationsWithoutACode(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	password := env.TokenAMR(t, userID, []string{identity.AMRPassword}, "manager", "user")
	withCode := env.Token(t, userID, "manager", "user")
	deposit := "/bank.transactions.v1.TransactionsService/CreateDeposit"
	list := "/bank.accounts.v1.AccountsService/ListAccounts"
	depositReq := func() proto.Message { return &transactionsv1.CreateDepositRequest{AccountId: userID} }
	tests := []struct {
		name   string
		policy rbac.MFAPolicy
		tok    string
		method string
		req    proto.Message
		denied bool
	}{
		{"deposit, password only", rbac.MFARequired, password, deposit, depositReq(), true},
		{"deposit, with a code", rbac.MFARequired, withCode, deposit, depositReq(), false},
		{"deposit, password only, staff MFA off", rbac.MFAOff, password, deposit, depositReq(), false},
		{"list by owner, password only", rbac.MFARequired, password, list, &accountsv1.ListAccountsRequest{OwnerId: userID}, true},
		{"list own accounts, password only", rbac.MFARequired, password, list, &accountsv1.ListAccountsRequest{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cnt := &counting{}
			p, err := policy.New(policy.Config{Verifier: env.Verifier, Limiter: ratelimit.NewMemory(time.Now, 0), Limits: defaultLimits(),
				Services: services(), Timeout: time.Second, StaffMFA: tt.policy, Counters: cnt})
			if err != nil {
				t.Fatal(err)
			}
			n := &next{}
			ctx, _ := stateCtx("Bearer " + tt.tok)
			err = p.Conn(n).Invoke(ctx, tt.method, tt.req, nil)
			if !tt.denied {
				if err != nil || len(n.calls) != 1 {
					t.Errorf("Invoke(%s) = %v with %d upstream calls, want it passed on", tt.name, err, len(n.calls))
				}
				return
			}
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Permission || e.Reason != rbac.ReasonMFA || len(n.calls) != 0 {
				t.Errorf("Invoke(%s) = %v with %d upstream calls, want %s and none", tt.name, err, len(n.calls), rbac.ReasonMFA)
			}
			if !cnt.has("authz:" + rbac.ReasonMFA) {
				t.Errorf("Invoke(%s): the refusal was not counted (%v)", tt.name, cnt.seen)
			}
		})
	}
}

// counting records authorization denials.
type counting struct {
	mu   sync.Mutex
	seen []string
}

func (c *counting) AuthzDenied(_ context.Context, r string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, "authz:"+r)
}
func (*counting) TokenRejected(context.Context, string)    {}
func (*counting) ValidationFailed(context.Context, string) {}
func (*counting) RateLimited(context.Context, string)      {}

func (c *counting) has(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.seen, s)
}
