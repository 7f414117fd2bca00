package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// writeMode says how write stores a posting: Move inserts a new transfer
// with its idempotency record and the caller's usage row; Decide updates an
// existing transfer and finds the usage row through it.
type writeMode struct {
	insert    bool
	claim     *domain.Claim
	usageUser string
	day       time.Time
}

// write stores a posting and appends its audit event in one round trip,
// and checks that every balance the database computed equals the entry's
// balance_after. The audit insert is queued last: if any statement before it
// fails, Postgres skips it, and if a balance differs the transaction rolls
// back with it, so a record is only ever committed with its posting.
func (s *Store) write(ctx context.Context, tx postgres.BatchSender, p *domain.Posting, m writeMode) error {
	t := p.Transfer
	b := &pgx.Batch{}
	if m.insert {
		b.Queue(`INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, description,
				status, kind, initiated_by, created_at, hold_reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			t.ID, t.From, t.To, t.Amount, t.Currency, t.Description, t.Status, t.Kind, t.InitiatedBy, t.CreatedAt, t.HoldReason)
	} else {
		b.Queue(`UPDATE ledger.transfers SET status = $2, decided_by = $3, decided_at = $4, reason = $5 WHERE id = $1`,
			t.ID, t.Status, t.DecidedBy, t.DecidedAt, t.Reason)
	}
	ids, deltas, holds := accountChanges(p)
	b.Queue(`UPDATE ledger.accounts a SET balance = a.balance + v.delta, held = a.held + v.hold, updated_at = $4
		FROM unnest($1::text[]::uuid[], $2::bigint[], $3::bigint[]) AS v(id, delta, hold)
		WHERE a.id = v.id RETURNING a.id::text, a.balance`, ids, deltas, holds, changedAt(t))
	if len(p.Entries) > 0 {
		queueEntries(b, p.Entries)
	}
	if p.UsageDelta != 0 {
		if m.insert {
			b.Queue(`UPDATE ledger.daily_usage SET amount = amount + $3 WHERE user_id = $1 AND day = $2 AND kind = $4`,
				m.usageUser, m.day, p.UsageDelta, t.Kind)
		} else {
			b.Queue(`UPDATE ledger.daily_usage u SET amount = greatest(u.amount + $2, 0) FROM ledger.transfers t
				WHERE t.id = $1 AND u.user_id = t.initiated_by AND u.day = (t.created_at AT TIME ZONE 'UTC')::date
					AND u.kind = t.kind`,
				t.ID, p.UsageDelta)
		}
	}
	if m.claim != nil {
		b.Queue(`INSERT INTO ledger.idempotency_keys (user_id, key, fingerprint, response, transfer_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			m.claim.UserID, m.claim.Key, m.claim.Fingerprint[:], p.Response, t.ID, t.CreatedAt)
	}
	writes := b.Len()
	if err := s.queueAudit(ctx, b, p.Event); err != nil {
		return fmt.Errorf("audit %s: %w", p.Event.Action, err)
	}
	return s.readWrites(tx.SendBatch(ctx, b), writes, p, len(ids))
}

// readWrites reads write's batch: every statement must succeed, the
// accounts update must touch every account and leave each balance where the
// entries say. The audit insert follows the writes.
func (s *Store) readWrites(br pgx.BatchResults, statements int, p *domain.Posting, accounts int) (err error) {
	defer func() { err = errors.Join(err, br.Close()) }()
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("store transfer: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("update accounts: %w", err)
	}
	want := make(map[string]int64, len(p.Entries))
	for _, e := range p.Entries {
		want[e.AccountID] = e.BalanceAfter
	}
	var id string
	var balance int64
	n := 0
	_, err = pgx.ForEachRow(rows, []any{&id, &balance}, func() error {
		n++
		if w, ok := want[id]; ok && w != balance {
			return unbalanced(id, balance, w)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update accounts: %w", err)
	}
	if n != accounts {
		return fmt.Errorf("update accounts: %d of %d rows updated", n, accounts)
	}
	for range statements - 2 { // entries, usage, idempotency record
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("store posting: %w", err)
		}
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("audit %s: %w", p.Event.Action, s.audit.AppendFailed(err))
	}
	return nil
}

// queueEntries inserts the entries in one statement, in their order: the
// books check that each continues the one before it on its account.
func queueEntries(b *pgx.Batch, entries []domain.Entry) {
	n := len(entries)
	tids, accts, counter := make([]string, n), make([]string, n), make([]string, n)
	amounts, after, at := make([]int64, n), make([]int64, n), make([]time.Time, n)
	for i, e := range entries {
		tids[i], accts[i], counter[i] = e.TransferID, e.AccountID, e.Counterparty
		amounts[i], after[i], at[i] = e.Amount, e.BalanceAfter, e.CreatedAt
	}
	b.Queue(`INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at)
		SELECT v.transfer_id, v.account_id, v.counterparty_account_id, v.amount, v.balance_after, v.created_at
		FROM unnest($1::text[]::uuid[], $2::text[]::uuid[], $3::text[]::uuid[], $4::bigint[], $5::bigint[], $6::timestamptz[])
			WITH ORDINALITY AS v(transfer_id, account_id, counterparty_account_id, amount, balance_after, created_at, i)
		ORDER BY v.i`,
		tids, accts, counter, amounts, after, at)
}

// accountChanges sums a posting's balance and hold changes per account.
func accountChanges(p *domain.Posting) (ids []string, deltas, holds []int64) {
	index := map[string]int{}
	at := func(id string) int {
		i, ok := index[id]
		if !ok {
			i = len(ids)
			index[id] = i
			ids, deltas, holds = append(ids, id), append(deltas, 0), append(holds, 0)
		}
		return i
	}
	for _, e := range p.Entries {
		deltas[at(e.AccountID)] += e.Amount
	}
	for _, h := range p.Holds {
		holds[at(h.AccountID)] += h.Delta
	}
	return ids, deltas, holds
}

func changedAt(t domain.Transfer) time.Time {
	if !t.DecidedAt.IsZero() {
		return t.DecidedAt
	}
	return t.CreatedAt
}
