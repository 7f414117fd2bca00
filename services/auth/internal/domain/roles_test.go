package domain_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// admin creates an admin through the bootstrap path and returns it as a
// caller with an admin token.
func (f *fixture) admin(t *testing.T) identity.User {
	t.Helper()
	email := "admin-" + uuid.NewString() + "@example.com"
	if err := f.svc.EnsureAdmin(context.Background(), email, "admin password 123"); err != nil {
		t.Fatalf("EnsureAdmin: %v", err)
	}
	var u domain.User
	if err := f.repo.InTx(context.Background(), func(tx domain.Tx) error {
		var err error
		u, _, err = tx.UserByEmail(context.Background(), email)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return identity.User{ID: u.ID, Roles: u.Roles, TokenID: uuid.NewString()}
}

// TestSetUserRoles is not parallel: it counts the admins in the database,
// which other tests add to.
func TestSetUserRoles(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	demoteAll(t, f)
	admin := f.admin(t)
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	userCaller := identity.User{ID: u.ID, Roles: u.Roles}

	for _, tc := range []struct {
		name string
		in   domain.SetRolesInput
		want errs.Kind
	}{
		{"not an admin", domain.SetRolesInput{Actor: userCaller, UserID: u.ID, Roles: []string{"admin"}}, errs.Permission},
		{"forged admin token, not admin in the database", domain.SetRolesInput{Actor: identity.User{ID: u.ID, Roles: []string{"admin"}}, UserID: u.ID, Roles: []string{"admin"}}, errs.Permission},
		{"unknown user", domain.SetRolesInput{Actor: admin, UserID: uuid.NewString(), Roles: []string{"user"}}, errs.NotFound},
		{"not a uuid", domain.SetRolesInput{Actor: admin, UserID: "../../admin", Roles: []string{"user"}}, errs.NotFound},
		{"unknown role", domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"root"}}, errs.Invalid},
		{"no roles", domain.SetRolesInput{Actor: admin, UserID: u.ID}, errs.Invalid},
		{"last admin demotes self", domain.SetRolesInput{Actor: admin, UserID: admin.ID, Roles: []string{"user"}}, errs.Refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.SetUserRoles(ctx, tc.in)
			if errs.KindOf(err) != tc.want {
				t.Errorf("SetUserRoles(%s) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}

	got, err := f.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"user", "manager", "manager"}})
	if err != nil {
		t.Fatalf("SetUserRoles(promote) = %v", err)
	}
	if len(got.Roles) != 2 || got.Roles[0] != "manager" || got.Roles[1] != "user" {
		t.Errorf("roles = %v, want [manager user]", got.Roles)
	}
	// The change takes effect at once: the old tokens are dead.
	if !f.revs.Contains(tok.Access.ID) {
		t.Error("the user's access token survived a role change")
	}
	if _, err := f.svc.Refresh(ctx, tok.Refresh, f.ip); errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("Refresh(after role change) = %v, want unauthenticated", err)
	}
	if f.ctr.get("roles_change:ok") != 1 {
		t.Errorf("role changes counted %d, want 1", f.ctr.get("roles_change:ok"))
	}
}

