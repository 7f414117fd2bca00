package rpc_test

import (
	"context"
	"testing"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/bastion-bank/bastion/platform/grpctest"
)

// TestChainGuardsEveryRPC attacks the RPCs from the wrong callers and with
// bad tokens; the platform chain must refuse before any handler runs.
func TestChainGuardsEveryRPC(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	_, _, tok := s.user(t)
	ctx := context.Background()
	asAccounts := authv1.NewAuthServiceClient(s.dial(t, "accounts"))
	asIntruder := authv1.NewAuthServiceClient(s.dial(t, "intruder"))
	login := &authv1.LoginRequest{Email: "someone@example.com", Password: "whatever password"}

	for _, tc := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"login from accounts", func() error { _, err := asAccounts.Login(ctx, login); return err }, codes.PermissionDenied},
		{"login from intruder", func() error { _, err := asIntruder.Login(ctx, login); return err }, codes.PermissionDenied},
		{"me without a token", func() error { _, err := s.auth.GetMe(s.ctx(), &authv1.GetMeRequest{}); return err }, codes.Unauthenticated},
		{"me with a foreign key", func() error {
			_, err := s.auth.GetMe(s.as(grpctest.ForeignToken(t, "3f0e7a4c-1111-4222-8333-444455556666", "user")), &authv1.GetMeRequest{})
			return err
		}, codes.Unauthenticated},
		{"me with another platform's key", func() error {
			_, err := s.auth.GetMe(s.as(s.env.Token(t, "3f0e7a4c-1111-4222-8333-444455556666", "admin")), &authv1.GetMeRequest{})
			return err
		}, codes.Unauthenticated},
		{"me with a refresh token as bearer", func() error {
			_, err := s.auth.GetMe(s.as(tok.GetRefreshToken()), &authv1.GetMeRequest{})
			return err
		}, codes.Unauthenticated},
		{"me with spoofed identity metadata", func() error {
			c := metadata.AppendToOutgoingContext(s.ctx(), "x-user-id", "3f0e7a4c-1111-4222-8333-444455556666", "x-roles", "admin")
			_, err := s.auth.GetMe(c, &authv1.GetMeRequest{})
			return err
		}, codes.Unauthenticated},
		{"logout without a token", func() error {
			_, err := s.auth.Logout(s.ctx(), &authv1.LogoutRequest{RefreshToken: tok.GetRefreshToken()})
			return err
		}, codes.Unauthenticated},
		{"set roles as a user", func() error {
			_, err := s.auth.SetUserRoles(s.as(tok.GetAccessToken()), &authv1.SetUserRolesRequest{UserId: "3f0e7a4c-1111-4222-8333-444455556666", Roles: []string{"admin"}})
			return err
		}, codes.PermissionDenied},
		{"revocations for the intruder", func() error {
			st, err := authv1.NewRevocationServiceClient(s.dial(t, "intruder")).WatchRevocations(ctx, &authv1.WatchRevocationsRequest{})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}, codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := codeOf(tc.call()); got != tc.want {
				t.Errorf("%s: code %v, want %v", tc.name, got, tc.want)
			}
		})
	}
	// The refused logout revoked nothing.
	if _, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: tok.GetRefreshToken()}); err != nil {
		t.Errorf("Refresh after refused calls = %v, want success", err)
	}
}

func TestWatchRevocationsStream(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	_, _, before := s.user(t)
	if _, err := s.auth.Logout(s.as(before.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: before.GetRefreshToken()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := authv1.NewRevocationServiceClient(s.dial(t, "transactions")).WatchRevocations(ctx, &authv1.WatchRevocationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil || !first.GetSnapshot() || len(first.GetRevocations()) != 1 {
		t.Fatalf("first message = %v, %v; want a snapshot holding the one revocation", first, err)
	}
	_, _, after := s.user(t)
	if _, err := s.auth.Logout(s.as(after.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: after.GetRefreshToken()}); err != nil {
		t.Fatal(err)
	}
	next, err := st.Recv()
	if err != nil || next.GetSnapshot() || len(next.GetRevocations()) != 1 {
		t.Fatalf("next message = %v, %v; want one new revocation, not a snapshot", next, err)
	}
	if exp := next.GetRevocations()[0].GetExpiresAt().AsTime(); time.Until(exp) < 14*time.Minute || time.Until(exp) > 16*time.Minute {
		t.Errorf("revocation expires at %v, want the token's expiry about 15 min ahead", exp)
	}
}
