package rbac_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	authzv1 "github.com/bastion-bank/bastion/proto/bank/authz/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// staffOperations are docs/api.md's staff operations ("Multi-factor
// authentication"): deposit, approve, reject, freeze, unfreeze, role
// change, disable, enable, the user list, listing by ownerId and the
// approval queue.
var staffOperations = []string{
	"/bank.accounts.v1.AccountsService/FreezeAccount",
	"/bank.accounts.v1.AccountsService/ListAccounts",
	"/bank.accounts.v1.AccountsService/UnfreezeAccount",
	"/bank.auth.v1.AuthService/DisableUser",
	"/bank.auth.v1.AuthService/EnableUser",
	"/bank.auth.v1.AuthService/ListUsers",
	"/bank.auth.v1.AuthService/SetUserRoles",
	"/bank.transactions.v1.TransactionsService/ApproveTransfer",
	"/bank.transactions.v1.TransactionsService/CreateDeposit",
	"/bank.transactions.v1.TransactionsService/ListTransfers",
	"/bank.transactions.v1.TransactionsService/RejectTransfer",
}

// TestStaffOperationsAreMarked: exactly docs/api.md's staff operations carry
// staff_mfa, so a new staff RPC without it (or a customer RPC with it)
// fails here, not in a review.
func TestStaffOperationsAreMarked(t *testing.T) {
	t.Parallel()
	var marked []string
	for _, sd := range bankServices(t) {
		for i := 0; i < sd.Methods().Len(); i++ {
			r, err := rbac.RuleOf(sd.Methods().Get(i))
			if err != nil {
				t.Fatal(err)
			}
			if r.StaffMFA != nil {
				marked = append(marked, r.Method)
			}
		}
	}
	slices.Sort(marked)
	if !slices.Equal(marked, staffOperations) {
		t.Errorf("RPCs with staff_mfa = %v, want %v", marked, staffOperations)
	}
	if r := mustRule(t, "/bank.accounts.v1.AccountsService/ListAccounts"); r.StaffMFA.WhenSet != "owner_id" {
		t.Errorf("ListAccounts staff_mfa = %+v, want when_set owner_id", r.StaffMFA)
	}
}

func TestCheckMFA(t *testing.T) {
	t.Parallel()
	withAMR := func(roles []string, amr ...string) identity.User {
		return identity.User{ID: owner, Roles: roles, AMR: amr}
	}
	staff := []string{"manager", "user"}
	admin := []string{"admin", "user"}
	deposit := "/bank.transactions.v1.TransactionsService/CreateDeposit"
	list := "/bank.accounts.v1.AccountsService/ListAccounts"
	tests := []struct {
		name   string
		method string
		user   identity.User
		req    proto.Message
		policy rbac.MFAPolicy
		denied bool
	}{
		{"manager, password only", deposit, withAMR(staff, "pwd"), &transactionsv1.CreateDepositRequest{}, rbac.MFARequired, true},
		{"manager, no amr at all", deposit, withAMR(staff), &transactionsv1.CreateDepositRequest{}, rbac.MFARequired, true},
		{"manager, password and code", deposit, withAMR(staff, "pwd", "otp"), &transactionsv1.CreateDepositRequest{}, rbac.MFARequired, false},
		{"admin, password only", "/bank.auth.v1.AuthService/SetUserRoles", withAMR(admin, "pwd"), &authv1.SetUserRolesRequest{}, rbac.MFARequired, true},
		{"admin, password only, policy off", "/bank.auth.v1.AuthService/SetUserRoles", withAMR(admin, "pwd"), &authv1.SetUserRolesRequest{}, rbac.MFAOff, false},
		{"manager lists by owner, password only", list, withAMR(staff, "pwd"), &accountsv1.ListAccountsRequest{OwnerId: stranger}, rbac.MFARequired, true},
		{"manager lists own accounts, password only", list, withAMR(staff, "pwd"), &accountsv1.ListAccountsRequest{}, rbac.MFARequired, false},
		{"user lists by owner: not staff, the service refuses", list, withAMR([]string{"user"}, "pwd"), &accountsv1.ListAccountsRequest{OwnerId: stranger}, rbac.MFARequired, false},
		{"a customer operation", "/bank.accounts.v1.AccountsService/GetAccount", withAMR(staff, "pwd"), &accountsv1.GetAccountRequest{AccountId: acct}, rbac.MFARequired, false},
		{"a forged amr spelling", deposit, withAMR(staff, "pwd", "OTP"), &transactionsv1.CreateDepositRequest{}, rbac.MFARequired, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := mustRule(t, tt.method).CheckMFA(tt.user, tt.req, tt.policy)
			if tt.denied != (err != nil) {
				t.Fatalf("CheckMFA(%s) = %v, want denied %v", tt.name, err, tt.denied)
			}
			if err == nil {
				return
			}
			var d *rbac.Denied
			if !errors.As(err, &d) || d.Reason != rbac.ReasonMFA {
				t.Errorf("CheckMFA(%s) = %v, want a Denied with reason %s", tt.name, err, rbac.ReasonMFA)
			}
			if e, ok := errs.As(err); !ok || e.Kind != errs.Permission || e.Reason != "mfa_required" {
				t.Errorf("CheckMFA(%s) = %+v, want Permission with reason mfa_required", tt.name, e)
			}
		})
	}
}

// TestRuleOfRefusesMalformedStaffMFA: a staff_mfa that names no field of
// the request, or sits on a rule with no user to ask, fails at start-up.
func TestRuleOfRefusesMalformedStaffMFA(t *testing.T) {
	t.Parallel()
	user := []authzv1.Role{authzv1.Role_ROLE_USER}
	tests := []struct {
		name string
		rule *authzv1.AccessRule
		want string
	}{
		{"every call", &authzv1.AccessRule{Roles: user, StaffMfa: &authzv1.StaffMFA{}}, ""},
		{"when a string field is set", &authzv1.AccessRule{Roles: user, StaffMfa: &authzv1.StaffMFA{WhenSet: "account_id"}}, ""},
		{"a missing field", &authzv1.AccessRule{Roles: user, StaffMfa: &authzv1.StaffMFA{WhenSet: "owner"}}, `staff_mfa field "owner" is not a string field`},
		{"a list field", &authzv1.AccessRule{Roles: user, StaffMfa: &authzv1.StaffMFA{WhenSet: "ids"}}, `staff_mfa field "ids" is not a string field`},
		{"a public rule", &authzv1.AccessRule{Public: true, StaffMfa: &authzv1.StaffMFA{}}, "needs roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := rbac.RuleOf(ruleMethod(t, tt.rule))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("RuleOf(%s) = %v, want %q", tt.name, err, tt.want)
			}
		})
	}
}
