package domain_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// heldRow is a row lock taken on a connection of its own and kept until
// released. A test uses it to stop another transaction at the statement that
// needs the row, which sets up a race's interleaving exactly, every run.
type heldRow struct {
	conn *pgx.Conn
	tx   pgx.Tx
	pid  uint32
	db   *pgxpool.Pool // for watching who waits; not the held connection
}

// holdRow runs query, which must lock exactly one row, in a transaction of
// its own and keeps that transaction open until release or the test's end.
func holdRow(t *testing.T, f *fixture, query string, args ...any) *heldRow {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	h := &heldRow{conn: conn, db: f.db}
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&h.pid); err != nil {
		t.Fatal(err)
	}
	if h.tx, err = conn.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.tx.Rollback(ctx) })
	tag, err := h.tx.Exec(ctx, query, args...)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("hold a row with %q: %v rows, %v; want 1 row", query, tag.RowsAffected(), err)
	}
	return h
}

// waitBlocked waits until n backends wait on h, directly or behind another
// waiter, and reports true; or reports false once done is closed first.
func (h *heldRow) waitBlocked(t *testing.T, n int, done <-chan struct{}) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		err := h.db.QueryRow(context.Background(), `WITH RECURSIVE waiting(pid) AS (
				SELECT a.pid FROM pg_stat_activity a WHERE $1::int = ANY (pg_blocking_pids(a.pid))
				UNION
				SELECT a.pid FROM pg_stat_activity a JOIN waiting w ON w.pid = ANY (pg_blocking_pids(a.pid)))
			SELECT count(*) FROM waiting`, h.pid).Scan(&waiting)
		if err != nil {
			t.Fatalf("count the backends waiting on the held row: %v", err)
		}
		if waiting >= n {
			return true
		}
		select {
		case <-done:
			return false
		case <-time.After(2 * time.Millisecond):
		}
	}
	t.Fatalf("after 10s, fewer than %d backends wait on the held row", n)
	return false
}

// race runs first until it waits on h, then second until it waits too (or
// has finished without waiting), then releases h and waits for both: first
// always takes its locks before second asks for them.
func (h *heldRow) race(t *testing.T, first, second func()) {
	t.Helper()
	firstDone, secondDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(firstDone); first() }()
	if !h.waitBlocked(t, 1, firstDone) {
		t.Fatal("the first party never waited on the held row: the test no longer sets up the race")
	}
	go func() { defer close(secondDone); second() }()
	h.waitBlocked(t, 2, secondDone)
	if err := h.tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-firstDone
	<-secondDone
}

// refreshHash is the stored form of a raw refresh token.
func refreshHash(t *testing.T, raw string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// victim is a user with one session; spent is a refresh token of that
// session already used once, for the reuse case.
type victim struct {
	user    domain.User
	session domain.Tokens
	spent   domain.Tokens
}

// newAdminVictim registers a user, makes them an admin and logs them in,
// spending the login's refresh token once.
func (f *fixture) newAdminVictim(t *testing.T, admin identity.User) victim {
	t.Helper()
	ctx := context.Background()
	u, pw := f.register(t)
	u, err := f.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"admin", "user"}})
	if err != nil {
		t.Fatalf("SetUserRoles(promote) = %v", err)
	}
	spent := f.login(t, u.Email, pw)
	session, err := f.svc.Refresh(ctx, spent.Refresh, f.ip)
	if err != nil {
		t.Fatalf("Refresh(login) = %v", err)
	}
	return victim{user: u, session: session, spent: spent}
}

