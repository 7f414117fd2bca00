package domain

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
)

// Limits on what callers send, matching the rules in accounts.proto.
const (
	DefaultMaxOpenPerUser = 10
	MaxDisplayNameLen     = 64  // characters
	MaxReasonLen          = 280 // characters
)

// Config holds the service's settings. Zero fields take the defaults noted.
type Config struct {
	MaxOpenPerUser int              // accounts a user may hold that are not CLOSED; default 10
	PageTokens     *pagetoken.Codec // required: mints and checks list page tokens
	Now            func() time.Time // default time.Now
	NewID          func() string    // default a random (version 4) UUID
	Metrics        Metrics          // default counts nothing
}

// Service is the accounts service's behaviour. Authentication, roles and the
// ownership check on per-account calls have already been done by the
// platform when a method runs; the service applies the business rules and
// the one permission check that depends on request data (List's owner).
type Service struct {
	store  Store
	ledger Ledger
	cfg    Config
}

// NewService returns a Service storing accounts in store and keeping ledger
// in step.
func NewService(store Store, ledger Ledger, cfg Config) (*Service, error) {
	if store == nil || ledger == nil || cfg.PageTokens == nil {
		return nil, errors.New("domain: store, ledger and page token codec are required")
	}
	if cfg.MaxOpenPerUser <= 0 {
		cfg.MaxOpenPerUser = DefaultMaxOpenPerUser
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = func() string { return uuid.NewString() }
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	return &Service{store: store, ledger: ledger, cfg: cfg}, nil
}

// now returns the current time at the database's precision, so that a
// cursor built from a returned account matches the stored row exactly.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Open opens an account in currency for actor. It refuses with
// ErrTooManyAccounts when actor already has MaxOpenPerUser accounts that are
// not closed, and with an Invalid error for an unsupported currency or a bad
// display name. The ledger side is created before the account is committed,
// so every account a caller sees can receive money.
func (s *Service) Open(ctx context.Context, actor identity.User, currency, displayName string) (View, error) {
	owner, ok := identity.CanonicalID(actor.ID)
	if !ok {
		return View{}, errs.Wrap(errs.Internal, "", errors.New("actor id is not a UUID"))
	}
	if _, ok := LookupCurrency(currency); !ok {
		return View{}, errs.InvalidField("currency", "unsupported currency")
	}
	if err := checkText("displayName", displayName, 0, MaxDisplayNameLen); err != nil {
		return View{}, err
	}
	build := func(openCount int) (Account, Event, error) {
		if openCount >= s.cfg.MaxOpenPerUser {
			return Account{}, Event{}, ErrTooManyAccounts
		}
		now := s.now()
		a := Account{
			ID: s.cfg.NewID(), OwnerID: owner, Currency: currency, DisplayName: displayName,
			Status: StatusActive, CreatedAt: now, UpdatedAt: now,
		}
		ev := Event{Action: ActionOpened, Actor: owner, Resource: AccountResource(a.ID), Outcome: OutcomeSuccess,
			Detail: map[string]string{"currency": currency}}
		return a, ev, nil
	}
	confirm := func(a Account) error { return s.ledger.OpenAccount(ctx, a) }
	a, err := s.store.Open(ctx, owner, build, confirm)
	if err != nil {
		return View{}, err
	}
	// A new account has no money; asking the ledger would add a hop for a zero.
	return View{Account: a}, nil
}

// Get returns one account with its balances, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (View, error) {
	id, ok := identity.CanonicalID(id)
	if !ok {
		return View{}, ErrNotFound
	}
	a, err := s.store.Get(ctx, id)
	if err != nil {
		return View{}, err
	}
	views, err := s.withBalances(ctx, []Account{a})
	if err != nil {
		return View{}, err
	}
	return views[0], nil
}

// Owners implements the platform's ownership resolver for the "account"
// resource: the one owner of the account. Any other resource, a malformed
// id and a missing account all give ErrNotFound, so the platform answers a
// non-owner exactly as it answers a missing id.
func (s *Service) Owners(ctx context.Context, resource, id string) ([]string, error) {
	id, ok := identity.CanonicalID(id)
	if resource != "account" || !ok {
		return nil, ErrNotFound
	}
	owner, err := s.store.Owner(ctx, id)
	if err != nil {
		return nil, err
	}
	return []string{owner}, nil
}

// withBalances asks the ledger, in one call, for the balances of accounts.
// An account the ledger does not know shows zero, which is its true
// balance: money can only reach an account the ledger knows.
func (s *Service) withBalances(ctx context.Context, accounts []Account) ([]View, error) {
	views := make([]View, len(accounts))
	if len(accounts) == 0 {
		return views, nil
	}
	ids := make([]string, len(accounts))
	for i, a := range accounts {
		ids[i] = a.ID
	}
	balances, err := s.ledger.Balances(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, a := range accounts {
		b := balances[a.ID]
		views[i] = View{Account: a, Balance: b.Booked, Available: b.Booked - b.Held}
	}
	return views, nil
}

// checkText applies the proto's rules for free text: valid UTF-8, minLen to
// maxLen characters, and no control or format characters (which hide text in
// logs and reviews, or reorder it on screen).
func checkText(field, v string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(v)
	if !utf8.ValidString(v) || n < minLen || n > maxLen {
		return errs.InvalidField(field, fmt.Sprintf("must be %d to %d characters", minLen, maxLen))
	}
	for _, r := range v {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return errs.InvalidField(field, "must not contain control characters")
		}
	}
	return nil
}
