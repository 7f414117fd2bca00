package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// changes is what a batch's postings do to the accounts: each account moved
// once, by the sum of what the postings move it by, and the entries that
// explain it in the order the postings were decided. The books check each
// entry against the one before it on its account and the newest against the
// account's balance at the end of the INSERT (migration 0006), so one
// UPDATE and one INSERT carry the whole batch, however many of its postings
// share an account (a currency's settlement account, in every deposit).
type changes struct {
	index         map[string]int
	ids           []string
	deltas, holds []int64
	at            []time.Time
	wantBalance   map[string]int64 // by account, its newest entry's balance_after
	entries       []domain.Entry
}

func (c *changes) change(id string, delta, hold int64, at time.Time) {
	i, ok := c.index[id]
	if !ok {
		i = len(c.ids)
		c.index[id] = i
		c.ids, c.deltas, c.holds, c.at = append(c.ids, id), append(c.deltas, 0), append(c.holds, 0), append(c.at, at)
	}
	c.deltas[i] += delta
	c.holds[i] += hold
	if at.After(c.at[i]) {
		c.at[i] = at
	}
}

// sumChanges adds up the postings in the order they were decided.
func sumChanges(posted []*member) *changes {
	c := &changes{index: map[string]int{}, wantBalance: map[string]int64{}}
	for _, m := range posted {
		p := m.posting
		at := changedAt(p.Transfer)
		for _, e := range p.Entries {
			c.change(e.AccountID, e.Amount, 0, at)
			c.wantBalance[e.AccountID] = e.BalanceAfter
		}
		for _, h := range p.Holds {
			c.change(h.AccountID, 0, h.Delta, at)
		}
		c.entries = append(c.entries, p.Entries...)
	}
	return c
}

// writeAll writes every posting of a batch in one round trip and one
// statement per table: the transfers, the accounts, their entries, the
// usage totals, the idempotency records, and last the postings' audit
// events, so that, as in write, a record is only ever committed with its
// posting.
func (s *Store) writeAll(ctx context.Context, tx postgres.BatchSender, ms []*member) error {
	var posted []*member
	for _, m := range ms {
		if m.posting != nil {
			posted = append(posted, m)
		}
	}
	if len(posted) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	queueTransfers(b, posted)
	c := sumChanges(posted)
	b.Queue(`UPDATE ledger.accounts a SET balance = a.balance + v.delta, held = a.held + v.hold, updated_at = v.at
		FROM unnest($1::text[]::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS v(id, delta, hold, at)
		WHERE a.id = v.id RETURNING a.id::text, a.balance`, c.ids, c.deltas, c.holds, c.at)
	if len(c.entries) > 0 {
		queueEntries(b, c.entries)
	}
	usageRows := queueUsage(b, posted)
	queueKeys(b, posted)
	events := make([]audit.Event, len(posted))
	for i, m := range posted {
		events[i] = auditEvent(m.ctx, m.posting.Event)
	}
	if err := s.audit.QueueAll(b, events); err != nil {
		return fmt.Errorf("audit %d postings: %w", len(posted), err)
	}
	return s.readAll(tx.SendBatch(ctx, b), posted, c, usageRows)
}

// readAll reads writeAll's batch: every statement must succeed and touch
// every row it names, and every balance must be where the entries say.
func (s *Store) readAll(br pgx.BatchResults, posted []*member, c *changes, usageRows int64) (err error) {
	defer func() { err = errors.Join(err, br.Close()) }()
	if err := execRows(br, int64(len(posted)), "store transfers"); err != nil {
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("update accounts: %w", err)
	}
	var id string
	var balance int64
	n := 0
	_, err = pgx.ForEachRow(rows, []any{&id, &balance}, func() error {
		n++
		if w, ok := c.wantBalance[id]; ok && w != balance {
			return unbalanced(id, balance, w)
		}
		return nil
	})
	if err == nil && n != len(c.ids) {
		err = fmt.Errorf("%d of %d rows updated", n, len(c.ids))
	}
	if err != nil {
		return fmt.Errorf("update accounts: %w", err)
	}
	if len(c.entries) > 0 {
		if err := execRows(br, int64(len(c.entries)), "store entries"); err != nil {
			return err
		}
	}
	if usageRows > 0 {
		if err := execRows(br, usageRows, "update usage"); err != nil {
			return err
		}
	}
	if err := execRows(br, int64(len(posted)), "store idempotency records"); err != nil {
		return err
	}
	if tag, err := br.Exec(); err != nil || tag.RowsAffected() != int64(len(posted)) {
		if err == nil {
			err = fmt.Errorf("%d of %d rows", tag.RowsAffected(), len(posted))
		}
		return fmt.Errorf("audit %d postings: %w", len(posted), s.audit.AppendFailed(err))
	}
	return nil
}

