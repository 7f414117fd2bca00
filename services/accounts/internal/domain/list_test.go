package domain_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// seed stores n accounts of owner directly (past the open limit), created
// a second apart, and returns their ids oldest first.
func (f *fixture) seed(owner string, n int) []string {
	ids := make([]string, n)
	at := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range ids {
		ids[i] = uuid.NewString()
		f.repo.Put(domain.Account{ID: ids[i], OwnerID: owner, Currency: "EUR", Status: domain.StatusActive,
			CreatedAt: at.Add(time.Duration(i) * time.Second), UpdatedAt: at})
	}
	return ids
}

// listAll pages through q with u and returns the ids seen and the number
// of pages.
func (f *fixture) listAll(t *testing.T, u identity.User, q domain.ListQuery) ([]string, int) {
	t.Helper()
	var ids []string
	for pages := 1; pages < 100; pages++ {
		page, err := f.svc.List(context.Background(), u, q)
		if err != nil {
			t.Fatalf("List(%+v) error = %v", q, err)
		}
		for _, v := range page.Accounts {
			ids = append(ids, v.ID)
		}
		if page.NextPageToken == "" {
			return ids, pages
		}
		q.PageToken = page.NextPageToken
	}
	t.Fatal("List never reached a last page")
	return nil, 0
}

func TestListPagesThroughOwnAccounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		n, size   int
		wantPages int
	}{
		{"default size", 45, 0, 3},
		{"exact multiple", 40, 20, 2},
		{"one per page", 3, 1, 3},
		{"max size", 150, 100, 2},
		{"none", 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			u := user()
			want := f.seed(u.ID, tt.n)
			f.seed(uuid.NewString(), 5) // someone else's, never shown
			got, pages := f.listAll(t, u, domain.ListQuery{PageSize: tt.size})
			if len(got) != len(want) || pages != tt.wantPages {
				t.Fatalf("List pages = %d with %d accounts, want %d with %d", pages, len(got), tt.wantPages, len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("List order: position %d = %s, want %s", i, got[i], want[i])
				}
			}
			if calls := f.ledger.Calls("Balances"); tt.n > 0 && calls != pages {
				t.Errorf("ledger Balances calls = %d, want one per page (%d)", calls, pages)
			}
		})
	}
}

func TestListShowsBalances(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := user()
	v := f.open(t, u)
	f.ledger.SetMoney(v.ID, 500, 200)
	page, err := f.svc.List(context.Background(), u, domain.ListQuery{})
	if err != nil || len(page.Accounts) != 1 || page.Accounts[0].Balance != 500 || page.Accounts[0].Available != 300 {
		t.Errorf("List() = %+v, %v; want one account with balance 500, available 300", page, err)
	}
}

func TestListOtherOwner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := user()
	bIDs := f.seed(b.ID, 3)
	tests := []struct {
		name    string
		actor   identity.User
		wantErr error
	}{
		{"user", user(identity.RoleUser), domain.ErrOtherOwner},
		{"user with unknown role", user("superuser"), domain.ErrOtherOwner},
		{"manager", user(identity.RoleManager), nil},
		{"admin", user(identity.RoleAdmin), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page, err := f.svc.List(context.Background(), tt.actor, domain.ListQuery{OwnerID: b.ID})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("List(owner B as %s) error = %v, want %v", tt.name, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if errs.KindOf(err) != errs.Permission || len(page.Accounts) != 0 {
					t.Errorf("List(owner B as %s) = %d accounts, kind %v; want none, Permission", tt.name, len(page.Accounts), errs.KindOf(err))
				}
				return
			}
			if len(page.Accounts) != len(bIDs) {
				t.Errorf("List(owner B as %s) = %d accounts, want %d", tt.name, len(page.Accounts), len(bIDs))
			}
		})
	}
	// The caller reports the denial, counted and audited through the
	// platform (rpc TestUserCannotReachAnotherUsersAccounts); the domain
	// writes nothing itself.
	t.Cleanup(func() {
		if evs := f.repo.Events(); len(evs) != 0 {
			t.Errorf("List wrote audit events %+v, want none", evs)
		}
	})
}

