package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// OpenAccount creates a customer account and its currency's settlement
// account if they are missing, and returns the customer account as stored.
func (s *Store) OpenAccount(ctx context.Context, a domain.Account, settlementID string) (domain.Account, error) {
	var got domain.Account
	err := s.inTx(ctx, func(tx *postgres.BatchTx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO ledger.accounts (id, currency, status, kind, created_at, updated_at)
			VALUES ($1, $2, 'ACTIVE', 'settlement', now(), now()) ON CONFLICT DO NOTHING`, settlementID, a.Currency)
		b.Queue(`INSERT INTO ledger.accounts (id, owner_id, currency, status, kind, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'customer', now(), now()) ON CONFLICT (id) DO NOTHING`, a.ID, a.OwnerID, a.Currency, a.Status)
		b.Queue(`SELECT `+accountColumns+` FROM ledger.accounts a WHERE a.id = $1`, a.ID)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("open account: %w", err)
			}
		}
		if err := br.QueryRow().Scan(&got.ID, &got.OwnerID, &got.Currency, &got.Status, &got.Kind, &got.Balance, &got.Held); err != nil {
			return fmt.Errorf("open account: %w", err)
		}
		return br.Close()
	})
	return got, err
}

// SetAccountStatus changes a customer account's status. The UPDATE waits for
// the row lock, so it returns only after every transfer holding the account
// has committed, and every transfer after it reads the new status.
func (s *Store) SetAccountStatus(ctx context.Context, id, status string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE ledger.accounts SET status = $2, updated_at = now()
		WHERE id = $1 AND kind = 'customer'`, id, status)
	if err != nil {
		return mapErr(fmt.Errorf("set account status: %w", err))
	}
	if tag.RowsAffected() == 0 {
		return domain.ErrAccountNotFound
	}
	return nil
}

// Prune deletes old idempotency records and usage rows in small batches, so
// that it never holds many locks or a long transaction.
func (s *Store) Prune(ctx context.Context, keysBefore, usageBefore time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM ledger.idempotency_keys WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM ledger.idempotency_keys WHERE created_at < $1 LIMIT 1000))`, keysBefore)
		if err != nil {
			return total, mapErr(fmt.Errorf("prune idempotency keys: %w", err))
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 1000 {
			break
		}
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM ledger.daily_usage WHERE day < $1`, usageBefore)
	if err != nil {
		return total, mapErr(fmt.Errorf("prune usage: %w", err))
	}
	return total + tag.RowsAffected(), nil
}
