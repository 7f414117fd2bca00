package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

const transferColumns = `t.id::text, t.from_account_id::text, t.to_account_id::text, t.amount, t.currency, t.description,
	t.status, t.kind, t.initiated_by::text, coalesce(t.decided_by::text, ''), t.reason, t.created_at, t.decided_at, t.hold_reason`

func scanTransfer(row pgx.Row) (domain.Transfer, error) {
	var t domain.Transfer
	var decidedAt *time.Time
	err := row.Scan(&t.ID, &t.From, &t.To, &t.Amount, &t.Currency, &t.Description,
		&t.Status, &t.Kind, &t.InitiatedBy, &t.DecidedBy, &t.Reason, &t.CreatedAt, &decidedAt, &t.HoldReason)
	if decidedAt != nil {
		t.DecidedAt = decidedAt.UTC()
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return t, err
}

// Transfer returns one transfer.
func (s *Store) Transfer(ctx context.Context, id string) (domain.Transfer, error) {
	t, err := scanTransfer(s.pool.QueryRow(ctx, `SELECT `+transferColumns+` FROM ledger.transfers t WHERE t.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Transfer{}, domain.ErrTransferNotFound
	}
	if err != nil {
		return domain.Transfer{}, mapErr(fmt.Errorf("read transfer: %w", err))
	}
	return t, nil
}

// TransferOwners returns the owners of both sides of a transfer.
func (s *Store) TransferOwners(ctx context.Context, id string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.owner_id::text FROM ledger.transfers t
		JOIN ledger.accounts a ON a.id IN (t.from_account_id, t.to_account_id)
		WHERE t.id = $1 AND a.owner_id IS NOT NULL`, id)
	if err != nil {
		return nil, mapErr(fmt.Errorf("read transfer owners: %w", err))
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, mapErr(fmt.Errorf("read transfer owners: %w", err))
	}
	if len(owners) == 0 {
		return nil, domain.ErrTransferNotFound
	}
	return owners, nil
}

// PendingTransfers returns the approval queue after the cursor, oldest
// first, through the partial index on pending transfers.
func (s *Store) PendingTransfers(ctx context.Context, after *domain.QueueCursor, limit int) ([]domain.Transfer, error) {
	at, id := time.Time{}, "00000000-0000-0000-0000-000000000000"
	if after != nil {
		at, id = after.CreatedAt, after.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+transferColumns+` FROM ledger.transfers t
		WHERE t.status = 'PENDING_APPROVAL' AND (t.created_at, t.id) > ($1, $2::uuid)
		ORDER BY t.created_at, t.id LIMIT $3`, at, id, limit)
	if err != nil {
		return nil, mapErr(fmt.Errorf("read approval queue: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Transfer, error) { return scanTransfer(r) })
	if err != nil {
		return nil, mapErr(fmt.Errorf("read approval queue: %w", err))
	}
	return out, nil
}

// Accounts returns the accounts among ids that exist.
func (s *Store) Accounts(ctx context.Context, ids []string) ([]domain.Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+accountColumns+` FROM ledger.accounts a WHERE a.id = ANY($1::text[]::uuid[]) ORDER BY a.id`, ids)
	if err != nil {
		return nil, mapErr(fmt.Errorf("read accounts: %w", err))
	}
	accts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Account, error) {
		var a domain.Account
		err := r.Scan(&a.ID, &a.OwnerID, &a.Currency, &a.Status, &a.Kind, &a.Balance, &a.Held)
		return a, err
	})
	if err != nil {
		return nil, mapErr(fmt.Errorf("read accounts: %w", err))
	}
	return accts, nil
}

// Entries returns an account's entries below before, newest first.
func (s *Store) Entries(ctx context.Context, accountID string, before int64, limit int) ([]domain.Entry, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.pool.Query(ctx, `SELECT e.seq, e.transfer_id::text, e.account_id::text, e.counterparty_account_id::text,
			e.amount, e.balance_after, t.description, e.created_at
		FROM ledger.entries e JOIN ledger.transfers t ON t.id = e.transfer_id
		WHERE e.account_id = $1 AND e.seq < $2 ORDER BY e.seq DESC LIMIT $3`, accountID, before, limit)
	if err != nil {
		return nil, mapErr(fmt.Errorf("read entries: %w", err))
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Entry, error) {
		var e domain.Entry
		err := r.Scan(&e.Seq, &e.TransferID, &e.AccountID, &e.Counterparty, &e.Amount, &e.BalanceAfter, &e.Description, &e.CreatedAt)
		e.CreatedAt = e.CreatedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, mapErr(fmt.Errorf("read entries: %w", err))
	}
	return entries, nil
}
