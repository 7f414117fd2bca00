package rpc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/wire"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

type transactions struct {
	transactionsv1.UnimplementedTransactionsServiceServer
	svc    *domain.Service
	events domain.Metrics
}

// EventReplay is the security event (platform/telemetry Security.Event) of
// an Idempotency-Key used again, with one of two reasons: the stored first
// answer was returned, or a different request under the key was refused.
// A client retrying is normal; a stream of either from one user is not.
const (
	EventReplay     = "idempotent_replay"
	ReasonReplayed  = "replayed"
	ReasonKeyReused = "key_reused"
)

func (h *transactions) CreateTransfer(ctx context.Context, req *transactionsv1.CreateTransferRequest) (*transactionsv1.CreateTransferResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	out, err := h.svc.Transfer(ctx, u, domain.TransferRequest{
		From: req.GetFromAccountId(), To: req.GetToAccountId(), Amount: req.GetAmount(),
		Currency: req.GetCurrency(), Description: req.GetDescription(), IdempotencyKey: req.GetIdempotencyKey(),
	})
	if err := h.replay(ctx, out, err); err != nil {
		return nil, err
	}
	return &transactionsv1.CreateTransferResponse{Transfer: transferProto(out.Transfer)}, nil
}

func (h *transactions) CreateDeposit(ctx context.Context, req *transactionsv1.CreateDepositRequest) (*transactionsv1.CreateDepositResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	out, err := h.svc.Deposit(ctx, u, domain.DepositRequest{
		AccountID: req.GetAccountId(), Amount: req.GetAmount(), Currency: req.GetCurrency(),
		Reference: req.GetReference(), IdempotencyKey: req.GetIdempotencyKey(),
	})
	if err := h.replay(ctx, out, err); err != nil {
		return nil, err
	}
	return &transactionsv1.CreateDepositResponse{Transfer: transferProto(out.Transfer)}, nil
}

// replay handles what an earlier use of the request's idempotency key
// decided, given the outcome and error of a money-moving call, and returns
// the error to answer with: a key reused for another request is reported
// and refused; a stored first response is reported and marked with the
// replay header.
func (h *transactions) replay(ctx context.Context, out domain.Outcome, err error) error {
	switch {
	case errors.Is(err, domain.ErrKeyReused):
		h.events.Event(ctx, EventReplay, ReasonKeyReused)
		return err
	case err != nil || !out.Replayed:
		return err
	}
	h.events.Event(ctx, EventReplay, ReasonReplayed)
	if err := grpc.SetHeader(ctx, metadata.Pairs(wire.Replayed, "true")); err != nil {
		return errs.Wrap(errs.Internal, "", fmt.Errorf("set %s header: %w", wire.Replayed, err))
	}
	return nil
}

func (h *transactions) GetTransfer(ctx context.Context, req *transactionsv1.GetTransferRequest) (*transactionsv1.GetTransferResponse, error) {
	t, err := h.svc.GetTransfer(ctx, req.GetTransferId())
	if err != nil {
		return nil, err
	}
	return &transactionsv1.GetTransferResponse{Transfer: transferProto(t)}, nil
}

func (h *transactions) ApproveTransfer(ctx context.Context, req *transactionsv1.ApproveTransferRequest) (*transactionsv1.ApproveTransferResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	t, err := h.svc.Approve(ctx, u, req.GetTransferId())
	if err != nil {
		return nil, err
	}
	return &transactionsv1.ApproveTransferResponse{Transfer: transferProto(t)}, nil
}

func (h *transactions) RejectTransfer(ctx context.Context, req *transactionsv1.RejectTransferRequest) (*transactionsv1.RejectTransferResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	t, err := h.svc.Reject(ctx, u, req.GetTransferId(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &transactionsv1.RejectTransferResponse{Transfer: transferProto(t)}, nil
}

func (h *transactions) ListTransfers(ctx context.Context, req *transactionsv1.ListTransfersRequest) (*transactionsv1.ListTransfersResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	page, err := h.svc.TransferQueue(ctx, u, req.GetPageToken(), int(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	resp := &transactionsv1.ListTransfersResponse{Transfers: make([]*transactionsv1.Transfer, 0, len(page.Transfers)), NextPageToken: page.NextPageToken}
	for _, t := range page.Transfers {
		resp.Transfers = append(resp.Transfers, transferProto(t))
	}
	return resp, nil
}

func (h *transactions) ListTransactions(ctx context.Context, req *transactionsv1.ListTransactionsRequest) (*transactionsv1.ListTransactionsResponse, error) {
	u, err := identity.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	page, err := h.svc.History(ctx, u, req.GetAccountId(), req.GetPageToken(), int(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	resp := &transactionsv1.ListTransactionsResponse{Entries: make([]*transactionsv1.Entry, 0, len(page.Entries)), NextPageToken: page.NextPageToken}
	for _, e := range page.Entries {
		resp.Entries = append(resp.Entries, entryProto(e))
	}
	return resp, nil
}
