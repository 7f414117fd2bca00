package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// errRetryAlone tells a member that its batch failed as a whole, by a
// statement rather than a lost database, and that it should run again in a
// transaction of its own.
var errRetryAlone = errors.New("batch failed: run each movement alone")

// maxBatchWait bounds a batch none of whose members has a deadline.
const maxBatchWait = 30 * time.Second

// runBatch is the committer's work: one movement alone exactly as before
// group commit, several in one transaction, and the outcome to each.
func (s *Store) runBatch(ms []*member) {
	if len(ms) == 1 {
		m := ms[0]
		m.done <- s.moveOne(m.ctx, m.locks, m.decide)
		return
	}
	ctx, cancel := batchContext(ms)
	defer cancel()
	err := s.moveBatch(ctx, ms)
	if err != nil {
		s.moves.failed.Add(1)
	}
	for _, m := range ms {
		switch {
		case err == nil:
			m.done <- m.err
		case errs.KindOf(err) == errs.Unavailable:
			// Rolled back, or committed with every idempotency record:
			// each client retries with its key, as after a lone failure.
			m.done <- err
		default:
			m.done <- errRetryAlone
		}
	}
}

// batchContext is the context of a batch's transaction: no one member's
// cancellation ends it, since the others still wait for it, but it ends by
// the latest of their deadlines. It carries the first member's values
// (trace) for the database spans; each audit record takes its own member's.
func batchContext(ms []*member) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, m := range ms {
		d, ok := m.ctx.Deadline()
		if !ok {
			d = time.Now().Add(maxBatchWait)
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(ms[0].ctx), last)
}

// moveBatch decides and writes several movements in one transaction, in
// four round trips whatever their number: one that begins the transaction,
// claims every idempotency key and reads any stored record; one that locks
// the usage rows and then the accounts of every claimed movement, each set
// in the global order; then, in memory, each movement in turn is decided against
// the state the ones before it left; one that writes all the postings;
// COMMIT.
// A refused movement writes nothing and changes nothing the others see.
func (s *Store) moveBatch(ctx context.Context, ms []*member) error {
	return s.inTx(ctx, func(tx *postgres.BatchTx) error {
		stored, err := claimAll(ctx, tx, ms)
		if err != nil {
			return err
		}
		usage, accts, err := lockAll(ctx, tx, ms, stored)
		if err != nil {
			return err
		}
		decideAll(ms, stored, usage, accts)
		return s.writeAll(ctx, tx, ms)
	})
}

// readStoredSQL reads the idempotency records of the keys $1, $2 (users
// and keys, in member order), each with its member's ordinal. Each key is
// one probe of the primary key whatever the planner's statistics say: LIMIT
// 1 (the key is unique) keeps the lookup a subquery run per key, so it
// cannot become a hash join over the whole table. It was one, chosen from
// the stale statistics of a young, fast-growing table, reading every record
// on every batch (docs/performance.md, "PostgreSQL per transfer").
const readStoredSQL = `SELECT c.i, k.fingerprint, k.response
	FROM unnest($1::text[]::uuid[], $2::text[]) WITH ORDINALITY AS c(user_id, key, i)
	CROSS JOIN LATERAL (SELECT k.fingerprint, k.response FROM ledger.idempotency_keys k
		WHERE k.user_id = c.user_id AND k.key = c.key LIMIT 1) k`