// demoteAll removes the admin role from every user, so a test starts with none.
func demoteAll(t *testing.T, f *fixture) {
	t.Helper()
	err := f.repo.InTx(context.Background(), func(tx domain.Tx) error {
		ids, err := tx.LockAdmins(context.Background())
		for _, id := range ids {
			if _, err := tx.SetRoles(context.Background(), id, []string{"user"}, f.clock.Now()); err != nil {
				return err
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAdminsCannotDemoteEachOtherAtOnce: two admins each demote the other at
// the same moment. Without locking, both would see two admins and both
// succeed, leaving none.
func TestAdminsCannotDemoteEachOtherAtOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	for round := range 5 {
		demoteAll(t, f)
		a, b := f.admin(t), f.admin(t)
		var wg sync.WaitGroup
		errc := make(chan error, 2)
		for _, pair := range [][2]identity.User{{a, b}, {b, a}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: pair[0], UserID: pair[1].ID, Roles: []string{"user"}})
				errc <- err
			}()
		}
		wg.Wait()
		close(errc)
		var ok, refused int
		for err := range errc {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, domain.ErrLastAdmin), errs.KindOf(err) == errs.Permission:
				refused++
			default:
				t.Fatalf("round %d: SetUserRoles = %v", round, err)
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("round %d: %d succeeded, %d refused; want exactly one of each", round, ok, refused)
		}
	}
}

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	email := "Boss-" + uuid.NewString() + "@Example.com"
	for range 2 {
		if err := f.svc.EnsureAdmin(ctx, email, "first password 1"); err != nil {
			t.Fatalf("EnsureAdmin = %v", err)
		}
	}
	// A restart with a different password must not reset the admin's password.
	if err := f.svc.EnsureAdmin(ctx, email, "other password 2"); err != nil {
		t.Fatal(err)
	}
	tok := f.login(t, email, "first password 1")
	if tok.Access.ID == "" {
		t.Fatal("no token")
	}
	// An existing user with the admin email is promoted, not duplicated,
	// when the admin password is its password: the operator owns it.
	u, pw := f.register(t)
	if err := f.svc.EnsureAdmin(ctx, u.Email, pw); err != nil {
		t.Fatal(err)
	}
	me, err := f.svc.GetMe(ctx, identity.User{ID: u.ID})
	if err != nil || !me.IsAdmin() {
		t.Errorf("GetMe(promoted) = %+v, %v; want admin", me, err)
	}
	for _, bad := range []struct{ email, pw string }{{"not-an-email", "long enough password"}, {"a@b.c", "short"},
		{"a@b.c", "Administrator1"}, {"a@b.c", "twelve\x00chars!"}} {
		if err := f.svc.EnsureAdmin(ctx, bad.email, bad.pw); errs.KindOf(err) != errs.Invalid {
			t.Errorf("EnsureAdmin(%q, %d chars) = %v, want invalid", bad.email, len(bad.pw), err)
		}
	}
}

// TestEnsureAdminRefusesSquatter is the attack: someone registers the email
// the operator will later configure as BANK_ADMIN_EMAIL, hoping the
// bootstrap promotes their account. It must refuse, leave the squatter a
// plain user, keep refusing on every restart, and audit each refusal.
func TestEnsureAdminRefusesSquatter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	squatter, squatterPW := f.register(t)
	for attempt := range 2 {
		err := f.svc.EnsureAdmin(ctx, squatter.Email, "the operator's password")
		if !errors.Is(err, domain.ErrAdminEmailTaken) || errs.KindOf(err) != errs.Conflict {
			t.Fatalf("EnsureAdmin(squatted email) #%d = %v, want ErrAdminEmailTaken", attempt, err)
		}
	}
	me, err := f.svc.GetMe(ctx, identity.User{ID: squatter.ID})
	if err != nil || me.IsAdmin() {
		t.Errorf("GetMe(squatter) = %+v, %v; want a non-admin", me, err)
	}
	if got := f.ctr.get("admin_bootstrap:refused"); got != 2 {
		t.Errorf("admin_bootstrap:refused counted %d times, want 2", got)
	}
	var denied int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM auth.audit_events
		WHERE action = $1 AND resource = $2 AND outcome = 'denied' AND reason = 'password_mismatch'`,
		domain.EventAdminBootstrap, "user/"+squatter.ID).Scan(&denied); err != nil || denied != 2 {
		t.Errorf("audited refusals = %d, %v; want 2", denied, err)
	}
	// The squatter's own account still works as before.
	if tok := f.login(t, squatter.Email, squatterPW); tok.Access.ID == "" {
		t.Error("squatter lost their own login")
	}
}

func TestEnsureAdminConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	email := "race-" + uuid.NewString() + "@example.com"
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.svc.EnsureAdmin(ctx, email, "replica password"); err != nil {
				t.Errorf("EnsureAdmin(concurrent replicas) = %v, want nil", err)
			}
		}()
	}
	wg.Wait()
}
