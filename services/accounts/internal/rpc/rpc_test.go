package rpc_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// wireStatus returns the status exactly as the server sent it. The platform
// dialer turns it into an errs kind for callers; the original rides along
// as the cause.
func wireStatus(err error) *status.Status {
	if e, ok := errs.As(err); ok && e.Err != nil {
		err = e.Err
	}
	return status.Convert(err)
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, call string, err error, code codes.Code) *status.Status {
	t.Helper()
	st := wireStatus(err)
	if st.Code() != code {
		t.Errorf("%s = %v, want code %v", call, err, code)
	}
	return st
}

// wireBytes is the status exactly as the client receives it.
func wireBytes(t *testing.T, err error) []byte {
	t.Helper()
	b, merr := proto.MarshalOptions{Deterministic: true}.Marshal(wireStatus(err).Proto())
	if merr != nil {
		t.Fatal(merr)
	}
	return b
}

func TestOpenGetList(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.person(t, identity.RoleUser)
	acc := s.open(t, a)
	if acc.GetOwnerId() != a.id || acc.GetStatus() != "ACTIVE" || acc.GetCurrency() != "EUR" ||
		acc.GetBalance().GetAmount() != 0 || acc.GetAvailableBalance().GetCurrency() != "EUR" || acc.GetCreatedAt() == nil {
		t.Errorf("OpenAccount() = %v, want an ACTIVE EUR account of %s with zero balances", acc, a.id)
	}
	s.ledger.SetMoney(acc.GetId(), 12_345, 345)
	got, err := s.client.GetAccount(a.ctx, &accountsv1.GetAccountRequest{AccountId: acc.GetId()})
	if err != nil || got.GetAccount().GetBalance().GetAmount() != 12_345 || got.GetAccount().GetAvailableBalance().GetAmount() != 12_000 {
		t.Errorf("GetAccount() = %v, %v; want balance 12345, available 12000", got, err)
	}
	list, err := s.client.ListAccounts(a.ctx, &accountsv1.ListAccountsRequest{})
	if err != nil || len(list.GetAccounts()) != 1 || list.GetAccounts()[0].GetId() != acc.GetId() || list.GetNextPageToken() != "" {
		t.Errorf("ListAccounts() = %v, %v; want just the one account", list, err)
	}
}

// Issue 5: user A cannot get, list, freeze or page through B's accounts,
// and B's account looks exactly like one that does not exist.
func TestUserCannotReachAnotherUsersAccounts(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a, b := s.person(t, identity.RoleUser), s.person(t, identity.RoleUser)
	bAcc := s.open(t, b)
	for range 2 {
		s.open(t, b)
	}

	_, errB := s.client.GetAccount(a.ctx, &accountsv1.GetAccountRequest{AccountId: bAcc.GetId()})
	wantCode(t, "GetAccount(B's account as A)", errB, codes.NotFound)
	_, errMissing := s.client.GetAccount(a.ctx, &accountsv1.GetAccountRequest{AccountId: uuid.NewString()})
	wantCode(t, "GetAccount(random id as A)", errMissing, codes.NotFound)
	if !bytes.Equal(wireBytes(t, errB), wireBytes(t, errMissing)) {
		t.Errorf("404 for B's account = %v, 404 for a random id = %v; want byte-identical", wireStatus(errB).Proto(), wireStatus(errMissing).Proto())
	}
	// A manager asking for a missing id reaches the handler; its 404 must
	// read the same too.
	mgr := s.person(t, identity.RoleManager)
	_, errMgr := s.client.GetAccount(mgr.ctx, &accountsv1.GetAccountRequest{AccountId: uuid.NewString()})
	if !bytes.Equal(wireBytes(t, errMgr), wireBytes(t, errMissing)) {
		t.Errorf("handler 404 = %v, owner-check 404 = %v; want byte-identical", wireStatus(errMgr).Proto(), wireStatus(errMissing).Proto())
	}

	_, err := s.client.ListAccounts(a.ctx, &accountsv1.ListAccountsRequest{OwnerId: b.id})
	wantCode(t, "ListAccounts(ownerId=B as A)", err, codes.PermissionDenied)

	for name, call := range map[string]func() error{
		"FreezeAccount": func() error {
			_, err := s.client.FreezeAccount(a.ctx, &accountsv1.FreezeAccountRequest{AccountId: bAcc.GetId(), Reason: "mine now"})
			return err
		},
		"UnfreezeAccount": func() error {
			_, err := s.client.UnfreezeAccount(a.ctx, &accountsv1.UnfreezeAccountRequest{AccountId: bAcc.GetId(), Reason: "mine now"})
			return err
		},
	} {
		wantCode(t, name+"(B's account as A)", call(), codes.PermissionDenied)
	}

	bPage, err := s.client.ListAccounts(b.ctx, &accountsv1.ListAccountsRequest{PageSize: 1})
	if err != nil || bPage.GetNextPageToken() == "" {
		t.Fatalf("ListAccounts(B, size 1) = %v, %v; want a next page token", bPage, err)
	}
	page, err := s.client.ListAccounts(a.ctx, &accountsv1.ListAccountsRequest{PageSize: 1, PageToken: bPage.GetNextPageToken()})
	wantCode(t, "ListAccounts(B's page token as A)", err, codes.InvalidArgument)
	if len(page.GetAccounts()) != 0 {
		t.Errorf("ListAccounts(B's page token as A) returned %d accounts", len(page.GetAccounts()))
	}
	if st, _ := s.ledger.Account(bAcc.GetId()); st.Status != domain.StatusActive {
		t.Errorf("B's account ledger status = %s, want ACTIVE", st.Status)
	}
	for _, reason := range []string{"denied:not_owner", "denied:role", "denied:list_other_owner"} {
		if s.counters.get(reason) == 0 {
			t.Errorf("counter %s = 0, want the denial counted", reason)
		}
	}
	// Every refusal of A is in the audit trail, in order.
	want := []string{"not_owner", "not_owner", "list_other_owner", "role", "role"}
	if got := s.denials(t, a.id); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("audited denials of A = %q, want %q", got, want)
	}
}

