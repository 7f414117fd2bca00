package domaintest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// NewStoreFunc returns an empty store for one test.
type NewStoreFunc func(t *testing.T) domain.Store

// base is the clock every suite account is stamped from, at the database's
// microsecond precision.
var base = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// newAccount returns an ACTIVE account of owner created at base+offset.
func newAccount(owner string, offset time.Duration) domain.Account {
	at := base.Add(offset)
	return domain.Account{ID: uuid.NewString(), OwnerID: owner, Currency: "EUR",
		DisplayName: "Savings", Status: domain.StatusActive, CreatedAt: at, UpdatedAt: at}
}

// open stores a through r.Open, failing the test on error.
func open(t *testing.T, r domain.Store, a domain.Account) domain.Account {
	t.Helper()
	got, err := r.Open(context.Background(), a.OwnerID,
		func(int) (domain.Account, domain.Event, error) {
			return a, domain.Event{Action: domain.ActionOpened, Actor: a.OwnerID, Resource: domain.AccountResource(a.ID)}, nil
		},
		func(domain.Account) error { return nil })
	if err != nil {
		t.Fatalf("Open(%s) error = %v", a.ID, err)
	}
	return got
}

// TestStore runs the contract every domain.Store must meet.
func TestStore(t *testing.T, newRepo NewStoreFunc) {
	t.Run("OpenGetOwner", func(t *testing.T) { t.Parallel(); testOpenGetOwner(t, newRepo(t)) })
	t.Run("Missing", func(t *testing.T) { t.Parallel(); testMissing(t, newRepo(t)) })
	t.Run("OpenCountsOpenAccountsOfOwner", func(t *testing.T) { t.Parallel(); testOpenCount(t, newRepo(t)) })
	t.Run("OpenRollsBack", func(t *testing.T) { t.Parallel(); testOpenRollsBack(t, newRepo(t)) })
	t.Run("OpenSerialisesPerOwner", func(t *testing.T) { t.Parallel(); testOpenSerialises(t, newRepo(t)) })
	t.Run("Update", func(t *testing.T) { t.Parallel(); testUpdate(t, newRepo(t)) })
	t.Run("UpdateRollsBack", func(t *testing.T) { t.Parallel(); testUpdateRollsBack(t, newRepo(t)) })
	t.Run("List", func(t *testing.T) { t.Parallel(); testList(t, newRepo(t)) })
	t.Run("Audit", func(t *testing.T) { t.Parallel(); testAudit(t, newRepo(t)) })
}

func testOpenGetOwner(t *testing.T, r domain.Store) {
	ctx := context.Background()
	a := newAccount(uuid.NewString(), 0)
	a.DisplayName = "Ünïcode ✓ name"
	if got := open(t, r, a); !cmp.Equal(got, a) {
		t.Errorf("Open() returned diff (-got +want):\n%s", cmp.Diff(got, a))
	}
	got, err := r.Get(ctx, a.ID)
	if err != nil || !cmp.Equal(got, a) {
		t.Errorf("Get(%s) = %+v, %v; want %+v, nil", a.ID, got, err, a)
	}
	owner, err := r.Owner(ctx, a.ID)
	if err != nil || owner != a.OwnerID {
		t.Errorf("Owner(%s) = %q, %v; want %q, nil", a.ID, owner, err, a.OwnerID)
	}
}

