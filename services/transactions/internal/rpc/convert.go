package rpc

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

func transferProto(t domain.Transfer) *transactionsv1.Transfer {
	p := &transactionsv1.Transfer{
		Id:            t.ID,
		FromAccountId: t.From,
		ToAccountId:   t.To,
		Amount:        t.Amount,
		Currency:      t.Currency,
		Description:   t.Description,
		Status:        string(t.Status),
		InitiatedBy:   t.InitiatedBy,
		CreatedAt:     timestamppb.New(t.CreatedAt),
	}
	if t.DecidedBy != "" {
		// Optional in the proto, so the JSON omits it until someone decides.
		p.ApprovedBy = &t.DecidedBy
	}
	return p
}

func entryProto(e domain.Entry) *transactionsv1.Entry {
	return &transactionsv1.Entry{
		TransferId:            e.TransferID,
		Amount:                e.Amount,
		BalanceAfter:          e.BalanceAfter,
		CounterpartyAccountId: e.Counterparty,
		Description:           e.Description,
		CreatedAt:             timestamppb.New(e.CreatedAt),
	}
}
