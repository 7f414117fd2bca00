package domain_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// caller is the identity the platform would put on the context for tok.
func caller(u domain.User, tok domain.Tokens) identity.User {
	return identity.User{ID: u.ID, Roles: u.Roles, TokenID: tok.Access.ID, ExpiresAt: tok.Access.ExpiresAt}
}

// auditEvents returns action:outcome:reason of the audit rows about user id,
// oldest first.
func auditEvents(t *testing.T, id string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT action || ':' || outcome || ':' || reason FROM auth.audit_events
		WHERE resource = $1 ORDER BY id`, "user/"+id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIsolatedFixture(t)
	admin := f.admin(t)
	f.clock.Advance(time.Second)
	var registered []domain.User
	for range 4 {
		u, _ := f.register(t)
		registered = append(registered, u)
		f.clock.Advance(time.Second) // distinct created_at, and ties broken by id anyway
	}
	user := identity.User{ID: registered[0].ID, Roles: []string{"user"}}

	// Every page of two, oldest first: the admin, then the four.
	var got []string
	token := ""
	for page := 0; ; page++ {
		p, err := f.svc.ListUsers(ctx, domain.ListUsersInput{Actor: admin, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatalf("ListUsers(page %d) = %v", page, err)
		}
		for _, u := range p.Users {
			got = append(got, u.ID)
			if u.Status != domain.StatusActive {
				t.Errorf("user %s status = %q, want ACTIVE", u.ID, u.Status)
			}
		}
		if token = p.NextPageToken; token == "" {
			break
		}
		if page > 5 {
			t.Fatal("the list does not end")
		}
	}
	want := []string{admin.ID}
	for _, u := range registered {
		want = append(want, u.ID)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("user %d = %s, want %s", i, got[i], want[i])
		}
	}

	// A page that holds exactly the users left is the last one: no token
	// to an empty page. The largest page size is allowed.
	for _, size := range []int{len(want), domain.MaxPageSize} {
		p, err := f.svc.ListUsers(ctx, domain.ListUsersInput{Actor: admin, PageSize: size})
		if err != nil || len(p.Users) != len(want) || p.NextPageToken != "" {
			t.Errorf("ListUsers(size %d, %d users) = %d users, next page %q, %v; want every user and no next page",
				size, len(want), len(p.Users), p.NextPageToken, err)
		}
	}

	first, err := f.svc.ListUsers(ctx, domain.ListUsersInput{Actor: admin, PageSize: 1})
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("ListUsers(size 1) = %+v, %v; want a next page", first, err)
	}
	other := identity.User{ID: uuid.NewString(), Roles: []string{"admin"}}
	for _, tc := range []struct {
		name string
		in   domain.ListUsersInput
		want errs.Kind
	}{
		{"a user", domain.ListUsersInput{Actor: user}, errs.Permission},
		{"page too large", domain.ListUsersInput{Actor: admin, PageSize: 101}, errs.Invalid},
		{"negative page", domain.ListUsersInput{Actor: admin, PageSize: -1}, errs.Invalid},
		{"another admin's token", domain.ListUsersInput{Actor: other, PageToken: first.NextPageToken}, errs.Invalid},
		{"the token with another filter", domain.ListUsersInput{Actor: admin, PageToken: first.NextPageToken, Email: registered[0].Email}, errs.Invalid},
		{"a tampered token", domain.ListUsersInput{Actor: admin, PageToken: first.NextPageToken[:len(first.NextPageToken)-2] + "AA"}, errs.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.svc.ListUsers(ctx, tc.in); errs.KindOf(err) != tc.want {
				t.Errorf("ListUsers(%s) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}

	byEmail, err := f.svc.ListUsers(ctx, domain.ListUsersInput{Actor: admin, Email: "  " + registered[2].Email + " "})
	if err != nil || len(byEmail.Users) != 1 || byEmail.Users[0].ID != registered[2].ID || byEmail.NextPageToken != "" {
		t.Errorf("ListUsers(email) = %+v, %v; want exactly user %s", byEmail, err, registered[2].ID)
	}
	none, err := f.svc.ListUsers(ctx, domain.ListUsersInput{Actor: admin, Email: "nobody@example.com"})
	if err != nil || len(none.Users) != 0 {
		t.Errorf("ListUsers(unknown email) = %+v, %v; want none", none, err)
	}
}

func TestDisableUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	admin := f.admin(t)
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	other := f.login(t, u.Email, pw) // a second session

	// refused: counted as a refused status change, which an unknown user
	// is not. A caller whose token lacks the admin role is refused before
	// the database is read; the RPC layer's access rule counts that denial.
	for _, tc := range []struct {
		name    string
		in      domain.SetStatusInput
		want    error
		refused bool
	}{
		{"a user", domain.SetStatusInput{Actor: caller(u, tok), UserID: u.ID}, errs.New(errs.Permission, ""), false},
		{"forged admin token, not admin in the database", domain.SetStatusInput{Actor: identity.User{ID: u.ID, Roles: []string{"admin"}}, UserID: admin.ID}, errs.New(errs.Permission, ""), true},
		{"unknown user", domain.SetStatusInput{Actor: admin, UserID: uuid.NewString()}, errs.New(errs.NotFound, ""), false},
		{"not a uuid", domain.SetStatusInput{Actor: admin, UserID: "../admin"}, errs.New(errs.NotFound, ""), false},
		{"the admin themselves", domain.SetStatusInput{Actor: admin, UserID: admin.ID, Reason: "oops"}, domain.ErrSelfDisable, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.ctr.get("user_status:refused")
			_, err := f.svc.DisableUser(ctx, tc.in)
			if errs.KindOf(err) != errs.KindOf(tc.want) || (tc.want == domain.ErrSelfDisable && !errors.Is(err, domain.ErrSelfDisable)) {
				t.Errorf("DisableUser(%s) = %v, want %v", tc.name, err, tc.want)
			}
			if counted := f.ctr.get("user_status:refused") > before; counted != tc.refused {
				t.Errorf("DisableUser(%s) = %v, counted as a refused status change: %v, want %v", tc.name, err, counted, tc.refused)
			}
		})
	}

	got, err := f.svc.DisableUser(ctx, domain.SetStatusInput{Actor: admin, UserID: u.ID, Reason: "fraud suspected"})
	if err != nil || got.Status != domain.StatusDisabled {
		t.Fatalf("DisableUser() = %+v, %v; want a DISABLED user", got, err)
	}
	for _, s := range []domain.Tokens{tok, other} {
		if !f.revs.Contains(s.Access.ID) {
			t.Errorf("access token %s survived the disable", s.Access.ID)
		}
		if _, err := f.svc.Refresh(ctx, s.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
			t.Errorf("Refresh(after disable) = %v, want ErrInvalidRefreshToken", err)
		}
	}
	// The right password answers exactly as a wrong one.
	_, right := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: f.ip})
	_, wrong := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: "not the password", ClientIP: f.ip})
	if !errors.Is(right, domain.ErrInvalidCredentials) || right.Error() != wrong.Error() {
		t.Errorf("Login(disabled, right password) = %v; want the wrong password's %v", right, wrong)
	}
	if n := f.ctr.get("login_failed:user_disabled"); n != 1 {
		t.Errorf("disabled logins counted %d, want 1", n)
	}
	if again, err := f.svc.DisableUser(ctx, domain.SetStatusInput{Actor: admin, UserID: u.ID, Reason: "again"}); err != nil || again.Status != domain.StatusDisabled {
		t.Errorf("DisableUser(again) = %+v, %v; want no change", again, err)
	}

	back, err := f.svc.EnableUser(ctx, domain.SetStatusInput{Actor: admin, UserID: u.ID, Reason: "cleared"})
	if err != nil || back.Status != domain.StatusActive {
		t.Fatalf("EnableUser() = %+v, %v; want an ACTIVE user", back, err)
	}
	f.login(t, u.Email, pw)
	if _, err := f.svc.Refresh(ctx, other.Refresh, f.ip); err == nil {
		t.Error("an enable brought a revoked session back")
	}

	events := auditEvents(t, u.ID)
	for _, want := range []string{"auth.user_disabled:success:", "auth.login_failed:failure:user_disabled", "auth.user_enabled:success:"} {
		if !slices.Contains(events, want) {
			t.Errorf("audit trail %v lacks %s", events, want)
		}
	}
	if !slices.Contains(auditEvents(t, admin.ID), "auth.user_disabled:denied:self_disable") {
		t.Errorf("the refused self-disable was not audited: %v", auditEvents(t, admin.ID))
	}
}

// TestDisabledUserRefreshRefused: the refresh reads the status under the
// user's lock, so even a family the disable has not revoked issues nothing.
func TestDisabledUserRefreshRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	err := f.repo.InTx(ctx, func(tx domain.Tx) error {
		_, err := tx.SetStatus(ctx, u.ID, domain.StatusDisabled, f.clock.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refresh(ctx, tok.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Errorf("Refresh(disabled user, live family) = %v, want ErrInvalidRefreshToken", err)
	}
	if n := f.ctr.get("token_rejected:refresh_user_disabled"); n != 1 {
		t.Errorf("refreshes refused for a disabled user counted %d, want 1", n)
	}
}

// TestAdminsCannotDisableEachOtherAtOnce: two admins each disable the
// other at the same moment; without the admins' locks both would succeed
// and leave no active admin.
func TestAdminsCannotDisableEachOtherAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	for round := range 5 {
		a, b := f.admin(t), f.admin(t)
		var wg sync.WaitGroup
		errc := make(chan error, 2)
		for _, pair := range [][2]identity.User{{a, b}, {b, a}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.svc.DisableUser(ctx, domain.SetStatusInput{Actor: pair[0], UserID: pair[1].ID, Reason: "race"})
				errc <- err
			}()
		}
		wg.Wait()
		close(errc)
		ok := 0
		for err := range errc {
			if err == nil {
				ok++
			} else if errs.KindOf(err) != errs.Permission {
				t.Errorf("round %d: DisableUser = %v, want success or permission denied", round, err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d of two crossed disables succeeded, want exactly 1", round, ok)
		}
	}
}

// TestDisabledAdminIsNotCountedAsAdmin: a disabled admin can neither act
// nor keep the last active admin from being demoted by mistake.
func TestDisabledAdminIsNotCountedAsAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	a, b := f.admin(t), f.admin(t)
	if _, err := f.svc.DisableUser(ctx, domain.SetStatusInput{Actor: a, UserID: b.ID, Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	u, _ := f.register(t)
	if _, err := f.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: b, UserID: u.ID, Roles: []string{"admin", "user"}}); errs.KindOf(err) != errs.Permission {
		t.Errorf("SetUserRoles(by a disabled admin) = %v, want permission denied", err)
	}
	if _, err := f.svc.EnableUser(ctx, domain.SetStatusInput{Actor: b, UserID: b.ID, Reason: "me again"}); errs.KindOf(err) != errs.Permission {
		t.Errorf("EnableUser(a disabled admin enables themselves) = %v, want permission denied", err)
	}
}
