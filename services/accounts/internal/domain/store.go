package domain

import (
	"context"
	"time"
)

// Store stores accounts and their audit trail. Methods that change an
// account take callbacks and run them inside one database transaction, so a
// rule is checked against exactly the rows that get written.
//
// Errors: ErrNotFound where a method says so, errs.Unavailable when the
// database cannot be reached, errs.Internal otherwise; an error from a
// callback is returned unchanged and rolls everything back. Callbacks may run
// more than once if the database asks for a retry, so their side effects
// outside the transaction must be idempotent.
type Store interface {
	// Open serialises with every other Open for ownerID (concurrent opens
	// for one owner take turns; different owners do not wait for each
	// other), counts the owner's accounts that are not CLOSED and calls
	// build with that count. It inserts the account build returns and
	// appends the event to the audit log, then calls confirm, then commits.
	// It returns the stored account.
	Open(ctx context.Context, ownerID string,
		build func(openCount int) (Account, Event, error),
		confirm func(Account) error) (Account, error)

	// Update locks the account and calls change on a copy of it. If change
	// returns a nil error, Update stores the copy when it differs from the
	// original, appends the event when it is not nil, calls confirm with the
	// stored account, and commits. It returns the stored account, or
	// ErrNotFound.
	Update(ctx context.Context, id string,
		change func(*Account) (*Event, error),
		confirm func(Account) error) (Account, error)

	// Get returns one account, or ErrNotFound.
	Get(ctx context.Context, id string) (Account, error)

	// Owner returns the id of the account's owner, or ErrNotFound. It is on
	// the path of every per-account call, so it reads as little as it can.
	Owner(ctx context.Context, id string) (string, error)

	// List returns up to limit of ownerID's accounts, ordered by
	// (CreatedAt, ID), starting after the cursor (from the first when it is
	// nil).
	List(ctx context.Context, ownerID string, after *Cursor, limit int) ([]Account, error)

	// Audit appends one event in a transaction of its own, for a refusal
	// whose request changed nothing.
	Audit(ctx context.Context, e Event) error
}

// Cursor is a position in a list ordered by (CreatedAt, ID).
type Cursor struct {
	CreatedAt time.Time
	ID        string
}
