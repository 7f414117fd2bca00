package rpc_test

import (
	"testing"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc/codes"

	"github.com/bastion-bank/bastion/platform/grpctest"
)

func (s *stack) admin(t *testing.T) (*authv1.User, string) {
	t.Helper()
	email := "admin-" + randomIP() + "@example.com"
	if err := s.svc.EnsureAdmin(s.ctx(), email, "admin password!"); err != nil {
		t.Fatal(err)
	}
	tok, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: "admin password!"})
	if err != nil {
		t.Fatal(err)
	}
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
