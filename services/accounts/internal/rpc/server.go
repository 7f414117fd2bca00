package rpc

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/rbac"
	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// server implements accountsv1.AccountsServiceServer.
type server struct {
	accountsv1.UnimplementedAccountsServiceServer
	svc *domain.Service
}

// OpenAccount opens an account for the caller.
func (s *server) OpenAccount(ctx context.Context, req *accountsv1.OpenAccountRequest) (*accountsv1.OpenAccountResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.svc.Open(ctx, u, req.GetCurrency(), req.GetDisplayName())
	if err != nil {
		return nil, err
	}
	return &accountsv1.OpenAccountResponse{Account: toProto(v)}, nil
}

// ListAccounts returns one page of the caller's (or, for staff, an
// owner's) accounts.
func (s *server) ListAccounts(ctx context.Context, req *accountsv1.ListAccountsRequest) (*accountsv1.ListAccountsResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	page, err := s.svc.List(ctx, u, domain.ListQuery{
		OwnerID: req.GetOwnerId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if errors.Is(err, domain.ErrOtherOwner) {
		// A denial: the platform's chain counts and audits it as its own.
		return nil, &rbac.Denied{Reason: domain.ReasonOtherOwner, Err: domain.ErrOtherOwner}
	}
	if err != nil {
		return nil, err
	}
	resp := &accountsv1.ListAccountsResponse{
		Accounts:      make([]*accountsv1.Account, len(page.Accounts)),
		NextPageToken: page.NextPageToken,
	}
	for i, v := range page.Accounts {
		resp.Accounts[i] = toProto(v)
	}
	return resp, nil
}

// GetAccount returns one account; the platform has checked ownership.
func (s *server) GetAccount(ctx context.Context, req *accountsv1.GetAccountRequest) (*accountsv1.GetAccountResponse, error) {
	if _, err := identity.RequireUser(ctx); err != nil {
		return nil, err
	}
	v, err := s.svc.Get(ctx, req.GetAccountId())
	if err != nil {
		return nil, err
	}
	return &accountsv1.GetAccountResponse{Account: toProto(v)}, nil
}

// FreezeAccount freezes an account; the platform has checked the role.
func (s *server) FreezeAccount(ctx context.Context, req *accountsv1.FreezeAccountRequest) (*accountsv1.FreezeAccountResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.svc.Freeze(ctx, u, req.GetAccountId(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &accountsv1.FreezeAccountResponse{Account: toProto(v)}, nil
}

// UnfreezeAccount unfreezes an account; the platform has checked the role.
func (s *server) UnfreezeAccount(ctx context.Context, req *accountsv1.UnfreezeAccountRequest) (*accountsv1.UnfreezeAccountResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.svc.Unfreeze(ctx, u, req.GetAccountId(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &accountsv1.UnfreezeAccountResponse{Account: toProto(v)}, nil
}

// toProto is the account as docs/api.md shows it. The status reason and the
// actor who set it stay internal: they are for the audit trail and staff
// tools, not for the account's owner.
func toProto(v domain.View) *accountsv1.Account {
	return &accountsv1.Account{
		Id:               v.ID,
		OwnerId:          v.OwnerID,
		Currency:         v.Currency,
		DisplayName:      v.DisplayName,
		Status:           string(v.Status),
		Balance:          &accountsv1.Money{Currency: v.Currency, Amount: v.Balance},
		AvailableBalance: &accountsv1.Money{Currency: v.Currency, Amount: v.Available},
		CreatedAt:        timestamppb.New(v.CreatedAt),
	}
}
