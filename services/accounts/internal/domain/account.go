// Package domain holds the accounts service's rules: who may open, see and
// freeze an account, the open-account limit, the supported currencies, and
// how list pages are cut and their tokens bound to the caller.
//
// It imports no transport or database code. It declares the small
// interfaces it needs (Store for storage, Ledger for the transactions
// service's copy of each account, Metrics for the security counters) and the
// rpc, postgres and ledger packages implement them.
package domain

import (
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Status is an account's lifecycle state. The ledger refuses to move money
// into or out of an account that is not ACTIVE.
type Status string

// The statuses. They are the strings the API and the ledger use.
const (
	StatusActive Status = "ACTIVE"
	StatusFrozen Status = "FROZEN"
	StatusClosed Status = "CLOSED"
)

// Account is the accounts service's record of one account. Money is not
// here: the ledger owns it, and a View adds it for display.
type Account struct {
	ID          string // random UUID
	OwnerID     string // the owning user's UUID
	Currency    string // ISO 4217, from the supported list
	DisplayName string // the owner's name for it; may be empty
	Status      Status

	// StatusReason and StatusChangedBy say why and by whom the status last
	// changed (empty while the account has never changed status).
	StatusReason    string
	StatusChangedBy string

	CreatedAt time.Time
	UpdatedAt time.Time
}

// View is an account as a caller sees it: its record plus the ledger's
// balances, in minor units of the account's currency.
type View struct {
	Account
	Balance   int64 // booked balance
	Available int64 // booked balance less amounts held for pending transfers
}

// Balance is the ledger's money on one account.
type Balance struct {
	Booked int64 // the booked balance
	Held   int64 // reserved for transfers awaiting approval
}

// AccountResource names an account as an audit event's Resource.
func AccountResource(id string) string { return "account/" + id }

// Event is one audit record, written in the same transaction as the change
// it describes.
type Event struct {
	Action   string            // e.g. "account.frozen"
	Actor    string            // the user who acted
	Resource string            // the account acted on (AccountResource); empty for a refused list
	Outcome  string            // OutcomeSuccess or OutcomeDenied
	Reason   string            // for a denial, a stable code such as "list_other_owner"
	Detail   map[string]string // small, non-secret facts: old and new status, the actor's stated reason …
}

// Outcomes of audited events.
const (
	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
)

// The audit actions this service writes.
const (
	ActionOpened   = "account.opened"
	ActionFrozen   = "account.frozen"
	ActionUnfrozen = "account.unfrozen"
)

// Authorization denials are audited under the platform's one name for them
// (identity.ActionDenied), handed over by the platform to RecordDenial.

// Errors the service returns. Each carries the kind that decides the
// transport status; the messages are safe to show a client.
var (
	// ErrNotFound is returned for a missing account. The platform's owner
	// check returns the same kind and message for someone else's account,
	// so the two cannot be told apart.
	ErrNotFound = errs.New(errs.NotFound, "account not found")

	// ErrTooManyAccounts refuses an Open past the per-user limit.
	ErrTooManyAccounts = errs.Reasoned(errs.Refused, "account_limit", "open account limit reached")

	// ErrClosed refuses a status change on a closed account.
	ErrClosed = errs.Reasoned(errs.Refused, "account_closed", "account is closed")

	// ErrOtherOwner refuses a plain user's list of someone else's accounts.
	// Its message matches the platform's role denial.
	ErrOtherOwner = errs.New(errs.Permission, "permission denied")
)
