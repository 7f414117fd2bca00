// Package domain holds the ledger's rules: who may move money, when a
// transfer must wait for approval, and what one posting writes. It imports no
// transport or database code; storage is the Store interface, whose methods
// run the rules inside one database transaction.
package domain

import (
	"math"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Status is the lifecycle state of a transfer.
type Status string

// The transfer statuses, as the API spells them.
const (
	StatusCompleted       Status = "COMPLETED"
	StatusPendingApproval Status = "PENDING_APPROVAL"
	StatusRejected        Status = "REJECTED"
)

// TransferKind tells a customer transfer from a deposit out of a settlement account.
type TransferKind string

// The transfer kinds.
const (
	KindTransfer TransferKind = "transfer"
	KindDeposit  TransferKind = "deposit"
)

// AccountKind tells customer accounts from the bank's settlement accounts.
type AccountKind string

// The account kinds. A settlement account is the other side of every deposit
// in its currency, so its balance is minus the sum of deposits and the sum of
// all balances in a currency is always zero.
const (
	AccountCustomer   AccountKind = "customer"
	AccountSettlement AccountKind = "settlement"
)

// The account statuses the accounts service pushes. Money moves only between
// ACTIVE accounts.
const (
	AccountActive = "ACTIVE"
	AccountFrozen = "FROZEN"
	AccountClosed = "CLOSED"
)

// Account is the ledger's copy of an account: the facts the accounts service
// owns (owner, currency, status) plus the money the ledger owns.
type Account struct {
	ID       string
	OwnerID  string // empty for settlement accounts
	Currency string
	Status   string
	Kind     AccountKind
	Balance  int64 // booked, minor units
	Held     int64 // reserved for transfers awaiting approval
}

// Available returns what the account may still send: booked minus held.
func (a Account) Available() int64 { return a.Balance - a.Held }

// HoldReason says why a transfer or deposit waits for a second person.
type HoldReason string

// The hold reasons, as the API spells them.
const (
	HoldNone       HoldReason = ""            // posted at once
	HoldAmount     HoldReason = "amount"      // at or above the approval threshold on its own
	HoldDailyTotal HoldReason = "daily_total" // the initiator's total of the day reached the daily threshold
)

// Transfer is a movement of money between two accounts.
type Transfer struct {
	ID          string
	From        string
	To          string
	Amount      int64
	Currency    string
	Description string // the transfer's text, or a deposit's reference
	Status      Status
	HoldReason  HoldReason // why it was held; kept after the decision
	Kind        TransferKind
	InitiatedBy string
	DecidedBy   string // the approver or rejecter, if any
	Reason      string // why it was rejected, if it was
	CreatedAt   time.Time
	DecidedAt   time.Time // zero until approved or rejected
}

// Entry is one side of a posted transfer. Every posted transfer has exactly
// two, one negative and one positive, summing to zero.
type Entry struct {
	Seq          int64 // position in the ledger; newer entries have larger values
	TransferID   string
	AccountID    string
	Counterparty string
	Amount       int64 // signed: negative for money out
	BalanceAfter int64
	Description  string
	CreatedAt    time.Time
}

// Limits are the configured money limits, in minor units.
type Limits struct {
	ApprovalThreshold int64 // a transfer or deposit at or above this waits for approval
	MaxTransfer       int64 // largest single transfer or deposit
	DailyLimit        int64 // a user's outgoing total per UTC day
	// ApprovalDailyThreshold holds a transfer when the initiator's outgoing
	// total of the UTC day, that transfer included, reaches it, so that a
	// large payment split into small ones still needs a second person.
	// Deposits do not count: DepositDailyLimit bounds them. Zero means
	// 3 × ApprovalThreshold.
	ApprovalDailyThreshold int64
	// DepositDailyLimit caps one manager's deposits per UTC day, held ones
	// included. Zero means DefaultDepositDailyLimit.
	DepositDailyLimit int64
}

// DefaultDepositDailyLimit is the deposit cap when none is configured.
const DefaultDepositDailyLimit = 1_000_000_000

// withDefaults fills the limits that default from others.
func (l Limits) withDefaults() Limits {
	if l.ApprovalDailyThreshold == 0 && l.ApprovalThreshold > 0 && l.ApprovalThreshold <= math.MaxInt64/3 {
		l.ApprovalDailyThreshold = 3 * l.ApprovalThreshold
	}
	if l.DepositDailyLimit == 0 {
		l.DepositDailyLimit = DefaultDepositDailyLimit
	}
	return l
}

// Errors returned by the service. Each carries the kind that decides its
// status code and a message safe to show a client.
var (
	ErrAccountNotFound   = errs.Reasoned(errs.NotFound, "account_not_found", "account not found")
	ErrTransferNotFound  = errs.Reasoned(errs.NotFound, "transfer_not_found", "transfer not found")
	ErrSameAccount       = errs.InvalidField("toAccountId", "must differ from fromAccountId")
	ErrAccountNotActive  = errs.Reasoned(errs.Refused, "account_not_active", "account is not active")
	ErrCurrencyMismatch  = errs.Reasoned(errs.Refused, "currency_mismatch", "currency does not match the account")
	ErrInsufficientFunds = errs.Reasoned(errs.Refused, "insufficient_funds", "insufficient funds")
	ErrOverMaximum       = errs.Reasoned(errs.Refused, "amount_over_maximum", "amount exceeds the per-transfer maximum")
	ErrDailyLimit        = errs.Reasoned(errs.Refused, "daily_limit_exceeded", "daily outgoing limit exceeded")
	ErrBalanceLimit      = errs.Reasoned(errs.Refused, "balance_limit", "amount would overflow the account balance")
	ErrNotPending        = errs.Reasoned(errs.Refused, "transfer_not_pending", "transfer is not awaiting approval")
	ErrDepositLimit      = errs.Reasoned(errs.Refused, "deposit_limit_exceeded", "daily deposit limit exceeded")
	ErrKeyReused         = errs.Reasoned(errs.Refused, "idempotency_key_reused", "idempotency key was already used with a different request")
	ErrInFlight          = errs.Reasoned(errs.Conflict, "idempotency_in_flight", "a request with this idempotency key is still in progress")
	ErrMissingKey        = errs.InvalidField("idempotencyKey", "an Idempotency-Key is required")
	ErrAccountConflict   = errs.Reasoned(errs.Conflict, "account_conflict", "account already exists with other facts")
	ErrNotAuthenticated  = errs.New(errs.Unauthenticated, "authentication required")
	// ErrBusy refuses a money movement that found too many others waiting
	// for the ledger: nothing was done, and the same request with the same
	// key may be sent again after RetryAfter. Failing fast here keeps the
	// latency of those already waiting bounded.
	ErrBusy = &errs.Error{Kind: errs.Unavailable, Reason: "ledger_busy", Msg: "the ledger is busy, try again shortly",
		RetryAfter: time.Second}
)