func TestManagerCanReadAndFreeze(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	u := s.person(t, identity.RoleUser)
	acc := s.open(t, u)
	for _, role := range []string{identity.RoleManager, identity.RoleAdmin} {
		staff := s.person(t, role)
		if _, err := s.client.GetAccount(staff.ctx, &accountsv1.GetAccountRequest{AccountId: acc.GetId()}); err != nil {
			t.Errorf("GetAccount(as %s) error = %v", role, err)
		}
		list, err := s.client.ListAccounts(staff.ctx, &accountsv1.ListAccountsRequest{OwnerId: u.id})
		if err != nil || len(list.GetAccounts()) != 1 {
			t.Errorf("ListAccounts(ownerId=user as %s) = %v, %v; want the user's account", role, list, err)
		}
	}
	mgr := s.person(t, identity.RoleManager)
	frozen, err := s.client.FreezeAccount(mgr.ctx, &accountsv1.FreezeAccountRequest{AccountId: acc.GetId(), Reason: "chargeback review"})
	if err != nil || frozen.GetAccount().GetStatus() != "FROZEN" {
		t.Fatalf("FreezeAccount() = %v, %v; want FROZEN", frozen, err)
	}
	// In force in the ledger the moment the call returned.
	if la, _ := s.ledger.Account(acc.GetId()); la.Status != domain.StatusFrozen {
		t.Errorf("ledger status after FreezeAccount returned = %s, want FROZEN", la.Status)
	}
	// The owner sees it frozen.
	got, err := s.client.GetAccount(u.ctx, &accountsv1.GetAccountRequest{AccountId: acc.GetId()})
	if err != nil || got.GetAccount().GetStatus() != "FROZEN" {
		t.Errorf("GetAccount(owner, after freeze) = %v, %v; want FROZEN", got, err)
	}
	if _, err := s.client.FreezeAccount(mgr.ctx, &accountsv1.FreezeAccountRequest{AccountId: acc.GetId(), Reason: "again"}); err != nil {
		t.Errorf("FreezeAccount(frozen) error = %v, want nil (idempotent)", err)
	}
	if _, err := s.client.UnfreezeAccount(mgr.ctx, &accountsv1.UnfreezeAccountRequest{AccountId: acc.GetId(), Reason: "cleared"}); err != nil {
		t.Errorf("UnfreezeAccount() error = %v", err)
	}
	if la, _ := s.ledger.Account(acc.GetId()); la.Status != domain.StatusActive {
		t.Errorf("ledger status after UnfreezeAccount = %s, want ACTIVE", la.Status)
	}
	_, err = s.client.FreezeAccount(mgr.ctx, &accountsv1.FreezeAccountRequest{AccountId: uuid.NewString(), Reason: "x"})
	wantCode(t, "FreezeAccount(missing)", err, codes.NotFound)
	if s.counters.get("account.frozen:changed") != 1 || s.counters.get("account.unfrozen:changed") != 1 {
		t.Errorf("freeze/unfreeze counters = %d/%d, want 1/1", s.counters.get("account.frozen:changed"), s.counters.get("account.unfrozen:changed"))
	}
}

func TestUserCannotFreezeOwnAccount(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	u := s.person(t, identity.RoleUser)
	acc := s.open(t, u)
	_, err := s.client.FreezeAccount(u.ctx, &accountsv1.FreezeAccountRequest{AccountId: acc.GetId(), Reason: "lost card"})
	wantCode(t, "FreezeAccount(own, as user)", err, codes.PermissionDenied)
	_, err = s.client.UnfreezeAccount(u.ctx, &accountsv1.UnfreezeAccountRequest{AccountId: acc.GetId(), Reason: "found it"})
	wantCode(t, "UnfreezeAccount(own, as user)", err, codes.PermissionDenied)
}

