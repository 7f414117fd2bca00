package domain

import (
	"context"
	"slices"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// Page sizes for ListEntries.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// GetTransfer returns one transfer. Who may see it was decided by the
// platform's ownership check before this runs.
func (s *Service) GetTransfer(ctx context.Context, id string) (Transfer, error) {
	id, ok := identity.CanonicalID(id)
	if !ok {
		return Transfer{}, ErrTransferNotFound
	}
	return s.store.Transfer(ctx, id)
}

// QueueCursor is a position in the approval queue, which is ordered by
// (CreatedAt, ID).
type QueueCursor struct {
	CreatedAt time.Time
	ID        string
}

// QueuePage is one page of the approval queue.
type QueuePage struct {
	Transfers []Transfer
	Next      *QueueCursor // pass as after for the next page; nil on the last page
}

// PendingTransfers returns the approval queue, oldest first: every transfer
// and deposit waiting for a second person, after the cursor (nil for the
// oldest). size 0 means DefaultPageSize; larger than MaxPageSize is clamped.
// Who may read it (managers and admins) was decided by the platform.
func (s *Service) PendingTransfers(ctx context.Context, after *QueueCursor, size int) (QueuePage, error) {
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	if after != nil {
		id, ok := identity.CanonicalID(after.ID)
		if !ok {
			return QueuePage{}, errs.InvalidField("pageToken", "invalid page token")
		}
		after = &QueueCursor{CreatedAt: after.CreatedAt.UTC(), ID: id}
	}
	ts, err := s.store.PendingTransfers(ctx, after, size+1)
	if err != nil {
		return QueuePage{}, err
	}
	var page QueuePage
	if len(ts) > size {
		ts = ts[:size]
		last := ts[size-1]
		page.Next = &QueueCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	page.Transfers = ts
	return page, nil
}

// EntryPage is one page of an account's history.
type EntryPage struct {
	Entries []Entry
	Next    int64 // pass as before for the next page; 0 on the last page
}

// ListEntries returns an account's entries newest first, starting below the
// cursor before (0 for the newest). size 0 means DefaultPageSize; larger
// than MaxPageSize is clamped.
func (s *Service) ListEntries(ctx context.Context, accountID string, before int64, size int) (EntryPage, error) {
	id, ok := identity.CanonicalID(accountID)
	if !ok || before < 0 {
		return EntryPage{}, ErrAccountNotFound
	}
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	accts, err := s.store.Accounts(ctx, []string{id})
	if err != nil {
		return EntryPage{}, err
	}
	if len(accts) == 0 || accts[0].Kind != AccountCustomer {
		return EntryPage{}, ErrAccountNotFound
	}
	entries, err := s.store.Entries(ctx, id, before, size+1)
	if err != nil {
		return EntryPage{}, err
	}
	var page EntryPage
	if len(entries) > size {
		entries = entries[:size]
		page.Next = entries[size-1].Seq
	}
	page.Entries = entries
	return page, nil
}

// Owners resolves who owns a resource, for the platform's ownership check:
// an account has its owner, a transfer the owners of both sides (a
// settlement side has none). Unknown resources and ids are errs.NotFound.
func (s *Service) Owners(ctx context.Context, resource, id string) ([]string, error) {
	id, ok := identity.CanonicalID(id)
	if !ok {
		return nil, errs.New(errs.NotFound, resource+" not found")
	}
	switch resource {
	case "account":
		accts, err := s.store.Accounts(ctx, []string{id})
		if err != nil {
			return nil, err
		}
		if len(accts) == 0 || accts[0].Kind != AccountCustomer {
			return nil, ErrAccountNotFound
		}
		return []string{accts[0].OwnerID}, nil
	case "transfer":
		return s.store.TransferOwners(ctx, id)
	default:
		return nil, errs.New(errs.NotFound, "not found")
	}
}

// OpenAccount records a new account pushed by the accounts service. Opening
// the same account again with the same facts succeeds; with other facts it
// is ErrAccountConflict.
func (s *Service) OpenAccount(ctx context.Context, id, ownerID, currency string) error {
	id, okID := identity.CanonicalID(id)
	owner, okOwner := identity.CanonicalID(ownerID)
	if !okID || !okOwner || !validCurrency(currency) {
		return errs.New(errs.Invalid, "invalid account")
	}
	want := Account{ID: id, OwnerID: owner, Currency: currency, Status: AccountActive, Kind: AccountCustomer}
	got, err := s.store.OpenAccount(ctx, want, SettlementAccountID(currency))
	if err != nil {
		return err
	}
	if got.OwnerID != want.OwnerID || got.Currency != want.Currency || got.Kind != want.Kind {
		return ErrAccountConflict
	}
	return nil
}

// SetAccountStatus changes whether money may move on an account. When it
// returns, every transfer still in flight on the account has finished and
// every later one sees the new status.
func (s *Service) SetAccountStatus(ctx context.Context, id, status string) error {
	id, ok := identity.CanonicalID(id)
	if !ok {
		return ErrAccountNotFound
	}
	if !slices.Contains([]string{AccountActive, AccountFrozen, AccountClosed}, status) {
		return errs.InvalidField("status", "must be ACTIVE, FROZEN or CLOSED")
	}
	return s.store.SetAccountStatus(ctx, id, status)
}

// Balances returns the booked and held amounts of the customer accounts
// among ids that exist.
func (s *Service) Balances(ctx context.Context, ids []string) ([]Account, error) {
	canon := make([]string, 0, len(ids))
	for _, id := range ids {
		if c, ok := identity.CanonicalID(id); ok {
			canon = append(canon, c)
		}
	}
	if len(canon) == 0 {
		return nil, nil
	}
	accts, err := s.store.Accounts(ctx, canon)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(accts, func(a Account) bool { return a.Kind != AccountCustomer }), nil
}

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// MinKeyTTL is the shortest time an idempotency record is kept: docs/api.md
// promises a client at least a day to retry.
const MinKeyTTL = 24 * time.Hour

// Prune deletes idempotency records older than keyTTL (at least MinKeyTTL)
// and daily usage rows of days before yesterday, which no limit check reads
// any more. A background job calls it; it returns how many rows went.
func (s *Service) Prune(ctx context.Context, keyTTL time.Duration) (int64, error) {
	keyTTL = max(keyTTL, MinKeyTTL)
	now := s.clock()
	return s.store.Prune(ctx, now.Add(-keyTTL), UsageDay(now).AddDate(0, 0, -1))
}
