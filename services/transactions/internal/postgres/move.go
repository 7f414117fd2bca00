package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// claimGuard is true only while this transaction holds the idempotency
// key's advisory lock ($1) and the key ($2, $3) has no record yet. The lock
// statements of a movement carry it, so that they are sent in the same
// round trip as the claim itself but lock nothing when the key is in flight
// elsewhere or was used before. Taking the advisory lock again in the same
// transaction succeeds and is released with the first at commit.
const claimGuard = `(SELECT pg_try_advisory_xact_lock($1))
	AND NOT EXISTS (SELECT 1 FROM ledger.idempotency_keys WHERE user_id = $2 AND key = $3)`

const accountColumns = `a.id::text, coalesce(a.owner_id::text, ''), a.currency, a.status, a.kind, a.balance, a.held`

// Move runs a new transfer or deposit through the group commit: alone in a
// transaction of its own when no other waits (moveOne), else with every
// movement that arrived while the previous batch was committing
// (moveBatch). A batch that fails as a whole, other than by losing the
// database, runs each of its movements again on its own, so that one
// member's failing write fails only that member.
func (s *Store) Move(ctx context.Context, locks domain.MoveLocks, decide func(*domain.MoveState) (*domain.Posting, error)) error {
	err := s.moves.submit(&member{ctx: ctx, locks: locks, decide: decide, done: make(chan error, 1)})
	if errors.Is(err, errRetryAlone) {
		return s.moveOne(ctx, locks, decide)
	}
	return err
}

// moveOne runs one new transfer or deposit. Round trips on the database,
// with statements cached: BEGIN; one batch that claims the key, reads any
// stored record and locks the usage row and the accounts; one batch that
// writes everything and appends the audit event; COMMIT.
func (s *Store) moveOne(ctx context.Context, locks domain.MoveLocks, decide func(*domain.MoveState) (*domain.Posting, error)) error {
	c := locks.Claim
	lockID := claimLockID(c.UserID, c.Key)
	ids := slices.Compact(slices.Sorted(slices.Values(locks.Accounts)))
	return s.inTx(ctx, func(tx *postgres.BatchTx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_try_advisory_xact_lock($1)`, lockID)
		b.Queue(`SELECT fingerprint, response FROM ledger.idempotency_keys WHERE user_id = $1 AND key = $2`, c.UserID, c.Key)
		if locks.UsageUser != "" {
			// Insert-then-lock: a first transfer of the day must lock a row too.
			b.Queue(`INSERT INTO ledger.daily_usage (user_id, day, kind) SELECT $4, $5, $6 WHERE `+claimGuard+`
				ON CONFLICT (user_id, day, kind) DO NOTHING`, lockID, c.UserID, c.Key, locks.UsageUser, locks.Day, locks.UsageKind)
			b.Queue(`SELECT amount FROM ledger.daily_usage WHERE user_id = $4 AND day = $5 AND kind = $6 AND `+claimGuard+`
				FOR UPDATE`, lockID, c.UserID, c.Key, locks.UsageUser, locks.Day, locks.UsageKind)
		}
		b.Queue(`SELECT `+accountColumns+` FROM ledger.accounts a WHERE a.id = ANY($4::text[]::uuid[]) AND `+claimGuard+`
			ORDER BY a.id FOR UPDATE`, lockID, c.UserID, c.Key, ids)
		st, claimed, err := readMoveLocks(tx.SendBatch(ctx, b), locks.UsageUser != "")
		if err != nil {
			return err
		}
		if !claimed {
			return domain.ErrInFlight
		}
		p, err := decide(st)
		if err != nil || p == nil {
			return err
		}
		return s.write(ctx, tx, p, writeMode{insert: true, claim: &c, usageUser: locks.UsageUser, day: locks.Day})
	})
}

// readMoveLocks reads the results of Move's lock batch and closes it.
func readMoveLocks(br pgx.BatchResults, withUsage bool) (st *domain.MoveState, claimed bool, err error) {
	defer func() { err = errors.Join(err, br.Close()) }()
	if err := br.QueryRow().Scan(&claimed); err != nil {
		return nil, false, fmt.Errorf("claim idempotency key: %w", err)
	}
	var stored domain.Stored
	var fp []byte
	switch err := br.QueryRow().Scan(&fp, &stored.Response); {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, false, fmt.Errorf("read idempotency record: %w", err)
	case len(fp) != len(stored.Fingerprint):
		return nil, false, fmt.Errorf("idempotency record has a %d-byte fingerprint", len(fp))
	default:
		copy(stored.Fingerprint[:], fp)
		st = &domain.MoveState{Stored: &stored}
	}
	var usage int64
	if withUsage {
		if _, err := br.Exec(); err != nil {
			return nil, false, fmt.Errorf("create usage row: %w", err)
		}
		if err := br.QueryRow().Scan(&usage); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, false, fmt.Errorf("lock usage row: %w", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, false, fmt.Errorf("lock accounts: %w", err)
	}
	accts, err := collectAccounts(rows)
	if err != nil {
		return nil, false, fmt.Errorf("lock accounts: %w", err)
	}
	if st == nil {
		st = &domain.MoveState{Usage: usage, Accounts: accts}
	}
	return st, claimed, nil
}

// Decide runs an approval or rejection. One batch locks the transfer, the
// initiator's usage row of its kind and of the day it was created, and both
// accounts; the
// later statements read the transfer's immutable columns (sides, initiator,
// creation time), which its guard trigger keeps from changing.
func (s *Store) Decide(ctx context.Context, transferID string, decide func(*domain.DecideState) (*domain.Posting, error)) error {
	return s.inTx(ctx, func(tx *postgres.BatchTx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT `+transferColumns+` FROM ledger.transfers t WHERE t.id = $1 FOR UPDATE`, transferID)
		b.Queue(`SELECT u.amount FROM ledger.daily_usage u JOIN ledger.transfers t
			ON u.user_id = t.initiated_by AND u.day = (t.created_at AT TIME ZONE 'UTC')::date AND u.kind = t.kind
			WHERE t.id = $1 FOR UPDATE OF u`, transferID)
		b.Queue(`SELECT `+accountColumns+` FROM ledger.accounts a JOIN ledger.transfers t
			ON a.id IN (t.from_account_id, t.to_account_id)
			WHERE t.id = $1 ORDER BY a.id FOR UPDATE OF a`, transferID)
		st, err := readDecideLocks(tx.SendBatch(ctx, b))
		if err != nil {
			return err
		}
		p, err := decide(st)
		if err != nil || p == nil {
			return err
		}
		return s.write(ctx, tx, p, writeMode{})
	})
}