// TestRevocationRacingRefresh stops a refresh of the victim's session after
// it has locked the session (the test holds the row of the refresh token it
// spends), starts a revocation of that session, and only then lets the
// refresh go on. Once the revocation returns, the access token the refresh
// issued must be revoked and its refresh token refused. In the last case the
// revocation comes first and the refresh must wait for it and be refused.
//
// The cases run one at a time on a database of their own: a role change
// locks every admin, so it would wait on another case's held session.
func TestRevocationRacingRefresh(t *testing.T) {
	t.Parallel()
	f := newIsolatedFixture(t)
	admin := f.admin(t)
	demote := func(f *fixture, v victim) error {
		_, err := f.svc.SetUserRoles(context.Background(),
			domain.SetRolesInput{Actor: admin, UserID: v.user.ID, Roles: []string{"user"}})
		return err
	}
	logout := func(f *fixture, v victim) error {
		caller := identity.User{ID: v.user.ID, Roles: v.user.Roles, TokenID: v.session.Access.ID, ExpiresAt: v.session.Access.ExpiresAt}
		return f.svc.Logout(context.Background(), caller, v.session.Refresh, f.ip)
	}
	reuse := func(f *fixture, v victim) error {
		_, err := f.svc.Refresh(context.Background(), v.spent.Refresh, f.ip)
		return err
	}
	tests := []struct {
		name         string
		revoke       func(*fixture, victim) error
		wantErr      error // what revoke returns
		revokerFirst bool  // hold the family row, so the revocation locks the user first
	}{
		{name: "role change", revoke: demote},
		{name: "logout by the victim while a thief refreshes", revoke: logout},
		{name: "reuse of a spent token", revoke: reuse, wantErr: domain.ErrInvalidRefreshToken},
		{name: "role change first", revoke: demote, revokerFirst: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			v := f.newAdminVictim(t, admin)
			var (
				got                   domain.Tokens
				refreshErr, revokeErr error
			)
			refresh := func() { got, refreshErr = f.svc.Refresh(ctx, v.session.Refresh, f.ip) }
			revoke := func() { revokeErr = tt.revoke(f, v) }
			if tt.revokerFirst {
				held := holdRow(t, f, `SELECT 1 FROM auth.refresh_families WHERE id =
					(SELECT family_id FROM auth.refresh_tokens WHERE token_hash = $1) FOR UPDATE`, refreshHash(t, v.session.Refresh))
				held.race(t, revoke, refresh)
			} else {
				held := holdRow(t, f, `SELECT 1 FROM auth.refresh_tokens WHERE token_hash = $1 FOR UPDATE`,
					refreshHash(t, v.session.Refresh))
				held.race(t, refresh, revoke)
			}

			if !errors.Is(revokeErr, tt.wantErr) {
				t.Fatalf("%s = %v, want %v", tt.name, revokeErr, tt.wantErr)
			}
			if tt.revokerFirst {
				if !errors.Is(refreshErr, domain.ErrInvalidRefreshToken) {
					t.Fatalf("Refresh(after the revocation took its locks) = %v, want ErrInvalidRefreshToken", refreshErr)
				}
				return
			}
			if refreshErr != nil {
				t.Fatalf("Refresh(holding the session first) = %v, want success", refreshErr)
			}
			roles := got.Access.Raw[strings.LastIndex(got.Access.Raw, ":")+1:]
			if !f.revs.Contains(got.Access.ID) {
				t.Errorf("the access token (roles %s) issued by the racing refresh is not revoked after the %s returned", roles, tt.name)
			}
			stored, err := f.repo.ActiveRevocations(ctx, f.clock.Now())
			if err != nil || !hasID(stored, got.Access.ID) {
				t.Errorf("ActiveRevocations() = %d revocations, %v; want the racing access token stored for other replicas", len(stored), err)
			}
			if _, err := f.svc.Refresh(ctx, got.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
				t.Errorf("Refresh(racing refresh token) = %v, want ErrInvalidRefreshToken", err)
			}
		})
	}
}

// TestLoginRacingRoleChange stops a login after it has read the user (the
// test holds the login's counter row), demotes the user, and then lets the
// login finish. The login's token is issued after the demotion returned, so
// it must carry only the roles the user has then.
func TestLoginRacingRoleChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIsolatedFixture(t)
	admin := f.admin(t)
	u, pw := f.register(t)
	if _, err := f.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"admin", "user"}}); err != nil {
		t.Fatalf("SetUserRoles(promote) = %v", err)
	}
	ip := randomIP()
	held := holdRow(t, f, `INSERT INTO auth.login_counters AS c (scope, key, count, window_start)
		VALUES ('ip', $1, 0, 'epoch') ON CONFLICT (scope, key) DO UPDATE SET count = c.count`, identity.ClientKey(ip))
	var (
		got                 domain.Tokens
		loginErr, demoteErr error
	)
	held.race(t, func() {
		got, loginErr = f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: ip})
	}, func() {
		_, demoteErr = f.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"user"}})
	})
	if demoteErr != nil {
		t.Fatalf("SetUserRoles(demote) = %v", demoteErr)
	}
	if loginErr != nil {
		t.Fatalf("Login(racing a demotion) = %v, want success", loginErr)
	}
	if !strings.HasSuffix(got.Access.Raw, ":user") && !f.revs.Contains(got.Access.ID) {
		t.Errorf("Login(racing a demotion) issued %q, live; want the roles the user has after the demotion (user)", got.Access.Raw)
	}
}