// claimAll takes each member's idempotency lock (a try: a key in flight
// elsewhere refuses only its member) and then, in a later statement so
// that it sees every record committed before the lock was taken, reads the
// stored records. It sets each member's claimed flag and returns the
// stored records by member.
func claimAll(ctx context.Context, tx postgres.BatchSender, ms []*member) (stored []*domain.Stored, err error) {
	lockIDs := make([]int64, len(ms))
	users, keys := make([]string, len(ms)), make([]string, len(ms))
	for i, m := range ms {
		c := m.locks.Claim
		lockIDs[i], users[i], keys[i] = claimLockID(c.UserID, c.Key), c.UserID, c.Key
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_try_advisory_xact_lock(c.id) FROM unnest($1::bigint[]) WITH ORDINALITY AS c(id, i) ORDER BY c.i`, lockIDs)
	b.Queue(readStoredSQL, users, keys)
	br := tx.SendBatch(ctx, b)
	defer func() { err = errors.Join(err, br.Close()) }()
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("claim idempotency keys: %w", err)
	}
	var claimed bool
	n := 0
	_, err = pgx.ForEachRow(rows, []any{&claimed}, func() error {
		if n < len(ms) {
			ms[n].claimed = claimed
		}
		n++
		return nil
	})
	if err == nil && n != len(ms) {
		err = fmt.Errorf("%d claims for %d movements", n, len(ms))
	}
	if err != nil {
		return nil, fmt.Errorf("claim idempotency keys: %w", err)
	}
	if rows, err = br.Query(); err != nil {
		return nil, fmt.Errorf("read idempotency records: %w", err)
	}
	stored = make([]*domain.Stored, len(ms))
	var at int64
	var fp, response []byte
	_, err = pgx.ForEachRow(rows, []any{&at, &fp, &response}, func() error {
		if at < 1 || at > int64(len(ms)) || len(fp) != len(domain.Stored{}.Fingerprint) {
			return fmt.Errorf("idempotency record %d has a %d-byte fingerprint", at, len(fp))
		}
		st := &domain.Stored{Response: slices.Clone(response)}
		copy(st.Fingerprint[:], fp)
		stored[at-1] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read idempotency records: %w", err)
	}
	return stored, nil
}

// usageKey names one daily usage row.
type usageKey struct {
	user string
	day  time.Time
	kind domain.TransferKind
}

func usageOf(l domain.MoveLocks) usageKey {
	return usageKey{user: l.UsageUser, day: l.Day.UTC(), kind: l.UsageKind}
}

// locking reports whether m goes on to lock rows and be decided on them:
// it claimed its key and found no record of it.
func locking(m *member, st *domain.Stored) bool { return m.claimed && st == nil }

// lockAll locks what the claimed movements with no stored record need: the
// usage rows (created first if missing: a first movement of the day must
// lock a row too), ordered by (user, day, kind), then the accounts by
// ascending id, the same global order as every other money transaction.
// It returns the usage totals and the accounts that exist.
func lockAll(ctx context.Context, tx postgres.BatchSender, ms []*member, stored []*domain.Stored) (
	usage map[usageKey]int64, accts map[string]domain.Account, err error) {
	usage = map[usageKey]int64{}
	var ids []string
	for i, m := range ms {
		if !locking(m, stored[i]) {
			continue
		}
		if m.locks.UsageUser != "" {
			usage[usageOf(m.locks)] = 0
		}
		ids = append(ids, m.locks.Accounts...)
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	keys := slices.SortedFunc(func(yield func(usageKey) bool) {
		for k := range usage {
			if !yield(k) {
				return
			}
		}
	}, compareUsage)
	users, days, kinds := make([]string, len(keys)), make([]time.Time, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		users[i], days[i], kinds[i] = k.user, k.day, string(k.kind)
	}
	b := &pgx.Batch{}
	if len(keys) > 0 {
		b.Queue(`INSERT INTO ledger.daily_usage (user_id, day, kind)
			SELECT * FROM unnest($1::text[]::uuid[], $2::date[], $3::text[]) ORDER BY 1, 2, 3
			ON CONFLICT (user_id, day, kind) DO NOTHING`, users, days, kinds)
		b.Queue(`SELECT k.i, u.amount FROM unnest($1::text[]::uuid[], $2::date[], $3::text[]) WITH ORDINALITY AS k(user_id, day, kind, i)
			JOIN ledger.daily_usage u ON u.user_id = k.user_id AND u.day = k.day AND u.kind = k.kind
			ORDER BY u.user_id, u.day, u.kind FOR UPDATE OF u`, users, days, kinds)
	}
	b.Queue(`SELECT `+accountColumns+` FROM ledger.accounts a WHERE a.id = ANY($1::text[]::uuid[]) ORDER BY a.id FOR UPDATE`, ids)
	br := tx.SendBatch(ctx, b)
	defer func() { err = errors.Join(err, br.Close()) }()
	if len(keys) > 0 {
		if _, err := br.Exec(); err != nil {
			return nil, nil, fmt.Errorf("create usage rows: %w", err)
		}
		rows, err := br.Query()
		if err != nil {
			return nil, nil, fmt.Errorf("lock usage rows: %w", err)
		}
		var at, amount int64
		_, err = pgx.ForEachRow(rows, []any{&at, &amount}, func() error {
			if at < 1 || at > int64(len(keys)) {
				return fmt.Errorf("usage row %d of %d", at, len(keys))
			}
			usage[keys[at-1]] = amount
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("lock usage rows: %w", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("lock accounts: %w", err)
	}
	if accts, err = collectAccounts(rows); err != nil {
		return nil, nil, fmt.Errorf("lock accounts: %w", err)
	}
	return usage, accts, nil
}

// compareUsage orders usage rows as the database orders their key, so that
// the arrays sent are in lock order too.
func compareUsage(a, b usageKey) int {
	if c := strings.Compare(a.user, b.user); c != 0 {
		return c
	}
	if c := a.day.Compare(b.day); c != 0 {
		return c
	}
	return strings.Compare(string(a.kind), string(b.kind))
}

// decideAll decides each member in arrival order against the usage and
// accounts the members before it left, as if each had run alone in that
// order: a posting moves the in-memory balances, holds and usage; a key a
// member used is Stored to a later member with the same key; a refusal, or
// a posting the store would refuse, is that member's error alone.
func decideAll(ms []*member, stored []*domain.Stored, usage map[usageKey]int64, accts map[string]domain.Account) {
	records := map[[2]string]*domain.Stored{}
	for i, m := range ms {
		if stored[i] != nil {
			records[claimKey(m.locks.Claim)] = stored[i]
		}
	}
	for _, m := range ms {
		m.posting, m.err = nil, nil
		if !m.claimed {
			m.err = domain.ErrInFlight
			continue
		}
		ck := claimKey(m.locks.Claim)
		st := &domain.MoveState{Stored: records[ck]}
		if st.Stored == nil {
			st.Accounts = make(map[string]domain.Account, len(m.locks.Accounts))
			for _, id := range m.locks.Accounts {
				if a, ok := accts[id]; ok {
					st.Accounts[id] = a
				}
			}
			if m.locks.UsageUser != "" {
				st.Usage = usage[usageOf(m.locks)]
			}
		}
		p, err := m.decide(st)
		switch {
		case err != nil:
			m.err = err
			continue
		case p == nil:
			continue
		case st.Stored != nil:
			m.err = errs.Wrap(errs.Internal, "", errors.New("a posting for a key used before"))
			continue
		}
		if err := apply(p, st.Accounts, accts); err != nil {
			m.err = err
			continue
		}
		if m.locks.UsageUser != "" {
			usage[usageOf(m.locks)] += p.UsageDelta
		}
		records[ck] = &domain.Stored{Fingerprint: m.locks.Claim.Fingerprint, Response: p.Response}
		m.posting = p
	}
}

func claimKey(c domain.Claim) [2]string { return [2]string{c.UserID, c.Key} }

// apply moves the balances and holds of p in accts, provided p touches only
// accounts its member locked and every entry's BalanceAfter is the balance
// the move leaves; else it changes nothing and returns an Internal error,
// as the database would refuse the posting.
func apply(p *domain.Posting, locked, accts map[string]domain.Account) error {
	next := make(map[string]domain.Account, 2)
	get := func(id string) (domain.Account, error) {
		if a, ok := next[id]; ok {
			return a, nil
		}
		if a, ok := locked[id]; ok {
			return a, nil
		}
		return domain.Account{}, errs.Wrap(errs.Internal, "", fmt.Errorf("posting touches account %s, which it did not lock", id))
	}
	for _, e := range p.Entries {
		a, err := get(e.AccountID)
		if err != nil {
			return err
		}
		a.Balance += e.Amount
		if a.Balance != e.BalanceAfter {
			return unbalanced(a.ID, a.Balance, e.BalanceAfter)
		}
		next[a.ID] = a
	}
	for _, h := range p.Holds {
		a, err := get(h.AccountID)
		if err != nil {
			return err
		}
		a.Held += h.Delta
		next[a.ID] = a
	}
	for id, a := range next {
		accts[id] = a
	}
	return nil
}
