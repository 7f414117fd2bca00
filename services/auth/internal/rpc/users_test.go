package rpc_test

import (
	"testing"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestUserAdministrationThroughTheChain calls the user-administration and
// self-service RPCs through the real chain: the rules in auth.proto, the
// validation, the domain and the error mapping together.
func TestUserAdministrationThroughTheChain(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	_, adminTok := s.admin(t)
	email, pw, userTok := s.user(t)
	me, err := s.auth.GetMe(s.as(userTok.GetAccessToken()), &authv1.GetMeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	uid := me.GetUser().GetId()
	if me.GetUser().GetStatus() != "ACTIVE" {
		t.Errorf("GetMe().status = %q, want ACTIVE", me.GetUser().GetStatus())
	}

	user, admin := s.as(userTok.GetAccessToken()), s.as(adminTok)
	_, err = s.auth.ListUsers(user, &authv1.ListUsersRequest{})
	wantCode(t, "ListUsers(as a user)", err, codes.PermissionDenied)
	_, err = s.auth.DisableUser(user, &authv1.DisableUserRequest{UserId: uid, Reason: "x"})
	wantCode(t, "DisableUser(as a user)", err, codes.PermissionDenied)
	_, err = s.auth.DisableUser(admin, &authv1.DisableUserRequest{UserId: "not-a-uuid", Reason: "x"})
	wantCode(t, "DisableUser(bad id)", err, codes.InvalidArgument)
	_, err = s.auth.DisableUser(admin, &authv1.DisableUserRequest{UserId: uid})
	wantCode(t, "DisableUser(no reason)", err, codes.InvalidArgument)
	_, err = s.auth.ListUsers(admin, &authv1.ListUsersRequest{PageSize: 101})
	wantCode(t, "ListUsers(page too large)", err, codes.InvalidArgument)

	found, err := s.auth.ListUsers(admin, &authv1.ListUsersRequest{Email: email})
	if err != nil || len(found.GetUsers()) != 1 || found.GetUsers()[0].GetId() != uid {
		t.Fatalf("ListUsers(email) = %v, %v; want the user", found, err)
	}

	got, err := s.auth.DisableUser(admin, &authv1.DisableUserRequest{UserId: uid, Reason: "lost laptop"})
	if err != nil || got.GetUser().GetStatus() != "DISABLED" {
		t.Fatalf("DisableUser() = %v, %v; want DISABLED", got, err)
	}
	_, err = s.auth.GetMe(user, &authv1.GetMeRequest{})
	wantCode(t, "GetMe(token of a disabled user)", err, codes.Unauthenticated)
	_, disabled := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw})
	_, wrong := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: "not the password"})
	if status.Code(disabled) != codes.Unauthenticated || status.Convert(disabled).Message() != status.Convert(wrong).Message() {
		t.Errorf("Login(disabled) = %v; want exactly the wrong password's %v", disabled, wrong)
	}
	if _, err := s.auth.EnableUser(admin, &authv1.EnableUserRequest{UserId: uid, Reason: "found it"}); err != nil {
		t.Fatalf("EnableUser() = %v", err)
	}
	tok, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw})
	if err != nil {
		t.Fatalf("Login(after enable) = %v", err)
	}
	user = s.as(tok.GetAccessToken())

	_, err = s.auth.ChangePassword(user, &authv1.ChangePasswordRequest{CurrentPassword: "not the password", NewPassword: "another fine passphrase"})
	wantCode(t, "ChangePassword(wrong current)", err, codes.PermissionDenied)
	_, err = s.auth.ChangePassword(user, &authv1.ChangePasswordRequest{CurrentPassword: pw, NewPassword: "short"})
	wantCode(t, "ChangePassword(short new)", err, codes.InvalidArgument)

	sessions, err := s.auth.ListSessions(user, &authv1.ListSessionsRequest{})
	if err != nil || len(sessions.GetSessions()) != 1 || !sessions.GetSessions()[0].GetCurrent() {
		t.Fatalf("ListSessions() = %v, %v; want the one current session", sessions, err)
	}
	adminSessions, err := s.auth.ListSessions(admin, &authv1.ListSessionsRequest{})
	if err != nil || len(adminSessions.GetSessions()) == 0 {
		t.Fatalf("ListSessions(admin) = %v, %v", adminSessions, err)
	}
	for _, id := range []string{adminSessions.GetSessions()[0].GetId(), uuid.NewString()} {
		_, err = s.auth.RevokeSession(user, &authv1.RevokeSessionRequest{SessionId: id})
		wantCode(t, "RevokeSession(not the caller's)", err, codes.NotFound)
	}
	_, err = s.auth.RevokeSession(user, &authv1.RevokeSessionRequest{SessionId: "x"})
	wantCode(t, "RevokeSession(bad id)", err, codes.InvalidArgument)
	if _, err := s.auth.RevokeSession(user, &authv1.RevokeSessionRequest{SessionId: sessions.GetSessions()[0].GetId()}); err != nil {
		t.Fatalf("RevokeSession(own) = %v", err)
	}
	_, err = s.auth.GetMe(user, &authv1.GetMeRequest{})
	wantCode(t, "GetMe(after revoking the current session)", err, codes.Unauthenticated)
}
