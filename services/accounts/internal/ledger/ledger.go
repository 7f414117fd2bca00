// Package ledger implements domain.Ledger with the transactions service's
// internal LedgerService, called over mTLS through platform/grpcclient.
package ledger

import (
	"context"
	"fmt"
	"sync"

	"github.com/bastion-bank/bastion/platform/errs"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// maxBatch is the most ids GetBalances accepts in one call (its
// protovalidate rule).
const maxBatch = 100

// Client is a domain.Ledger backed by a LedgerService client.
type Client struct {
	c transactionsv1.LedgerServiceClient

	mu    sync.Mutex
	queue []*lookup // one-account look-ups waiting for a shared call
	busy  int       // one-account look-ups in flight, alone or shared
}

var _ domain.Ledger = (*Client)(nil)

// New returns a Client calling c, normally
// transactionsv1.NewLedgerServiceClient on a grpcclient connection.
func New(c transactionsv1.LedgerServiceClient) *Client { return &Client{c: c} }

// OpenAccount implements domain.Ledger.
func (l *Client) OpenAccount(ctx context.Context, a domain.Account) error {
	_, err := l.c.OpenLedgerAccount(ctx, &transactionsv1.OpenLedgerAccountRequest{
		AccountId: a.ID, OwnerId: a.OwnerID, Currency: a.Currency,
	})
	return mapErr("open ledger account", err)
}

// SetStatus implements domain.Ledger.
func (l *Client) SetStatus(ctx context.Context, accountID string, status domain.Status) error {
	_, err := l.c.SetLedgerAccountStatus(ctx, &transactionsv1.SetLedgerAccountStatusRequest{
		AccountId: accountID, Status: string(status),
	})
	return mapErr("set ledger account status", err)
}

// Balances implements domain.Ledger. A page of several ids is asked for
// directly, in calls of at most 100 ids (one call for any page the domain
// asks for); the balance of one account shares a call with other readers'
// when the ledger is busy (see balance).
func (l *Client) Balances(ctx context.Context, ids []string) (map[string]domain.Balance, error) {
	if len(ids) == 1 {
		return l.balance(ctx, ids[0])
	}
	return l.balances(ctx, ids)
}

// balances asks the ledger for ids under ctx, in calls of at most maxBatch.
func (l *Client) balances(ctx context.Context, ids []string) (map[string]domain.Balance, error) {
	out := make(map[string]domain.Balance, len(ids))
	for start := 0; start < len(ids); start += maxBatch {
		if err := l.get(ctx, ids[start:min(start+maxBatch, len(ids))], out); err != nil {
			return nil, mapErr("get balances", err)
		}
	}
	return out, nil
}

// get makes one GetBalances call for ids and adds to out the balances the
// ledger knows; it returns the call's error unmapped.
func (l *Client) get(ctx context.Context, ids []string, out map[string]domain.Balance) error {
	resp, err := l.c.GetBalances(ctx, &transactionsv1.GetBalancesRequest{AccountIds: ids})
	if err != nil {
		return err
	}
	for _, b := range resp.GetBalances() {
		out[b.GetAccountId()] = domain.Balance{Booked: b.GetBalance(), Held: b.GetHeld()}
	}
	return nil
}

// mapErr turns the ledger's answer into what this service's caller may
// see. Only "try again later" crosses over as such; anything else the
// ledger says (a refusal, a validation error, a permission denial) is a
// fault between two services, not the end user's doing, so it becomes
// Internal rather than a 4xx the user would misread.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	switch errs.KindOf(err) {
	case errs.Unavailable, errs.RateLimited:
		return errs.Wrap(errs.Unavailable, "ledger unavailable, try again", fmt.Errorf("%s: %w", op, err))
	}
	return errs.Wrap(errs.Internal, "", fmt.Errorf("%s: %w", op, err))
}
