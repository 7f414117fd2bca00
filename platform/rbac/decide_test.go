package rbac_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/rbac"
)

const (
	owner    = "0b6e2f5c-7a51-4d0e-9c3b-2d8f1a4e6b70"
	stranger = "9f1e2d3c-4b5a-4697-8887-766554433221"
	acct     = "aaaaaaaa-0000-4000-8000-000000000001"
)

func mustRule(t *testing.T, method string) rbac.Rule {
	t.Helper()
	r, err := rbac.RuleFor(method)
	if err != nil {
		t.Fatalf("RuleFor(%s) = %v", method, err)
	}
	return r
}

func TestRuleForRefusesUnknownMethods(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"", "no-slash", "/bank.accounts.v1.AccountsService", "/bank.accounts.v1.AccountsService/Nope",
		"/bank.nope.v1.Svc/Do", "/bank.accounts.v1.Account/Do", "/bank.accounts.v1.AccountsService/GetAccount/x"} {
		if _, err := rbac.RuleFor(m); err == nil {
			t.Errorf("RuleFor(%q) succeeded", m)
		}
	}
	if r := mustRule(t, "/grpc.health.v1.Health/Check"); !r.AllowsCaller("anyone") || r.NeedsUser() {
		t.Errorf("health rule = %+v", r)
	}
}

func TestCallers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, caller string
		want           bool
	}{
		{"/bank.accounts.v1.AccountsService/GetAccount", "gateway", true},
		{"/bank.accounts.v1.AccountsService/GetAccount", "accounts", false},
		{"/bank.accounts.v1.AccountsService/GetAccount", "", false},
		{"/bank.transactions.v1.LedgerService/GetBalances", "accounts", true},
		{"/bank.transactions.v1.LedgerService/GetBalances", "gateway", false},
		{"/bank.auth.v1.AuthService/GetJWKS", "transactions", true},
		{"/bank.auth.v1.RevocationService/WatchRevocations", "intruder", false},
	}
	for _, tt := range tests {
		if got := mustRule(t, tt.method).AllowsCaller(tt.caller); got != tt.want {
			t.Errorf("AllowsCaller(%s, %q) = %v, want %v", tt.method, tt.caller, got, tt.want)
		}
	}
}

func TestCheckRoles(t *testing.T) {
	t.Parallel()
	user := identity.User{ID: owner, Roles: []string{"user"}}
	mgr := identity.User{ID: owner, Roles: []string{"user", "manager"}}
	admin := identity.User{ID: owner, Roles: []string{"admin"}}
	tests := []struct {
		method string
		u      identity.User
		want   errs.Kind
	}{
		{"/bank.accounts.v1.AccountsService/FreezeAccount", user, errs.Permission},
		{"/bank.accounts.v1.AccountsService/FreezeAccount", mgr, errs.Other},
		{"/bank.auth.v1.AuthService/SetUserRoles", mgr, errs.Permission},
		{"/bank.auth.v1.AuthService/SetUserRoles", admin, errs.Other},
		{"/bank.accounts.v1.AccountsService/GetAccount", identity.User{}, errs.Unauthenticated},
		{"/bank.accounts.v1.AccountsService/GetAccount", identity.User{ID: owner, Roles: []string{"superuser"}}, errs.Permission},
		{"/bank.auth.v1.AuthService/Login", identity.User{}, errs.Other},
	}
	for _, tt := range tests {
		err := mustRule(t, tt.method).CheckRoles(tt.u)
		if got := errs.KindOf(err); got != tt.want {
			t.Errorf("CheckRoles(%s, %v) = %v, want %v", tt.method, tt.u.Roles, err, tt.want)
		}
		var d *rbac.Denied
		if err != nil && (!errors.As(err, &d) || d.Reason == "" || d.Error() == "") {
			t.Errorf("CheckRoles(%s) error %v carries no reason", tt.method, err)
		}
	}
}

func TestCheckOwner(t *testing.T) {
	t.Parallel()
	failing := errors.New("db down")
	owners := rbac.OwnerFunc(func(_ context.Context, resource, id string) ([]string, error) {
		switch id {
		case acct:
			return []string{owner}, nil
		case "broken":
			return nil, failing
		}
		return nil, errs.New(errs.NotFound, resource+" not found")
	})
	get := mustRule(t, "/bank.accounts.v1.AccountsService/GetAccount")
	xfer := mustRule(t, "/bank.transactions.v1.TransactionsService/CreateTransfer")
	user := func(id string, roles ...string) identity.User { return identity.User{ID: id, Roles: roles} }
	tests := []struct {
		name  string
		rule  rbac.Rule
		u     identity.User
		req   any
		want  errs.Kind
		cause error
	}{
		{"owner", get, user(owner, "user"), &accountsv1.GetAccountRequest{AccountId: acct}, errs.Other, nil},
		{"stranger gets not found", get, user(stranger, "user"), &accountsv1.GetAccountRequest{AccountId: acct}, errs.NotFound, nil},
		{"missing resource is the same not found", get, user(stranger, "user"), &accountsv1.GetAccountRequest{AccountId: "x"}, errs.NotFound, nil},
		{"manager bypass", get, user(stranger, "manager"), &accountsv1.GetAccountRequest{AccountId: acct}, errs.Other, nil},
		{"no bypass on transfers: a manager moving a stranger's money", xfer, user(stranger, "manager"), &transactionsv1.CreateTransferRequest{FromAccountId: acct}, errs.NotFound, nil},
		{"resolver failure is not a denial", get, user(stranger, "user"), &accountsv1.GetAccountRequest{AccountId: "broken"}, errs.Other, failing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.CheckOwner(context.Background(), tt.u, tt.req.(proto.Message), owners)
			if tt.cause != nil {
				if !errors.Is(err, tt.cause) {
					t.Errorf("CheckOwner = %v, want it to wrap %v", err, tt.cause)
				}
				return
			}
			if got := errs.KindOf(err); got != tt.want {
				t.Errorf("CheckOwner = %v, want %v", err, tt.want)
			}
		})
	}
	if err := get.CheckOwner(context.Background(), user(stranger, "user"), &accountsv1.GetAccountRequest{AccountId: acct}, nil); errs.KindOf(err) != errs.Internal {
		t.Errorf("CheckOwner without a resolver = %v, want internal (deny)", err)
	}
	if err := mustRule(t, "/bank.auth.v1.AuthService/GetMe").CheckOwner(context.Background(), user(owner, "user"), &accountsv1.GetAccountRequest{}, nil); err != nil {
		t.Errorf("CheckOwner on a rule without ownership = %v", err)
	}
}
