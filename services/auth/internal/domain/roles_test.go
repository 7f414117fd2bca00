package domain_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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

	// refused is whether the refusal is counted as a refused role change:
	// an admin's rule (who is an admin, the last admin) refused it, as
	// opposed to a request that names nothing to change. A caller whose
	// token lacks the admin role is refused before the database is read;
	// the RPC layer's access rule counts that denial.
	for _, tc := range []struct {
		name    string
		in      domain.SetRolesInput
		want    errs.Kind
		refused bool
	}{
		{"not an admin", domain.SetRolesInput{Actor: userCaller, UserID: u.ID, Roles: []string{"admin"}}, errs.Permission, false},
		{"forged admin token, not admin in the database", domain.SetRolesInput{Actor: identity.User{ID: u.ID, Roles: []string{"admin"}}, UserID: u.ID, Roles: []string{"admin"}}, errs.Permission, true},
		{"unknown user", domain.SetRolesInput{Actor: admin, UserID: uuid.NewString(), Roles: []string{"user"}}, errs.NotFound, false},
		{"not a uuid", domain.SetRolesInput{Actor: admin, UserID: "../../admin", Roles: []string{"user"}}, errs.NotFound, false},
		{"unknown role", domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"root"}}, errs.Invalid, false},
		{"no roles", domain.SetRolesInput{Actor: admin, UserID: u.ID}, errs.Invalid, false},
		{"last admin demotes self", domain.SetRolesInput{Actor: admin, UserID: admin.ID, Roles: []string{"user"}}, errs.Refused, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.ctr.get("roles_change:refused")
			_, err := f.svc.SetUserRoles(ctx, tc.in)
			if errs.KindOf(err) != tc.want {
				t.Errorf("SetUserRoles(%s) = %v, want %v", tc.name, err, tc.want)
			}
			if counted := f.ctr.get("roles_change:refused") > before; counted != tc.refused {
				t.Errorf("SetUserRoles(%s) = %v, counted as a refused role change: %v, want %v", tc.name, err, counted, tc.refused)
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
	if events := auditEvents(t, u.ID); countOf(events, domain.EventRolesChanged+":success:") != 1 {
		t.Errorf("audit trail %v, want the role change audited once", events)
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
	var created string
	if err := f.db.QueryRow(ctx, `SELECT id::text FROM auth.users WHERE email = lower($1)`, email).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if events := auditEvents(t, created); countOf(events, "auth.admin_bootstrap:success:created") != 1 {
		t.Errorf("audit trail of the bootstrap admin %v, want one auth.admin_bootstrap:success:created", events)
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
	if events := auditEvents(t, u.ID); countOf(events, "auth.admin_bootstrap:success:promoted") != 1 {
		t.Errorf("audit trail of the promoted user %v, want one auth.admin_bootstrap:success:promoted", events)
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

// TestEnsureAdminRacingAnotherReplica sets up, exactly, the two races of
// replicas bootstrapping the same admin at once. The other replica's write
// is held uncommitted until this one waits on it, then committed.
//
//   - created meanwhile: the other replica inserts the admin between this
//     one's look-up and its insert. The insert then conflicts, and this one
//     must look again and find the admin, not fail the start-up.
//   - promoted meanwhile: the email's owner, whose password is the admin
//     password, is promoted by the other replica while this one verifies the
//     password. This one must then change nothing, and audit no promotion
//     it did not make.
func TestEnsureAdminRacingAnotherReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	const pw = "replica password 1"
	hash, err := mustHasher(t).Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// other returns the email to bootstrap, the id of the user who
		// must end up its admin, and the other replica's write, on that id.
		other func(t *testing.T) (email, id, query string, args []any)
	}{
		{"created meanwhile", func(*testing.T) (string, string, string, []any) {
			email, id := "replica-"+uuid.NewString()+"@example.com", uuid.NewString()
			return email, id, `WITH u AS (INSERT INTO auth.users (id, email, display_name, roles, created_at, updated_at)
					VALUES ($1, $2, 'Administrator', '{admin,user}', now(), now()) RETURNING id)
				INSERT INTO auth.credentials (user_id, password_hash, updated_at) SELECT id, $3, now() FROM u`,
				[]any{id, email, hash}
		}},
		{"promoted meanwhile", func(t *testing.T) (string, string, string, []any) {
			u, err := f.svc.Register(ctx, domain.RegisterInput{Email: "owner-" + uuid.NewString() + "@example.com", Password: pw, DisplayName: "Owner"})
			if err != nil {
				t.Fatal(err)
			}
			return u.Email, u.ID, `UPDATE auth.users SET roles = '{admin,user}', updated_at = now() WHERE id = $1`, []any{u.ID}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			email, id, query, args := tt.other(t)
			held := holdRow(t, f, query, args...)
			var ensureErr error
			done := make(chan struct{})
			go func() { defer close(done); ensureErr = f.svc.EnsureAdmin(ctx, email, pw) }()
			if !held.waitBlocked(t, 1, done) {
				t.Fatalf("EnsureAdmin = %v without waiting for the other replica's write: the test no longer sets up the race", ensureErr)
			}
			if err := held.tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			<-done
			if ensureErr != nil {
				t.Fatalf("EnsureAdmin(%s by another replica) = %v, want nil: the admin exists", tt.name, ensureErr)
			}
			var ids []string
			rows, err := f.db.Query(ctx, `SELECT id::text FROM auth.users WHERE email = $1 AND 'admin' = ANY (roles)`, email)
			if err == nil {
				ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil || len(ids) != 1 || ids[0] != id {
				t.Errorf("admins with the email = %v, %v; want only the other replica's, %s", ids, err, id)
			}
			for _, ev := range auditEvents(t, id) {
				if strings.HasPrefix(ev, domain.EventAdminBootstrap+":") {
					t.Errorf("this replica audited %s on the admin the other replica made", ev)
				}
			}
		})
	}
}