func TestEleventhAccountRefused(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	u := s.person(t, identity.RoleUser)
	for range domain.DefaultMaxOpenPerUser {
		s.open(t, u)
	}
	_, err := s.client.OpenAccount(u.ctx, &accountsv1.OpenAccountRequest{Currency: "USD"})
	st := wantCode(t, "OpenAccount(11th)", err, codes.FailedPrecondition)
	if !hasReason(st, "account_limit") {
		t.Errorf("OpenAccount(11th) details = %v, want reason account_limit", st.Details())
	}
}

func hasReason(st *status.Status, reason string) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason {
			return true
		}
	}
	return false
}

func TestBadInputIsInvalidArgumentWithViolations(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	u := s.person(t, identity.RoleUser)
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"bad currency", func() error {
			_, err := s.client.OpenAccount(u.ctx, &accountsv1.OpenAccountRequest{Currency: "BTC"})
			return err
		}, "currency"},
		{"lower-case currency", func() error {
			_, err := s.client.OpenAccount(u.ctx, &accountsv1.OpenAccountRequest{Currency: "eur"})
			return err
		}, "currency"},
		{"control character in name", func() error {
			_, err := s.client.OpenAccount(u.ctx, &accountsv1.OpenAccountRequest{Currency: "EUR", DisplayName: "a\u202eb"})
			return err
		}, "displayName"},
		{"malformed account id", func() error {
			_, err := s.client.GetAccount(u.ctx, &accountsv1.GetAccountRequest{AccountId: "1 OR 1=1"})
			return err
		}, "accountId"},
		{"page size over 100", func() error {
			_, err := s.client.ListAccounts(u.ctx, &accountsv1.ListAccountsRequest{PageSize: 101})
			return err
		}, "pageSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := wantCode(t, tt.name, tt.call(), codes.InvalidArgument)
			if !hasViolation(st, tt.field) {
				t.Errorf("%s details = %v, want a violation on %s", tt.name, st.Details(), tt.field)
			}
		})
	}
}

func hasViolation(st *status.Status, field string) bool {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}

func TestTamperedPageToken(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	u := s.person(t, identity.RoleUser)
	for range 3 {
		s.open(t, u)
	}
	first, err := s.client.ListAccounts(u.ctx, &accountsv1.ListAccountsRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("ListAccounts(size 1) = %v, %v", first, err)
	}
	tok := []byte(first.GetNextPageToken())
	for i := range tok {
		mod := bytes.Clone(tok)
		mod[i] = map[bool]byte{true: 'B', false: 'A'}[mod[i] == 'A']
		_, err := s.client.ListAccounts(u.ctx, &accountsv1.ListAccountsRequest{PageSize: 1, PageToken: string(mod)})
		if st := wireStatus(err); st.Code() != codes.InvalidArgument || st.Message() != "invalid page token" {
			t.Fatalf("ListAccounts(token with byte %d changed) = %v, want InvalidArgument \"invalid page token\"", i, err)
		}
	}
	second, err := s.client.ListAccounts(u.ctx, &accountsv1.ListAccountsRequest{PageSize: 1, PageToken: first.GetNextPageToken()})
	if err != nil || len(second.GetAccounts()) != 1 || second.GetAccounts()[0].GetId() == first.GetAccounts()[0].GetId() {
		t.Errorf("ListAccounts(genuine token) = %v, %v; want the second account", second, err)
	}
}

// Only the gateway may call the public API; other platform services and
// identities no rule names are refused before any handler runs, as are
// calls without a valid user token.
func TestCallerAndTokenChecks(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	u := s.person(t, identity.RoleUser)
	for _, as := range []string{"intruder", "transactions", "auth"} {
		c := accountsv1.NewAccountsServiceClient(s.env.Dial(t, as, s.addr, "accounts"))
		_, err := c.OpenAccount(u.ctx, &accountsv1.OpenAccountRequest{Currency: "EUR"})
		wantCode(t, "OpenAccount(as "+as+")", err, codes.PermissionDenied)
	}
	_, err := s.client.OpenAccount(context.Background(), &accountsv1.OpenAccountRequest{Currency: "EUR"})
	wantCode(t, "OpenAccount(no token)", err, codes.Unauthenticated)
	forged := grpctest.AsUser(context.Background(), grpctest.ForeignToken(t, u.id, identity.RoleAdmin))
	_, err = s.client.ListAccounts(forged, &accountsv1.ListAccountsRequest{OwnerId: u.id})
	wantCode(t, "ListAccounts(foreign-key admin token)", err, codes.Unauthenticated)
	if n := s.counters.get("denied:caller_not_allowed"); n != 3 {
		t.Errorf("caller denials counted = %d, want 3", n)
	}
	for _, as := range []string{"intruder", "transactions", "auth"} {
		if got := s.denials(t, "service:"+as); len(got) != 1 || got[0] != "caller_not_allowed" {
			t.Errorf("audited denials of service %s = %q, want [caller_not_allowed]", as, got)
		}
	}
}
