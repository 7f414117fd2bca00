package domain

import (
	"context"
	"time"
)

// Store is the ledger's storage. The methods that move money take a decide
// callback and run it inside one database transaction that already holds
// every row lock the movement needs, taken in one fixed global order (the
// idempotency claims, the transfer row, the daily usage rows by (user, day,
// kind), the accounts by ascending id; the audit records, last, take no
// lock), so that concurrent movements can neither overdraw an account nor
// deadlock. A callback that returns an error refuses its movement, which
// writes nothing; one that returns a nil Posting and no error ends it
// without writing anything.
//
// Errors: errs.NotFound for a missing row where a method says so,
// errs.Unavailable when the database cannot be reached (safe to retry with
// the same idempotency key), ErrBusy when too many movements already wait
// for the ledger, errs.Internal otherwise; callback errors are returned
// unchanged.
type Store interface {
	// Move claims locks.Claim, returning ErrInFlight if another transaction
	// holds it. If the key was used before, decide sees only the stored
	// record (state.Stored) and nothing else is locked. Otherwise it locks the
	// usage row of (UsageUser, Day) when UsageUser is set and the accounts,
	// calls decide, and writes the Posting it returns: the new transfer, its
	// entries, holds and usage, the idempotency record and the audit event.
	//
	// Movements that arrive together may be decided and committed together,
	// in one transaction (group commit): then decide sees the usage and the
	// accounts as the movements decided before it in the batch left them,
	// and a key used earlier in the batch as Stored. A refusal refuses only
	// its own movement. So decide must judge only what it is given, and keep
	// nothing of it.
	Move(ctx context.Context, locks MoveLocks, decide func(*MoveState) (*Posting, error)) error
	// Decide locks the transfer, then the initiator's usage row of the
	// transfer's kind and of the day it was created, then both accounts, calls decide, and writes
	// the Posting it returns (the transfer's new status, entries, holds,
	// usage and audit event). It returns ErrTransferNotFound if there is no
	// such transfer.
	Decide(ctx context.Context, transferID string, decide func(*DecideState) (*Posting, error)) error
	// Audit appends one event in a transaction of its own (used for refusals,
	// whose money transaction was rolled back).
	Audit(ctx context.Context, e Event) error

	// OpenAccount creates a customer account and, if missing, the settlement
	// account of its currency. It returns the account as stored, which
	// differs from a when the id already existed with other facts.
	OpenAccount(ctx context.Context, a Account, settlementID string) (Account, error)
	// SetAccountStatus changes a customer account's status, waiting for the
	// transactions that hold its row lock. ErrAccountNotFound if missing.
	SetAccountStatus(ctx context.Context, id, status string) error
	// Accounts returns the accounts among ids that exist, in any order.
	Accounts(ctx context.Context, ids []string) ([]Account, error)
	// Transfer returns one transfer, or ErrTransferNotFound.
	Transfer(ctx context.Context, id string) (Transfer, error)
	// TransferOwners returns the owners of both sides of a transfer (a
	// settlement side has none), or ErrTransferNotFound.
	TransferOwners(ctx context.Context, id string) ([]string, error)
	// PendingTransfers returns up to limit transfers awaiting approval,
	// ordered by (CreatedAt, ID), starting after the cursor (from the oldest
	// when it is nil).
	PendingTransfers(ctx context.Context, after *QueueCursor, limit int) ([]Transfer, error)
	// Entries returns up to limit entries of an account with Seq below
	// before (all when before is 0), newest first.
	Entries(ctx context.Context, accountID string, before int64, limit int) ([]Entry, error)
	// Prune deletes idempotency records created before keysBefore and usage
	// rows of days before usageBefore, returning how many rows went.
	Prune(ctx context.Context, keysBefore, usageBefore time.Time) (int64, error)
}

// Claim is an idempotency key as one user used it for one request.
type Claim struct {
	UserID      string
	Key         string
	Fingerprint [32]byte // SHA-256 of the canonical request
}

// Stored is what the first request with a key left behind.
type Stored struct {
	Fingerprint [32]byte
	Response    []byte
}

// MoveLocks names what a new movement locks.
type MoveLocks struct {
	Claim     Claim
	UsageUser string       // whose daily usage row to lock
	UsageKind TransferKind // which of the user's totals: outgoing transfers or deposits made
	Day       time.Time    // the usage row's UTC day
	Accounts  []string     // the accounts to lock; the store sorts them
}

// MoveState is what a new movement sees under its locks.
type MoveState struct {
	Stored   *Stored            // non-nil when the key was used before; then nothing else is set
	Usage    int64              // the user's total of UsageKind so far today
	Accounts map[string]Account // the locked accounts that exist, by id
}

// DecideState is what an approval or rejection sees under its locks.
type DecideState struct {
	Transfer Transfer
	Accounts map[string]Account
}

// Hold changes the amount held on an account.
type Hold struct {
	AccountID string
	Delta     int64
}

// Posting is everything one money transaction writes. Account balances move
// by the entries' amounts and held amounts by the holds; every entry's
// BalanceAfter must equal the account's balance after the change, which the
// store checks.
type Posting struct {
	Transfer   Transfer // inserted by Move; its status and decision updated by Decide
	Entries    []Entry  // two for a posted transfer, none otherwise
	Holds      []Hold
	UsageDelta int64  // added to the locked usage row
	Response   []byte // the stored response of the idempotency record (Move only)
	Event      Event  // appended to the audit log last, in the same transaction
}

// Event is one audit record.
type Event struct {
	Action   string // e.g. "transfer.posted", "transfer.refused"
	Actor    string // the user who acted
	Resource string // what was acted on: "transfer/<id>" or "account/<id>"
	Outcome  string // "success", "refused" (a business rule) or "denied" (not allowed)
	Reason   string // a refusal's reason code
	Detail   map[string]string
}
