// Package ledgertest serves the transactions service's internal
// LedgerService from the domain's fake ledger, so tests of the accounts
// service cross a real mTLS hop, through the real interceptor chain and its
// caller rule, without the ledger's database.
package ledgertest

import (
	"context"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
)

// Server is a transactionsv1.LedgerServiceServer backed by a fake ledger.
type Server struct {
	transactionsv1.UnimplementedLedgerServiceServer
	Ledger *domaintest.Ledger
}

// OpenLedgerAccount records the account in the fake.
func (s *Server) OpenLedgerAccount(ctx context.Context, req *transactionsv1.OpenLedgerAccountRequest) (*transactionsv1.OpenLedgerAccountResponse, error) {
	err := s.Ledger.OpenAccount(ctx, domain.Account{ID: req.GetAccountId(), OwnerID: req.GetOwnerId(), Currency: req.GetCurrency()})
	if err != nil {
		return nil, err
	}
	return &transactionsv1.OpenLedgerAccountResponse{}, nil
}

// SetLedgerAccountStatus records the status in the fake.
func (s *Server) SetLedgerAccountStatus(ctx context.Context, req *transactionsv1.SetLedgerAccountStatusRequest) (*transactionsv1.SetLedgerAccountStatusResponse, error) {
	if err := s.Ledger.SetStatus(ctx, req.GetAccountId(), domain.Status(req.GetStatus())); err != nil {
		return nil, err
	}
	return &transactionsv1.SetLedgerAccountStatusResponse{}, nil
}

// GetBalances reports the fake's balances of the accounts it knows.
func (s *Server) GetBalances(ctx context.Context, req *transactionsv1.GetBalancesRequest) (*transactionsv1.GetBalancesResponse, error) {
	got, err := s.Ledger.Balances(ctx, req.GetAccountIds())
	if err != nil {
		return nil, err
	}
	resp := &transactionsv1.GetBalancesResponse{}
	for id, b := range got {
		resp.Balances = append(resp.Balances, &transactionsv1.Balance{AccountId: id, Balance: b.Booked, Held: b.Held})
	}
	return resp, nil
}
