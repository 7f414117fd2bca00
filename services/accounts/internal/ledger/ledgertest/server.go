package rpc_test

import (
	"context"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
)

// ledgerServer serves the transactions service's internal LedgerService
// from the domain's fake ledger, so these tests cross a real mTLS hop with
// the real chain (and its caller rule) without the ledger's database.
type ledgerServer struct {
	transactionsv1.UnimplementedLedgerServiceServer
	l *domaintest.Ledger
}

func (s *ledgerServer) OpenLedgerAccount(ctx context.Context, req *transactionsv1.OpenLedgerAccountRequest) (*transactionsv1.OpenLedgerAccountResponse, error) {
	err := s.l.OpenAccount(ctx, domain.Account{ID: req.GetAccountId(), OwnerID: req.GetOwnerId(), Currency: req.GetCurrency()})
	return &transactionsv1.OpenLedgerAccountResponse{}, err
}

func (s *ledgerServer) SetLedgerAccountStatus(ctx context.Context, req *transactionsv1.SetLedgerAccountStatusRequest) (*transactionsv1.SetLedgerAccountStatusResponse, error) {
	err := s.l.SetStatus(ctx, req.GetAccountId(), domain.Status(req.GetStatus()))
	return &transactionsv1.SetLedgerAccountStatusResponse{}, err
}

func (s *ledgerServer) GetBalances(ctx context.Context, req *transactionsv1.GetBalancesRequest) (*transactionsv1.GetBalancesResponse, error) {
	got, err := s.l.Balances(ctx, req.GetAccountIds())
	if err != nil {
		return nil, err
	}
	resp := &transactionsv1.GetBalancesResponse{}
	for id, b := range got {
		resp.Balances = append(resp.Balances, &transactionsv1.Balance{AccountId: id, Balance: b.Booked, Held: b.Held})
	}
	return resp, nil
}
