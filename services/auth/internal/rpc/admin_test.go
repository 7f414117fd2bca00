package rpc_test

import (
	"testing"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc/codes"

	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
)

// loginMFA logs in with a password and then the code of the time step
// offset steps from the domain clock's (each code is accepted once, so a
// second login in one step uses the next).
func (s *stack) loginMFA(t *testing.T, email, pw string, secret mfa.Secret, offset int64) *authv1.LoginMFAResponse {
	t.Helper()
	first, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw})
	if err != nil || !first.GetMfaRequired() || first.GetMfaToken() == "" || first.GetAccessToken() != "" {
		t.Fatalf("Login(MFA on) = %v, %v; want only a ticket", first, err)
	}
	tok, err := s.auth.LoginMFA(s.ctx(), &authv1.LoginMFARequest{MfaToken: first.GetMfaToken(),
		Code: secret.Code(mfa.Step(s.clock.Now()) + offset)})
	if err != nil {
		t.Fatalf("LoginMFA = %v", err)
	}
	return tok
}

// admin bootstraps an admin with MFA on, as the dev runner does, and logs
// them in with their password and a code: staff operations need the code.
func (s *stack) admin(t *testing.T) (*authv1.User, string) {
	t.Helper()
	email := "admin-" + randomIP() + "@example.com"
	if err := s.svc.EnsureAdmin(s.ctx(), email, "admin password!"); err != nil {
		t.Fatal(err)
	}
	secret := mfa.NewSecret()
	if _, err := s.svc.EnsureAdminTOTP(s.ctx(), email, secret); err != nil {
		t.Fatal(err)
	}
	tok := s.loginMFA(t, email, "admin password!", secret, 0)
	me, err := s.auth.GetMe(s.as(tok.GetAccessToken()), &authv1.GetMeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return me.GetUser(), tok.GetAccessToken()
}

// TestRoles is not parallel: the last-admin rule counts every admin in the
// shared database.
func TestRoles(t *testing.T) {
	s := newStack(t, options{})
	demoteAllAdmins(t)
	admin, adminTok := s.admin(t)
	_, _, userTok := s.user(t)
	user, err := s.auth.GetMe(s.as(userTok.GetAccessToken()), &authv1.GetMeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	uid := user.GetUser().GetId()

	_, err = s.auth.SetUserRoles(s.as(userTok.GetAccessToken()), &authv1.SetUserRolesRequest{UserId: uid, Roles: []string{"admin"}})
	wantCode(t, "SetUserRoles(as a user)", err, codes.PermissionDenied)
	forged := grpctest.ForeignToken(t, uid, "admin")
	_, err = s.auth.SetUserRoles(s.as(forged), &authv1.SetUserRolesRequest{UserId: uid, Roles: []string{"admin"}})
	wantCode(t, "SetUserRoles(with a forged admin token)", err, codes.Unauthenticated)
	_, err = s.auth.SetUserRoles(s.as(adminTok), &authv1.SetUserRolesRequest{UserId: admin.GetId(), Roles: []string{"user"}})
	wantCode(t, "SetUserRoles(demote the last admin)", err, codes.FailedPrecondition)
	_, err = s.auth.SetUserRoles(s.as(adminTok), &authv1.SetUserRolesRequest{UserId: uid, Roles: []string{"root"}})
	wantCode(t, "SetUserRoles(unknown role)", err, codes.InvalidArgument)

	got, err := s.auth.SetUserRoles(s.as(adminTok), &authv1.SetUserRolesRequest{UserId: uid, Roles: []string{"user", "manager"}})
	if err != nil {
		t.Fatalf("SetUserRoles(promote) = %v", err)
	}
	if r := got.GetUser().GetRoles(); len(r) != 2 || r[0] != "manager" || r[1] != "user" {
		t.Errorf("roles = %v, want [manager user]", r)
	}
	// Effective at once: the old token (role user only) no longer works.
	_, err = s.auth.GetMe(s.as(userTok.GetAccessToken()), &authv1.GetMeRequest{})
	wantCode(t, "GetMe(token from before the role change)", err, codes.Unauthenticated)
}

func demoteAllAdmins(t *testing.T) {
	t.Helper()
	conn := mustConn(t)
	if _, err := conn.Exec(t.Context(), `UPDATE auth.users SET roles = '{user}' WHERE 'admin' = ANY (roles)`); err != nil {
		t.Fatal(err)
	}
}
