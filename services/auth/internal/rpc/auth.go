// Package rpc serves the auth service's gRPC API: it translates between the
// generated authv1 messages and the domain, and nothing more. The platform
// chain (platform/grpcserver) has already proven the calling service,
// verified any user token, checked roles and validated the request before a
// handler runs.
package rpc

import (
	"context"
	"math"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// AuthServer implements authv1.AuthServiceServer.
type AuthServer struct {
	authv1.UnimplementedAuthServiceServer
	svc  *domain.Service
	keys PublicKeys
}

// Register creates a user.
func (s *AuthServer) Register(ctx context.Context, req *authv1.RegisterRequest) (*authv1.RegisterResponse, error) {
	u, err := s.svc.Register(ctx, domain.RegisterInput{
		Email: req.GetEmail(), Password: req.GetPassword(), DisplayName: req.GetDisplayName(), ClientIP: clientIP(ctx)})
	if err != nil {
		return nil, err
	}
	return &authv1.RegisterResponse{User: userToProto(u)}, nil
}

// Login exchanges credentials for a token pair, or, with MFA on, for the
// ticket of the second step.
func (s *AuthServer) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	t, err := s.svc.Login(ctx, domain.LoginInput{Email: req.GetEmail(), Password: req.GetPassword(), ClientIP: clientIP(ctx)})
	if err != nil {
		return nil, err
	}
	if t.MFAToken != "" {
		required := true
		return &authv1.LoginResponse{MfaRequired: &required, MfaToken: &t.MFAToken, ExpiresIn: seconds(t.ExpiresIn)}, nil
	}
	return &authv1.LoginResponse{AccessToken: t.Access.Raw, RefreshToken: t.Refresh, TokenType: "Bearer", ExpiresIn: seconds(t.ExpiresIn)}, nil
}

// LoginMFA completes a login with a one-time code.
func (s *AuthServer) LoginMFA(ctx context.Context, req *authv1.LoginMFARequest) (*authv1.LoginMFAResponse, error) {
	t, err := s.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: req.GetMfaToken(), Code: req.GetCode(), ClientIP: clientIP(ctx)})
	if err != nil {
		return nil, err
	}
	return &authv1.LoginMFAResponse{AccessToken: t.Access.Raw, RefreshToken: t.Refresh, TokenType: "Bearer", ExpiresIn: seconds(t.ExpiresIn)}, nil
}

// Refresh spends a refresh token for a new pair.
func (s *AuthServer) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	t, err := s.svc.Refresh(ctx, req.GetRefreshToken(), clientIP(ctx))
	if err != nil {
		return nil, err
	}
	return &authv1.RefreshResponse{AccessToken: t.Access.Raw, RefreshToken: t.Refresh, TokenType: "Bearer", ExpiresIn: seconds(t.ExpiresIn)}, nil
}

// Logout ends the caller's session and, if the refresh token is the caller's, its session.
func (s *AuthServer) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.svc.Logout(ctx, user, req.GetRefreshToken(), clientIP(ctx)); err != nil {
		return nil, err
	}
	return &authv1.LogoutResponse{}, nil
}

// GetMe returns the caller.
func (s *AuthServer) GetMe(ctx context.Context, _ *authv1.GetMeRequest) (*authv1.GetMeResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.GetMe(ctx, user)
	if err != nil {
		return nil, err
	}
	return &authv1.GetMeResponse{User: userToProto(u)}, nil
}

// SetUserRoles replaces a user's roles.
func (s *AuthServer) SetUserRoles(ctx context.Context, req *authv1.SetUserRolesRequest) (*authv1.SetUserRolesResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: user, UserID: req.GetUserId(), Roles: req.GetRoles(), ClientIP: clientIP(ctx)})
	if err != nil {
		return nil, err
	}
	return &authv1.SetUserRolesResponse{User: userToProto(u)}, nil
}

// GetJWKS returns the public verification keys.
func (s *AuthServer) GetJWKS(context.Context, *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	return jwksToProto(s.keys.PublicKeys()), nil
}

// clientIP is the end client's address, known only when the gateway called.
func clientIP(ctx context.Context) string {
	ip, _ := identity.ClientIPFrom(ctx)
	return ip
}

func seconds(d time.Duration) int32 {
	return int32(min(d/time.Second, math.MaxInt32))
}

// userToProto is the one place a user leaves the service: never a hash.
func userToProto(u domain.User) *authv1.User {
	return &authv1.User{Id: u.ID, Email: u.Email, DisplayName: u.DisplayName, Roles: u.Roles, Status: u.Status,
		MfaEnabled: u.MFAEnabled, CreatedAt: timestamppb.New(u.CreatedAt)}
}
