package rpc

import (
	"context"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bastion-bank/bastion/services/auth/internal/domain"

	"github.com/bastion-bank/bastion/platform/identity"
)

// ListUsers returns a page of users to an admin.
func (s *AuthServer) ListUsers(ctx context.Context, req *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	page, err := s.svc.ListUsers(ctx, domain.ListUsersInput{Actor: user, PageSize: int(req.GetPageSize()),
		PageToken: req.GetPageToken(), Email: req.GetEmail()})
	if err != nil {
		return nil, err
	}
	out := &authv1.ListUsersResponse{Users: make([]*authv1.User, 0, len(page.Users)), NextPageToken: page.NextPageToken}
	for _, u := range page.Users {
		out.Users = append(out.Users, userToProto(u))
	}
	return out, nil
}

// DisableUser disables a user and revokes their tokens.
func (s *AuthServer) DisableUser(ctx context.Context, req *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.DisableUser(ctx, domain.SetStatusInput{Actor: user, UserID: req.GetUserId(), Reason: req.GetReason(), ClientIP: clientIP(ctx)})
	if err != nil {
		return nil, err
	}
	return &authv1.DisableUserResponse{User: userToProto(u)}, nil
}

// EnableUser enables a disabled user.
func (s *AuthServer) EnableUser(ctx context.Context, req *authv1.EnableUserRequest) (*authv1.EnableUserResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.EnableUser(ctx, domain.SetStatusInput{Actor: user, UserID: req.GetUserId(), Reason: req.GetReason(), ClientIP: clientIP(ctx)})
	if err != nil {
		return nil, err
	}
	return &authv1.EnableUserResponse{User: userToProto(u)}, nil
}

// ChangePassword replaces the caller's password and ends their other sessions.
func (s *AuthServer) ChangePassword(ctx context.Context, req *authv1.ChangePasswordRequest) (*authv1.ChangePasswordResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	err = s.svc.ChangePassword(ctx, domain.ChangePasswordInput{Caller: user, Current: req.GetCurrentPassword(),
		New: req.GetNewPassword(), ClientIP: clientIP(ctx)})
	if err != nil {
		return nil, err
	}
	return &authv1.ChangePasswordResponse{}, nil
}

// ListSessions lists the caller's live sessions.
func (s *AuthServer) ListSessions(ctx context.Context, _ *authv1.ListSessionsRequest) (*authv1.ListSessionsResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	sessions, err := s.svc.Sessions(ctx, user)
	if err != nil {
		return nil, err
	}
	out := &authv1.ListSessionsResponse{Sessions: make([]*authv1.Session, 0, len(sessions))}
	for _, v := range sessions {
		out.Sessions = append(out.Sessions, &authv1.Session{Id: v.ID, CreatedAt: timestamppb.New(v.CreatedAt),
			LastUsedAt: timestamppb.New(v.LastUsedAt), Current: v.Current})
	}
	return out, nil
}

// EnrollTOTP starts the caller's TOTP enrolment.
func (s *AuthServer) EnrollTOTP(ctx context.Context, _ *authv1.EnrollTOTPRequest) (*authv1.EnrollTOTPResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.svc.EnrollTOTP(ctx, user, clientIP(ctx))
	if err != nil {
		return nil, err
	}
	return &authv1.EnrollTOTPResponse{Secret: e.Secret, OtpauthUri: e.URI}, nil
}

// VerifyTOTP turns the caller's MFA on with a code of the new secret.
func (s *AuthServer) VerifyTOTP(ctx context.Context, req *authv1.VerifyTOTPRequest) (*authv1.VerifyTOTPResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.VerifyTOTP(ctx, user, req.GetCode(), clientIP(ctx))
	if err != nil {
		return nil, err
	}
	return &authv1.VerifyTOTPResponse{User: userToProto(u)}, nil
}

// RevokeSession ends one of the caller's sessions.
func (s *AuthServer) RevokeSession(ctx context.Context, req *authv1.RevokeSessionRequest) (*authv1.RevokeSessionResponse, error) {
	user, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.svc.RevokeSession(ctx, user, req.GetSessionId(), clientIP(ctx)); err != nil {
		return nil, err
	}
	return &authv1.RevokeSessionResponse{}, nil
}
