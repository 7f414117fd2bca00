package domain_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
)

// fixture is a Service on fakes, with a clock that ticks a millisecond per
// reading so that creation order is the order of calls.
type fixture struct {
	svc     *domain.Service
	repo    *domaintest.Store
	ledger  *domaintest.Ledger
	metrics *domaintest.Metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	codec, err := pagetoken.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{repo: domaintest.NewStore(), ledger: domaintest.NewLedger(), metrics: domaintest.NewMetrics()}
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.svc, err = domain.NewService(f.repo, f.ledger, domain.Config{
		PageTokens: codec,
		Metrics:    f.metrics,
		Now:        func() time.Time { clock = clock.Add(time.Millisecond + time.Nanosecond); return clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func user(roles ...string) identity.User {
	if len(roles) == 0 {
		roles = []string{identity.RoleUser}
	}
	return identity.User{ID: uuid.NewString(), Roles: roles}
}

// open opens an EUR account for u, failing the test on error.
func (f *fixture) open(t *testing.T, u identity.User) domain.View {
	t.Helper()
	v, err := f.svc.Open(context.Background(), u, "EUR", "")
	if err != nil {
		t.Fatalf("Open(%s) error = %v", u.ID, err)
	}
	return v
}

func wantKind(t *testing.T, call string, err error, kind errs.Kind) {
	t.Helper()
	if errs.KindOf(err) != kind {
		t.Errorf("%s error = %v (kind %v), want kind %v", call, err, errs.KindOf(err), kind)
	}
}

func TestNewServiceRequiresPorts(t *testing.T) {
	t.Parallel()
	codec, _ := pagetoken.New(make([]byte, 32))
	repo, ledger := domaintest.NewStore(), domaintest.NewLedger()
	tests := []struct {
		name   string
		repo   domain.Store
		ledger domain.Ledger
		codec  *pagetoken.Codec
	}{
		{"no store", nil, ledger, codec},
		{"no ledger", repo, nil, codec},
		{"no codec", repo, ledger, nil},
	}
	for _, tt := range tests {
		if _, err := domain.NewService(tt.repo, tt.ledger, domain.Config{PageTokens: tt.codec}); err == nil {
			t.Errorf("NewService(%s) error = nil, want error", tt.name)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := user()
	v, err := f.svc.Open(context.Background(), u, "JPY", "Trip to Kyoto")
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	if v.OwnerID != u.ID || v.Currency != "JPY" || v.DisplayName != "Trip to Kyoto" ||
		v.Status != domain.StatusActive || v.Balance != 0 || v.Available != 0 {
		t.Errorf("Open() = %+v, want an ACTIVE JPY account of %s with no money", v, u.ID)
	}
	if _, err := uuid.Parse(v.ID); err != nil || uuid.MustParse(v.ID).Version() != 4 {
		t.Errorf("Open() id = %q, want a random (v4) UUID", v.ID)
	}
	// Times come from the configured clock (2025 in the fixture), never the
	// machine's.
	if v.CreatedAt.Year() != 2025 {
		t.Errorf("Open() created at %v, want the service's clock (2025)", v.CreatedAt)
	}
	la, ok := f.ledger.Account(v.ID)
	if !ok || la.OwnerID != u.ID || la.Currency != "JPY" || la.Status != domain.StatusActive {
		t.Errorf("ledger account = %+v, %v; want the same facts", la, ok)
	}
	evs := f.repo.Events()
	if len(evs) != 1 || evs[0].Action != domain.ActionOpened || evs[0].Resource != domain.AccountResource(v.ID) || evs[0].Actor != u.ID {
		t.Errorf("audit events = %+v, want one %s for the account", evs, domain.ActionOpened)
	}
}

func TestOpenRejectsBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, currency, displayName, field string
	}{
		{"lower-case currency", "eur", "", "currency"},
		{"unknown currency", "XXX", "", "currency"},
		{"empty currency", "", "", "currency"},
		{"currency with space", "EUR ", "", "currency"},
		{"too long name", "EUR", strings.Repeat("a", 65), "displayName"},
		{"NUL in name", "EUR", "a\x00b", "displayName"},
		{"newline in name", "EUR", "a\nb", "displayName"},
		{"bidi override in name", "EUR", "abc\u202egnp.exe", "displayName"},
		{"zero-width space in name", "EUR", "a\u200bb", "displayName"},
		{"invalid UTF-8 in name", "EUR", "a\xffb", "displayName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := f.svc.Open(context.Background(), user(), tt.currency, tt.displayName)
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Invalid || len(e.Violations) != 1 || e.Violations[0].Field != tt.field {
				t.Errorf("Open(%q, %q) error = %v, want Invalid with a violation on %s", tt.currency, tt.displayName, err, tt.field)
			}
		})
	}
	if _, err := f.svc.Open(context.Background(), user(), "EUR", strings.Repeat("ü", 64)); err != nil {
		t.Errorf("Open(64-character name) error = %v, want nil", err)
	}
	if got := len(f.repo.Events()); got != 1 {
		t.Errorf("audit events = %d, want 1 (only the valid open)", got)
	}
}

func TestOpenRefusesNonUUIDActor(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.svc.Open(context.Background(), identity.User{ID: "admin' --", Roles: []string{"user"}}, "EUR", "")
	wantKind(t, "Open(non-UUID actor)", err, errs.Internal)
}

func TestOpenLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := user()
	var first domain.View
	for i := range domain.DefaultMaxOpenPerUser {
		v := f.open(t, u)
		if i == 0 {
			first = v
		}
	}
	_, err := f.svc.Open(context.Background(), u, "EUR", "")
	if !errors.Is(err, domain.ErrTooManyAccounts) || errs.KindOf(err) != errs.Refused {
		t.Fatalf("Open(11th) error = %v, want ErrTooManyAccounts (Refused)", err)
	}
	// Another user is not affected by u's count.
	f.open(t, user())
	// A closed account frees its slot.
	closed := first.Account
	closed.Status = domain.StatusClosed
	f.repo.Put(closed)
	f.open(t, u)
}

func TestOpenLedgerFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.ledger.Fail = func(method string, _ int) error {
		if method == "OpenAccount" {
			return errs.New(errs.Unavailable, "ledger unavailable")
		}
		return nil
	}
	u := user()
	_, err := f.svc.Open(context.Background(), u, "EUR", "")
	wantKind(t, "Open(ledger down)", err, errs.Unavailable)
	page, err := f.svc.List(context.Background(), u, domain.ListQuery{})
	if err != nil || len(page.Accounts) != 0 {
		t.Errorf("List after failed Open = %d accounts, %v; want 0, nil", len(page.Accounts), err)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v := f.open(t, user())
	f.ledger.SetMoney(v.ID, 10_000, 2_500)
	got, err := f.svc.Get(context.Background(), v.ID)
	if err != nil || got.Balance != 10_000 || got.Available != 7_500 || got.ID != v.ID {
		t.Errorf("Get() = %+v, %v; want balance 10000, available 7500", got, err)
	}
	if got, err := f.svc.Get(context.Background(), strings.ToUpper(v.ID)); err != nil || got.ID != v.ID {
		t.Errorf("Get(upper-case id) = %q, %v; want %q", got.ID, err, v.ID)
	}
	for _, id := range []string{uuid.NewString(), "", "not-a-uuid", "{" + v.ID + "}", v.ID + " ", "urn:uuid:" + v.ID, strings.ReplaceAll(v.ID, "-", "")} {
		if _, err := f.svc.Get(context.Background(), id); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", id, err)
		}
	}
	f.ledger.Fail = func(string, int) error { return errs.New(errs.Unavailable, "ledger unavailable") }
	_, err = f.svc.Get(context.Background(), v.ID)
	wantKind(t, "Get(ledger down)", err, errs.Unavailable)
}

// An account the ledger does not know shows no money rather than failing.
func TestGetUnknownToLedger(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := domain.Account{ID: uuid.NewString(), OwnerID: uuid.NewString(), Currency: "EUR", Status: domain.StatusActive}
	f.repo.Put(a)
	got, err := f.svc.Get(context.Background(), a.ID)
	if err != nil || got.Balance != 0 || got.Available != 0 {
		t.Errorf("Get(unknown to ledger) = %+v, %v; want zero balances", got, err)
	}
}

func TestOwners(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := user()
	v := f.open(t, u)
	got, err := f.svc.Owners(context.Background(), "account", v.ID)
	if err != nil || len(got) != 1 || got[0] != u.ID {
		t.Errorf("Owners(account, %s) = %v, %v; want [%s]", v.ID, got, err, u.ID)
	}
	tests := []struct{ name, resource, id string }{
		{"missing", "account", uuid.NewString()},
		{"malformed", "account", "1 OR 1=1"},
		{"empty", "account", ""},
		{"other resource", "transfer", v.ID},
		{"empty resource", "", v.ID},
	}
	for _, tt := range tests {
		if got, err := f.svc.Owners(context.Background(), tt.resource, tt.id); !errors.Is(err, domain.ErrNotFound) || got != nil {
			t.Errorf("Owners(%s) = %v, %v; want nil, ErrNotFound", tt.name, got, err)
		}
	}
}
