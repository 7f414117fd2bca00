package rpc

import (
	"strings"

	"google.golang.org/protobuf/proto"
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
		Kind:          strings.ToUpper(string(t.Kind)),
	}
	// The optional fields are absent from the JSON unless they apply, so a
	// client can never mistake a rejecter for an approver.
	if t.HoldReason != domain.HoldNone {
		p.HoldReason = proto.String(string(t.HoldReason))
	}
	switch {
	case t.DecidedBy == "":
	case t.Status == domain.StatusRejected:
		p.RejectedBy, p.RejectionReason = proto.String(t.DecidedBy), proto.String(t.Reason)
	case t.Status == domain.StatusCompleted:
		p.ApprovedBy = proto.String(t.DecidedBy)
	}
	if t.Kind == domain.KindDeposit {
		p.Reference = proto.String(t.Description)
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
