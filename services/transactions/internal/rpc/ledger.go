package rpc

import (
	"context"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// ledger serves the internal LedgerService. Only the accounts service may
// call it (the access rule names it; the platform checks its certificate).
type ledger struct {
	transactionsv1.UnimplementedLedgerServiceServer
	svc *domain.Service
}

func (h *ledger) OpenLedgerAccount(ctx context.Context, req *transactionsv1.OpenLedgerAccountRequest) (*transactionsv1.OpenLedgerAccountResponse, error) {
	if err := h.svc.OpenAccount(ctx, req.GetAccountId(), req.GetOwnerId(), req.GetCurrency()); err != nil {
		return nil, err
	}
	return &transactionsv1.OpenLedgerAccountResponse{}, nil
}

func (h *ledger) SetLedgerAccountStatus(ctx context.Context, req *transactionsv1.SetLedgerAccountStatusRequest) (*transactionsv1.SetLedgerAccountStatusResponse, error) {
	if err := h.svc.SetAccountStatus(ctx, req.GetAccountId(), req.GetStatus()); err != nil {
		return nil, err
	}
	return &transactionsv1.SetLedgerAccountStatusResponse{}, nil
}

func (h *ledger) GetBalances(ctx context.Context, req *transactionsv1.GetBalancesRequest) (*transactionsv1.GetBalancesResponse, error) {
	accts, err := h.svc.Balances(ctx, req.GetAccountIds())
	if err != nil {
		return nil, err
	}
	resp := &transactionsv1.GetBalancesResponse{Balances: make([]*transactionsv1.Balance, 0, len(accts))}
	for _, a := range accts {
		resp.Balances = append(resp.Balances, &transactionsv1.Balance{
			AccountId: a.ID, Currency: a.Currency, Balance: a.Balance, Held: a.Held,
		})
	}
	return resp, nil
}