func testMissing(t *testing.T, r domain.Store) {
	ctx := context.Background()
	open(t, r, newAccount(uuid.NewString(), 0))
	id := uuid.NewString()
	if _, err := r.Get(ctx, id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := r.Owner(ctx, id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Owner(missing) error = %v, want ErrNotFound", err)
	}
	called := false
	_, err := r.Update(ctx, id, func(*domain.Account) (*domain.Event, error) { called = true; return nil, nil },
		func(domain.Account) error { return nil })
	if !errors.Is(err, domain.ErrNotFound) || called {
		t.Errorf("Update(missing) error = %v, change called %v; want ErrNotFound, false", err, called)
	}
}

func testOpenCount(t *testing.T, r domain.Store) {
	ctx := context.Background()
	owner, other := uuid.NewString(), uuid.NewString()
	for i := range 3 {
		open(t, r, newAccount(owner, time.Duration(i)*time.Second))
	}
	open(t, r, newAccount(other, 0))
	closed := open(t, r, newAccount(owner, time.Hour))
	if _, err := r.Update(ctx, closed.ID, func(a *domain.Account) (*domain.Event, error) {
		a.Status = domain.StatusClosed
		return nil, nil
	}, func(domain.Account) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var seen int
	_, err := r.Open(ctx, owner, func(n int) (domain.Account, domain.Event, error) {
		seen = n
		return domain.Account{}, domain.Event{}, domain.ErrTooManyAccounts
	}, func(domain.Account) error { return nil })
	if !errors.Is(err, domain.ErrTooManyAccounts) {
		t.Errorf("Open() error = %v, want the build error unchanged", err)
	}
	if seen != 3 {
		t.Errorf("Open() counted %d open accounts, want 3 (closed and other owners' excluded)", seen)
	}
}

func testOpenRollsBack(t *testing.T, r domain.Store) {
	ctx := context.Background()
	owner := uuid.NewString()
	a := newAccount(owner, 0)
	boom := errs.New(errs.Unavailable, "ledger down")
	var confirmed domain.Account
	_, err := r.Open(ctx, owner, func(int) (domain.Account, domain.Event, error) {
		return a, domain.Event{Action: domain.ActionOpened, Actor: owner, Resource: domain.AccountResource(a.ID)}, nil
	}, func(got domain.Account) error { confirmed = got; return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Open(confirm fails) error = %v, want %v", err, boom)
	}
	if !cmp.Equal(confirmed, a) {
		t.Errorf("confirm got %+v, want the inserted account %+v", confirmed, a)
	}
	if _, err := r.Get(ctx, a.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Get after failed confirm: error = %v, want ErrNotFound (rolled back)", err)
	}
}

// testOpenSerialises races many opens for one owner against a limit of 3:
// exactly 3 must win, or the per-user limit could be beaten by concurrency.
func testOpenSerialises(t *testing.T, r domain.Store) {
	ctx := context.Background()
	owner := uuid.NewString()
	const limit, tries = 3, 12
	var wg sync.WaitGroup
	results := make(chan error, tries)
	for i := range tries {
		wg.Go(func() {
			_, err := r.Open(ctx, owner, func(n int) (domain.Account, domain.Event, error) {
				if n >= limit {
					return domain.Account{}, domain.Event{}, domain.ErrTooManyAccounts
				}
				a := newAccount(owner, time.Duration(i)*time.Millisecond)
				return a, domain.Event{Action: domain.ActionOpened, Actor: owner, Resource: domain.AccountResource(a.ID)}, nil
			}, func(domain.Account) error { time.Sleep(time.Millisecond); return nil })
			results <- err
		})
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, domain.ErrTooManyAccounts):
			t.Errorf("concurrent Open() error = %v", err)
		}
	}
	got, _ := r.List(ctx, owner, nil, 100)
	if won != limit || len(got) != limit {
		t.Errorf("concurrent opens: %d succeeded, %d stored; want %d and %d", won, len(got), limit, limit)
	}
}

func testUpdate(t *testing.T, r domain.Store) {
	ctx := context.Background()
	a := open(t, r, newAccount(uuid.NewString(), 0))
	actor := uuid.NewString()
	var confirmed domain.Account
	got, err := r.Update(ctx, a.ID, func(acc *domain.Account) (*domain.Event, error) {
		acc.Status, acc.StatusReason, acc.StatusChangedBy = domain.StatusFrozen, "fraud check", actor
		acc.UpdatedAt = acc.UpdatedAt.Add(time.Minute)
		return &domain.Event{Action: domain.ActionFrozen, Actor: actor, Resource: domain.AccountResource(acc.ID), Reason: "fraud check"}, nil
	}, func(acc domain.Account) error { confirmed = acc; return nil })
	if err != nil {
		t.Fatalf("Update() error = %v", err)
	}
	want := a
	want.Status, want.StatusReason, want.StatusChangedBy = domain.StatusFrozen, "fraud check", actor
	want.UpdatedAt = a.UpdatedAt.Add(time.Minute)
	for name, acc := range map[string]domain.Account{"returned": got, "confirmed": confirmed} {
		if !cmp.Equal(acc, want) {
			t.Errorf("Update() %s account diff (-got +want):\n%s", name, cmp.Diff(acc, want))
		}
	}
	if stored, _ := r.Get(ctx, a.ID); !cmp.Equal(stored, want) {
		t.Errorf("Get after Update diff (-got +want):\n%s", cmp.Diff(stored, want))
	}
	// No change and no event: nothing to write, and that is not an error.
	if _, err := r.Update(ctx, a.ID, func(*domain.Account) (*domain.Event, error) { return nil, nil },
		func(domain.Account) error { return nil }); err != nil {
		t.Errorf("Update(no change) error = %v, want nil", err)
	}
}

func testUpdateRollsBack(t *testing.T, r domain.Store) {
	ctx := context.Background()
	a := open(t, r, newAccount(uuid.NewString(), 0))
	boom := errors.New("boom")
	tests := []struct {
		name          string
		changeErr     error
		confirmErr    error
		wantConfirmed bool
	}{
		{"change fails", boom, nil, false},
		{"confirm fails", nil, boom, true},
	}
	for _, tt := range tests {
		confirmed := false
		_, err := r.Update(ctx, a.ID, func(acc *domain.Account) (*domain.Event, error) {
			acc.Status = domain.StatusFrozen
			return &domain.Event{Action: domain.ActionFrozen, Resource: domain.AccountResource(acc.ID)}, tt.changeErr
		}, func(domain.Account) error { confirmed = true; return tt.confirmErr })
		if !errors.Is(err, boom) || confirmed != tt.wantConfirmed {
			t.Errorf("Update(%s) error = %v, confirmed %v; want %v, %v", tt.name, err, confirmed, boom, tt.wantConfirmed)
		}
		if got, _ := r.Get(ctx, a.ID); got.Status != domain.StatusActive {
			t.Errorf("after Update(%s): status %s, want ACTIVE (rolled back)", tt.name, got.Status)
		}
	}
}

func testList(t *testing.T, r domain.Store) {
	ctx := context.Background()
	owner := uuid.NewString()
	var want []domain.Account
	for i := range 7 {
		// Pairs share a creation time, so the id must break the tie.
		want = append(want, open(t, r, newAccount(owner, time.Duration(i/2)*time.Second)))
	}
	open(t, r, newAccount(uuid.NewString(), 0))
	sortAccounts(want)

	all, err := r.List(ctx, owner, nil, 100)
	if err != nil || !cmp.Equal(all, want) {
		t.Fatalf("List(all) = %v, %v; diff (-got +want):\n%s", len(all), err, cmp.Diff(all, want))
	}
	var paged []domain.Account
	var after *domain.Cursor
	for page := 0; page < 10; page++ {
		got, err := r.List(ctx, owner, after, 3)
		if err != nil {
			t.Fatalf("List(page %d) error = %v", page, err)
		}
		if len(got) > 3 {
			t.Fatalf("List(limit 3) returned %d", len(got))
		}
		paged = append(paged, got...)
		if len(got) < 3 {
			break
		}
		last := got[len(got)-1]
		after = &domain.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if !cmp.Equal(paged, want) {
		t.Errorf("paging by 3 diff (-got +want):\n%s", cmp.Diff(paged, want))
	}
	if got, _ := r.List(ctx, uuid.NewString(), nil, 10); len(got) != 0 {
		t.Errorf("List(owner with none) = %d accounts, want 0", len(got))
	}
}

func testAudit(t *testing.T, r domain.Store) {
	for i := range 3 {
		ev := domain.Event{Action: domain.ActionFrozen, Actor: uuid.NewString(), Reason: fmt.Sprint("r", i)}
		if err := r.Audit(context.Background(), ev); err != nil {
			t.Errorf("Audit(%+v) error = %v", ev, err)
		}
	}
}

// sortAccounts orders accounts as List does.
func sortAccounts(as []domain.Account) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && compareCursor(as[j], domain.Cursor{CreatedAt: as[j-1].CreatedAt, ID: as[j-1].ID}) < 0; j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}