func TestListOwnIDIsNotAnotherOwner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := user()
	f.seed(u.ID, 2)
	for _, owner := range []string{u.ID, upper(u.ID)} {
		if page, err := f.svc.List(context.Background(), u, domain.ListQuery{OwnerID: owner}); err != nil || len(page.Accounts) != 2 {
			t.Errorf("List(ownerId = own id %q) = %d, %v; want 2, nil", owner, len(page.Accounts), err)
		}
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestListRejectsBadQueries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := user(identity.RoleManager)
	tests := []struct {
		name  string
		q     domain.ListQuery
		field string
	}{
		{"page size too big", domain.ListQuery{PageSize: 101}, "pageSize"},
		{"negative page size", domain.ListQuery{PageSize: -1}, "pageSize"},
		{"malformed owner", domain.ListQuery{OwnerID: "x' OR '1'='1"}, "ownerId"},
	}
	for _, tt := range tests {
		_, err := f.svc.List(context.Background(), u, tt.q)
		if e, ok := errs.As(err); !ok || e.Kind != errs.Invalid || len(e.Violations) != 1 || e.Violations[0].Field != tt.field {
			t.Errorf("List(%s) error = %v, want Invalid on %s", tt.name, err, tt.field)
		}
	}
}

// A page token can be used only by the user it was minted for, for the
// owner it was minted for, exactly as it was minted.
func TestListPageTokenAttacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := user(), user()
	mgr := user(identity.RoleManager)
	f.seed(a.ID, 5)
	f.seed(b.ID, 5)
	first, err := f.svc.List(context.Background(), b, domain.ListQuery{PageSize: 2})
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("List(B) = %+v, %v; want a next page", first, err)
	}
	bToken := first.NextPageToken
	mgrPage, err := f.svc.List(context.Background(), mgr, domain.ListQuery{OwnerID: b.ID, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(bToken)
	raw[len(raw)/2] ^= 1
	otherKey, _ := pagetoken.New(make([]byte, 32))
	tests := []struct {
		name  string
		actor identity.User
		q     domain.ListQuery
	}{
		{"B's token used by A", a, domain.ListQuery{PageToken: bToken}},
		{"B's token used by a manager for B", mgr, domain.ListQuery{OwnerID: b.ID, PageToken: bToken}},
		{"manager's token for B used by B", b, domain.ListQuery{PageToken: mgrPage.NextPageToken}},
		{"manager's token for B used for A", mgr, domain.ListQuery{OwnerID: a.ID, PageToken: mgrPage.NextPageToken}},
		{"bit flipped", b, domain.ListQuery{PageToken: base64.RawURLEncoding.EncodeToString(raw)}},
		{"truncated", b, domain.ListQuery{PageToken: bToken[:len(bToken)-1]}},
		{"another key", b, domain.ListQuery{PageToken: otherKey.Encode("accounts.list|"+b.ID+"|"+b.ID, make([]byte, 24))}},
		{"garbage", b, domain.ListQuery{PageToken: "eyJpZCI6MX0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page, err := f.svc.List(context.Background(), tt.actor, tt.q)
			if errs.KindOf(err) != errs.Invalid || errs.SafeMessage(err) != "invalid page token" || len(page.Accounts) != 0 {
				t.Errorf("List(%s) = %d accounts, %v; want none, invalid page token", tt.name, len(page.Accounts), err)
			}
		})
	}
	// Naming B as a plain user is refused before the token is even read.
	if _, err := f.svc.List(context.Background(), a, domain.ListQuery{OwnerID: b.ID, PageToken: bToken}); !errors.Is(err, domain.ErrOtherOwner) {
		t.Errorf("List(B's token used by A naming B) error = %v, want ErrOtherOwner", err)
	}
	// The genuine token still works for its owner.
	if page, err := f.svc.List(context.Background(), b, domain.ListQuery{PageSize: 2, PageToken: bToken}); err != nil || len(page.Accounts) != 2 {
		t.Errorf("List(B's own token) = %d, %v; want 2, nil", len(page.Accounts), err)
	}
}

// A well-signed token whose cursor has the wrong shape (as another build
// might mint) is refused, not misread.
func TestListRefusesMisshapenCursor(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	codec, _ := pagetoken.New(key)
	f := newFixture(t)
	svc, err := domain.NewService(f.repo, f.ledger, domain.Config{PageTokens: codec})
	if err != nil {
		t.Fatal(err)
	}
	u := user()
	tok := codec.Encode("accounts.list|"+u.ID+"|"+u.ID, []byte("short"))
	if _, err := svc.List(context.Background(), u, domain.ListQuery{PageToken: tok}); errs.KindOf(err) != errs.Invalid {
		t.Errorf("List(misshapen cursor) error = %v, want Invalid", err)
	}
}