// TestRefreshesDoNotHoldOffARoleChange: a refresh that asks for the user's
// row after a role change has asked for it waits behind the change, so
// sessions refreshing in a loop cannot keep a demotion waiting. While a
// refresh locked the user's row FOR SHARE, each new refresh joined the ones
// holding it without queueing behind the waiting FOR UPDATE: with 16
// sessions refreshing, a demotion waited up to 5 s.
//
// The order is set up exactly, with no clock: refresh A locks the user and
// stops (the test holds A's token row), the demotion waits for the user's
// row behind A, and only then do the user's other sessions refresh. They
// must queue behind the demotion and be refused once it has revoked their
// families; a refresh that overtakes the demotion succeeds instead.
func TestRefreshesDoNotHoldOffARoleChange(t *testing.T) {
	t.Parallel()
	const later = 3 // sessions that refresh after the demotion asked for the user
	ctx := context.Background()
	f := newIsolatedFixture(t)
	admin := f.admin(t)
	u, pw := f.register(t)
	if _, err := f.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"admin", "user"}}); err != nil {
		t.Fatalf("SetUserRoles(promote) = %v", err)
	}
	first := f.login(t, u.Email, pw)
	sessions := make([]domain.Tokens, later)
	for i := range sessions {
		sessions[i] = f.login(t, u.Email, pw)
	}
	held := holdRow(t, f, `SELECT 1 FROM auth.refresh_tokens WHERE token_hash = $1 FOR UPDATE`, refreshHash(t, first.Refresh))

	var (
		firstGot              domain.Tokens
		firstErr, demoteErr   error
		got                   = make([]domain.Tokens, later)
		laterErr              = make([]error, later)
		firstDone, demoteDone = make(chan struct{}), make(chan struct{})
		laterDone             = make(chan struct{})
		wg                    sync.WaitGroup
	)
	go func() { defer close(firstDone); firstGot, firstErr = f.svc.Refresh(ctx, first.Refresh, f.ip) }()
	if !held.waitBlocked(t, 1, firstDone) {
		t.Fatal("the first refresh never waited on its held token: the test no longer sets up the order")
	}
	go func() {
		defer close(demoteDone)
		_, demoteErr = f.svc.SetUserRoles(ctx, domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"user"}})
	}()
	if !held.waitBlocked(t, 2, demoteDone) {
		t.Fatalf("SetUserRoles(demote) = %v without waiting for the refresh that holds the user's row", demoteErr)
	}
	for i, s := range sessions {
		wg.Go(func() { got[i], laterErr[i] = f.svc.Refresh(ctx, s.Refresh, f.ip) })
	}
	go func() { wg.Wait(); close(laterDone) }()
	queued := held.waitBlocked(t, 2+later, laterDone)
	if err := held.tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-firstDone
	<-demoteDone
	<-laterDone

	if demoteErr != nil {
		t.Fatalf("SetUserRoles(demote) = %v", demoteErr)
	}
	if firstErr != nil || !f.revs.Contains(firstGot.Access.ID) {
		t.Errorf("Refresh(holding the user before the demotion) = %v, token revoked %v; want success, then revoked by the demotion",
			firstErr, f.revs.Contains(firstGot.Access.ID))
	}
	for i, err := range laterErr {
		if !errors.Is(err, domain.ErrInvalidRefreshToken) {
			t.Errorf("session %d: Refresh(asked after the demotion waited for the user) = %v, issued %q, queued behind the demotion %v; "+
				"want it to wait for the demotion and be refused (ErrInvalidRefreshToken): a refresh that overtakes a waiting role change can hold it off",
				i, err, got[i].Access.Raw, queued)
		}
	}
}
