// Package domaintest holds hand-written fakes of the domain's ports and the
// store contract suite that every Store implementation, fake or
// Postgres, must pass.
package domaintest

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// Store is an in-memory domain.Store. One mutex serialises every
// call, which is stricter than the Postgres implementation but satisfies the
// same contract.
type Store struct {
	mu       sync.Mutex
	accounts map[string]domain.Account
	events   []domain.Event

	// FailCommit, when set, is called by Open and Update after confirm
	// succeeds; a non-nil result is returned in place of committing: the
	// fake's way of losing the database at the worst moment.
	FailCommit func() error
}

var _ domain.Store = (*Store)(nil)

// NewStore returns an empty fake.
func NewStore() *Store {
	return &Store{accounts: make(map[string]domain.Account)}
}

// Open implements domain.Store.
func (r *Store) Open(ctx context.Context, ownerID string,
	build func(int) (domain.Account, domain.Event, error), confirm func(domain.Account) error) (domain.Account, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.accounts {
		if a.OwnerID == ownerID && a.Status != domain.StatusClosed {
			n++
		}
	}
	a, ev, err := build(n)
	if err != nil {
		return domain.Account{}, err
	}
	if err := confirm(a); err != nil {
		return domain.Account{}, err
	}
	if err := r.failCommit(); err != nil {
		return domain.Account{}, err
	}
	r.accounts[a.ID] = a
	r.events = append(r.events, ev)
	return a, nil
}

// Update implements domain.Store.
func (r *Store) Update(ctx context.Context, id string,
	change func(*domain.Account) (*domain.Event, error), confirm func(domain.Account) error) (domain.Account, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.accounts[id]
	if !ok {
		return domain.Account{}, domain.ErrNotFound
	}
	ev, err := change(&a)
	if err != nil {
		return domain.Account{}, err
	}
	if err := confirm(a); err != nil {
		return domain.Account{}, err
	}
	if err := r.failCommit(); err != nil {
		return domain.Account{}, err
	}
	r.accounts[id] = a
	if ev != nil {
		r.events = append(r.events, *ev)
	}
	return a, nil
}

func (r *Store) failCommit() error {
	if r.FailCommit == nil {
		return nil
	}
	return r.FailCommit()
}

// Get implements domain.Store.
func (r *Store) Get(ctx context.Context, id string) (domain.Account, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.accounts[id]
	if !ok {
		return domain.Account{}, domain.ErrNotFound
	}
	return a, nil
}

// Owner implements domain.Store.
func (r *Store) Owner(ctx context.Context, id string) (string, error) {
	a, err := r.Get(ctx, id)
	return a.OwnerID, err
}

// List implements domain.Store.
func (r *Store) List(ctx context.Context, ownerID string, after *domain.Cursor, limit int) ([]domain.Account, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []domain.Account
	for _, a := range r.accounts {
		if a.OwnerID == ownerID && (after == nil || compareCursor(a, *after) > 0) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b domain.Account) int {
		return compareCursor(a, domain.Cursor{CreatedAt: b.CreatedAt, ID: b.ID})
	})
	return out[:min(limit, len(out))], nil
}

// compareCursor orders a against c by (CreatedAt, ID), as Postgres orders
// (created_at, id): uuid comparison in Postgres is bytewise, which for the
// canonical lower-case text form is the same as string order.
func compareCursor(a domain.Account, c domain.Cursor) int {
	if d := a.CreatedAt.Compare(c.CreatedAt); d != 0 {
		return d
	}
	return cmp.Compare(a.ID, c.ID)
}

// Audit implements domain.Store.
func (r *Store) Audit(ctx context.Context, e domain.Event) error {
	if err := ctx.Err(); err != nil {
		return err // as a database call would fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// Events returns the audit events written so far, oldest first.
func (r *Store) Events() []domain.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Put stores a directly, for tests that need an account in a given state.
func (r *Store) Put(a domain.Account) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accounts[a.ID] = a
}
