package domain

import "context"

// Ledger is the transactions service's copy of the account facts that
// money movement checks. Every method is idempotent.
//
// Errors: errs.Unavailable when the ledger cannot be reached (safe to
// retry), errs.Internal otherwise.
type Ledger interface {
	// OpenAccount creates the ledger side of a new account.
	OpenAccount(ctx context.Context, a Account) error
	// SetStatus makes status the account's status for money movement; when
	// it returns, the ledger already applies it.
	SetStatus(ctx context.Context, accountID string, status Status) error
	// Balances returns the balances of the ids the ledger knows (at most
	// MaxPageSize ids per call); unknown ids are absent from the map.
	Balances(ctx context.Context, ids []string) (map[string]Balance, error)
}

// Metrics counts security events; platform/telemetry.Security satisfies it.
// Authorization denials are counted (and audited) by the platform's chain.
type Metrics interface {
	// Event counts a security event, such as a freeze.
	Event(ctx context.Context, event, reason string)
}

// nopMetrics counts nothing, for a Service built without Metrics.
type nopMetrics struct{}

func (nopMetrics) Event(context.Context, string, string) {}
