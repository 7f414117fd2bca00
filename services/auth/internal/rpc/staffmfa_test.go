package rpc_test

import (
	"strings"
	"testing"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestStaffMFAThroughTheChain: the admin RPCs are staff operations, which
// the chain serves to an admin token from a login with a code and refuses
// to one from a password alone.
func TestStaffMFAThroughTheChain(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	_, adminTok := s.admin(t)
	adminEmail := ""
	if me, err := s.auth.GetMe(s.as(adminTok), &authv1.GetMeRequest{}); err == nil {
		adminEmail = me.GetUser().GetEmail()
	}
	if _, err := s.auth.ListUsers(s.as(adminTok), &authv1.ListUsersRequest{Email: adminEmail}); err != nil {
		t.Errorf("ListUsers(admin with a code) = %v", err)
	}
	weak, err := s.keys.Issue("3f0e7a4c-1111-4222-8333-444455556666", []string{"admin", "user"}, []string{"pwd"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.auth.ListUsers(s.as(weak.Raw), &authv1.ListUsersRequest{})
	wantCode(t, "ListUsers(admin, password only)", err, codes.PermissionDenied)
	if st := status.Convert(err); !strings.Contains(st.Message(), "multi-factor") {
		t.Errorf("ListUsers(admin, password only) = %q, want the MFA refusal", st.Message())
	}
}
