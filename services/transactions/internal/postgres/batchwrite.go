package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// round is one step of a batch's writes: at most one change per account,
// and the entries that explain the balance changes. The books check each
// entry against its account's balance at the end of its INSERT statement
// (migration 0004), so an account that several postings of a batch move
// is moved, and its entries booked, once per round, in arrival order.
type round struct {
	index         map[string]int
	ids           []string
	deltas, holds []int64
	at            []time.Time
	wantBalance   map[string]int64
	entries       []domain.Entry
}

func (r *round) change(id string, delta, hold int64, at time.Time) {
	i, ok := r.index[id]
	if !ok {
		i = len(r.ids)
		r.index[id] = i
		r.ids, r.deltas, r.holds, r.at = append(r.ids, id), append(r.deltas, 0), append(r.holds, 0), append(r.at, at)
	}
	r.deltas[i] += delta
	r.holds[i] += hold
}

// planRounds puts each posting in the first round after the last one that
// changed any of its accounts, so that rounds are as few as the longest
// chain of postings on one account.
func planRounds(posted []*member) []*round {
	var rounds []*round
	last := map[string]int{}
	for _, m := range posted {
		p := m.posting
		n := 0
		for _, id := range touched(p) {
			if l, ok := last[id]; ok && l+1 > n {
				n = l + 1
			}
		}
		for len(rounds) <= n {
			rounds = append(rounds, &round{index: map[string]int{}, wantBalance: map[string]int64{}})
		}
		r, at := rounds[n], changedAt(p.Transfer)
		for _, e := range p.Entries {
			r.change(e.AccountID, e.Amount, 0, at)
			r.wantBalance[e.AccountID] = e.BalanceAfter
		}
		for _, h := range p.Holds {
			r.change(h.AccountID, 0, h.Delta, at)
		}
		r.entries = append(r.entries, p.Entries...)
		for _, id := range touched(p) {
			last[id] = n
		}
	}
	return rounds
}

// touched returns the accounts a posting changes.
func touched(p *domain.Posting) []string {
	var ids []string
	for _, e := range p.Entries {
		ids = append(ids, e.AccountID)
	}
	for _, h := range p.Holds {
		ids = append(ids, h.AccountID)
	}
	return ids
}

// writeAll writes every posting of a batch in one round trip: the
// transfers, then round by round the accounts and their entries, the usage
// totals, the idempotency records, and last each posting's audit event, so
// that, as in write, a record is only ever committed with its posting.
func (s *Store) writeAll(ctx context.Context, tx pgx.Tx, ms []*member) error {
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
	rounds := planRounds(posted)
	for _, r := range rounds {
		b.Queue(`UPDATE ledger.accounts a SET balance = a.balance + v.delta, held = a.held + v.hold, updated_at = v.at
			FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS v(id, delta, hold, at)
			WHERE a.id = v.id RETURNING a.id::text, a.balance`, r.ids, r.deltas, r.holds, r.at)
		if len(r.entries) > 0 {
			queueEntries(b, r.entries)
		}
	}
	usageRows := queueUsage(b, posted)
	queueKeys(b, posted)
	for _, m := range posted {
		if err := s.queueAudit(m.ctx, b, m.posting.Event); err != nil {
			return fmt.Errorf("audit %s: %w", m.posting.Event.Action, err)
		}
	}
	return s.readAll(tx.SendBatch(ctx, b), posted, rounds, usageRows)
}

// readAll reads writeAll's batch: every statement must succeed and touch
// every row it names, and every balance must be where the entries say.
func (s *Store) readAll(br pgx.BatchResults, posted []*member, rounds []*round, usageRows int64) (err error) {
	defer func() { err = errors.Join(err, br.Close()) }()
	if err := execRows(br, int64(len(posted)), "store transfers"); err != nil {
		return err
	}
	for _, r := range rounds {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("update accounts: %w", err)
		}
		var id string
		var balance int64
		n := 0
		_, err = pgx.ForEachRow(rows, []any{&id, &balance}, func() error {
			n++
			if w, ok := r.wantBalance[id]; ok && w != balance {
				return unbalanced(id, balance, w)
			}
			return nil
		})
		if err == nil && n != len(r.ids) {
			err = fmt.Errorf("%d of %d rows updated", n, len(r.ids))
		}
		if err != nil {
			return fmt.Errorf("update accounts: %w", err)
		}
		if len(r.entries) > 0 {
			if err := execRows(br, int64(len(r.entries)), "store entries"); err != nil {
				return err
			}
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
	for _, m := range posted {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("audit %s: %w", m.posting.Event.Action, s.audit.AppendFailed(err))
		}
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
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::uuid[], $10::timestamptz[], $11::text[])`,
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
		FROM unnest($1::uuid[], $2::date[], $3::text[], $4::bigint[]) AS v(user_id, day, kind, delta)
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
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::uuid[], $6::timestamptz[])`,
		users, keys, fps, responses, ids, created)
}