// execRows reads one statement's result and checks it touched want rows.
func execRows(br pgx.BatchResults, want int64, what string) error {
	tag, err := br.Exec()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tag.RowsAffected() != want {
		return fmt.Errorf("%s: %d of %d rows", what, tag.RowsAffected(), want)
	}
	return nil
}

// queueTransfers inserts the batch's new transfers in one statement.
func queueTransfers(b *pgx.Batch, posted []*member) {
	n := len(posted)
	ids, from, to, currency, desc := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	status, kind, by, hold := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amount, created := make([]int64, n), make([]time.Time, n)
	for i, m := range posted {
		t := m.posting.Transfer
		ids[i], from[i], to[i], currency[i], desc[i] = t.ID, t.From, t.To, t.Currency, t.Description
		status[i], kind[i], by[i], hold[i] = string(t.Status), string(t.Kind), t.InitiatedBy, string(t.HoldReason)
		amount[i], created[i] = t.Amount, t.CreatedAt
	}
	b.Queue(`INSERT INTO ledger.transfers (id, from_account_id, to_account_id, amount, currency, description,
			status, kind, initiated_by, created_at, hold_reason)
		SELECT * FROM unnest($1::text[]::uuid[], $2::text[]::uuid[], $3::text[]::uuid[], $4::bigint[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::text[]::uuid[], $10::timestamptz[], $11::text[])`,
		ids, from, to, amount, currency, desc, status, kind, by, created, hold)
}

// queueUsage adds the batch's usage to each locked usage row in one
// statement and returns how many rows it changes.
func queueUsage(b *pgx.Batch, posted []*member) int64 {
	sum := map[usageKey]int64{}
	var keys []usageKey
	for _, m := range posted {
		if m.locks.UsageUser == "" || m.posting.UsageDelta == 0 {
			continue
		}
		k := usageOf(m.locks)
		if _, ok := sum[k]; !ok {
			keys = append(keys, k)
		}
		sum[k] += m.posting.UsageDelta
	}
	if len(keys) == 0 {
		return 0
	}
	users, days, kinds, deltas := make([]string, len(keys)), make([]time.Time, len(keys)), make([]string, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		users[i], days[i], kinds[i], deltas[i] = k.user, k.day, string(k.kind), sum[k]
	}
	b.Queue(`UPDATE ledger.daily_usage u SET amount = u.amount + v.delta
		FROM unnest($1::text[]::uuid[], $2::date[], $3::text[], $4::bigint[]) AS v(user_id, day, kind, delta)
		WHERE u.user_id = v.user_id AND u.day = v.day AND u.kind = v.kind`, users, days, kinds, deltas)
	return int64(len(keys))
}

// queueKeys inserts the batch's idempotency records in one statement.
func queueKeys(b *pgx.Batch, posted []*member) {
	n := len(posted)
	users, keys, ids := make([]string, n), make([]string, n), make([]string, n)
	fps, responses := make([][]byte, n), make([][]byte, n)
	created := make([]time.Time, n)
	for i, m := range posted {
		c, p := m.locks.Claim, m.posting
		users[i], keys[i], ids[i] = c.UserID, c.Key, p.Transfer.ID
		fps[i], responses[i], created[i] = c.Fingerprint[:], p.Response, p.Transfer.CreatedAt
	}
	b.Queue(`INSERT INTO ledger.idempotency_keys (user_id, key, fingerprint, response, transfer_id, created_at)
		SELECT * FROM unnest($1::text[]::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::text[]::uuid[], $6::timestamptz[])`,
		users, keys, fps, responses, ids, created)
}
