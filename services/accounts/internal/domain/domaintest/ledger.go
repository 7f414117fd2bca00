package domaintest

import (
	"context"
	"sync"

	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// LedgerAccount is the fake ledger's record of one account.
type LedgerAccount struct {
	OwnerID  string
	Currency string
	Status   domain.Status
	Booked   int64
	Held     int64
}

// Ledger is an in-memory domain.Ledger that records what it was told and
// can be made to fail.
type Ledger struct {
	mu       sync.Mutex
	accounts map[string]LedgerAccount
	calls    map[string]int

	// Fail, when set, is consulted before each call with the method name
	// ("OpenAccount", "SetStatus", "Balances") and the number of earlier
	// calls of it; a non-nil result is returned instead of doing the work.
	Fail func(method string, n int) error
}

var _ domain.Ledger = (*Ledger)(nil)

// NewLedger returns an empty fake ledger.
func NewLedger() *Ledger {
	return &Ledger{accounts: make(map[string]LedgerAccount), calls: make(map[string]int)}
}

// fail counts a call of method and returns the injected error, if any.
// The caller holds mu.
func (l *Ledger) fail(method string) error {
	n := l.calls[method]
	l.calls[method]++
	if l.Fail != nil {
		return l.Fail(method, n)
	}
	return nil
}

// OpenAccount implements domain.Ledger.
func (l *Ledger) OpenAccount(ctx context.Context, a domain.Account) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.fail("OpenAccount"); err != nil {
		return err
	}
	if _, ok := l.accounts[a.ID]; !ok {
		l.accounts[a.ID] = LedgerAccount{OwnerID: a.OwnerID, Currency: a.Currency, Status: domain.StatusActive}
	}
	return nil
}

// SetStatus implements domain.Ledger.
func (l *Ledger) SetStatus(ctx context.Context, id string, status domain.Status) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.fail("SetStatus"); err != nil {
		return err
	}
	a, ok := l.accounts[id]
	if !ok {
		return domain.ErrNotFound
	}
	a.Status = status
	l.accounts[id] = a
	return nil
}

// Balances implements domain.Ledger.
func (l *Ledger) Balances(ctx context.Context, ids []string) (map[string]domain.Balance, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.fail("Balances"); err != nil {
		return nil, err
	}
	out := make(map[string]domain.Balance)
	for _, id := range ids {
		if a, ok := l.accounts[id]; ok {
			out[id] = domain.Balance{Booked: a.Booked, Held: a.Held}
		}
	}
	return out, nil
}

// Account returns the fake's record of id.
func (l *Ledger) Account(id string) (LedgerAccount, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.accounts[id]
	return a, ok
}

// SetMoney sets the booked and held amounts of a known account.
func (l *Ledger) SetMoney(id string, booked, held int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[id]
	a.Booked, a.Held = booked, held
	l.accounts[id] = a
}

// Calls returns how many times method was called.
func (l *Ledger) Calls(method string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[method]
}