func readDecideLocks(br pgx.BatchResults) (st *domain.DecideState, err error) {
	defer func() { err = errors.Join(err, br.Close()) }()
	t, err := scanTransfer(br.QueryRow())
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domain.ErrTransferNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lock transfer: %w", err)
	}
	var usage int64
	if err := br.QueryRow().Scan(&usage); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("lock usage row: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("lock accounts: %w", err)
	}
	accts, err := collectAccounts(rows)
	if err != nil {
		return nil, fmt.Errorf("lock accounts: %w", err)
	}
	return &domain.DecideState{Transfer: t, Accounts: accts}, nil
}

// claimLockID derives the advisory lock key of an idempotency key. A
// collision between two different keys only makes one of them wait for a
// 409 retry; the records themselves are keyed on (user, key) exactly.
func claimLockID(userID, key string) int64 {
	h := sha256.New()
	h.Write([]byte("ledger.idempotency\x00"))
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)[:8]))
}

func collectAccounts(rows pgx.Rows) (map[string]domain.Account, error) {
	accts := make(map[string]domain.Account, 2)
	var a domain.Account
	_, err := pgx.ForEachRow(rows, []any{&a.ID, &a.OwnerID, &a.Currency, &a.Status, &a.Kind, &a.Balance, &a.Held}, func() error {
		accts[a.ID] = a
		return nil
	})
	return accts, err
}

// errUnbalanced is the cause when the balances the database computed differ
// from what the domain posted: a bug, so the transaction is rolled back.
var errUnbalanced = errors.New("posted balance differs from the entry's balance_after")

func unbalanced(id string, got, want int64) error {
	return errs.Wrap(errs.Internal, "", fmt.Errorf("%w: account %s has %d, entry says %d", errUnbalanced, id, got, want))
}
