package domain_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	first := f.login(t, u.Email, pw)

	second, err := f.svc.Refresh(ctx, first.Refresh, f.ip)
	if err != nil {
		t.Fatalf("Refresh(first) = %v", err)
	}
	if second.Refresh == first.Refresh || second.Access.ID == first.Access.ID {
		t.Fatal("Refresh() returned the same tokens: not rotated")
	}
	third, err := f.svc.Refresh(ctx, second.Refresh, f.ip)
	if err != nil {
		t.Fatalf("Refresh(second) = %v", err)
	}

	// The first token is spent: presenting it again is theft.
	if _, err := f.svc.Refresh(ctx, first.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Fatalf("Refresh(reused) = %v, want ErrInvalidRefreshToken", err)
	}
	// Counted as the reuse itself, not by the later refusals of its family.
	if got := f.ctr.get("refresh_reuse:family_revoked"); got != 1 {
		t.Errorf("refresh reuse counted %d times right after the reuse, want 1", got)
	}
	// The whole family is dead, including the newest token ...
	if _, err := f.svc.Refresh(ctx, third.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Errorf("Refresh(newest in a reused family) = %v, want ErrInvalidRefreshToken", err)
	}
	// ... and so is every unexpired access token issued in it.
	for _, at := range []domain.AccessToken{first.Access, second.Access, third.Access} {
		if !f.revs.Contains(at.ID) {
			t.Errorf("access token %s of the reused family is not revoked", at.ID)
		}
	}
	stored, err := f.repo.ActiveRevocations(ctx, f.clock.Now())
	if err != nil || !hasID(stored, third.Access.ID) {
		t.Errorf("ActiveRevocations() = %v, %v; want %s stored for other replicas", stored, err, third.Access.ID)
	}
	if f.ctr.get("refresh_reuse:family_revoked") != 1 {
		t.Errorf("refresh reuse counted %d times, want 1", f.ctr.get("refresh_reuse:family_revoked"))
	}
	// Another login is a new family, untouched.
	other := f.login(t, u.Email, pw)
	if _, err := f.svc.Refresh(ctx, other.Refresh, f.ip); err != nil {
		t.Errorf("Refresh(another family) = %v, want success", err)
	}
}

func hasID(revs []domain.Revocation, id string) bool {
	for _, v := range revs {
		if v.TokenID == id {
			return true
		}
	}
	return false
}

func TestRefreshRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{RefreshTTL: time.Hour})
	u, pw := f.register(t)
	expired := f.login(t, u.Email, pw)
	f.clock.Advance(time.Hour)
	live := f.login(t, u.Email, pw)
	for _, tc := range []struct {
		name, token string
	}{
		{"expired", expired.Refresh},
		{"empty", ""},
		{"not base64", strings.Repeat("!", 43)},
		{"padded", live.Refresh + "="},
		{"too short", live.Refresh[:42]},
		{"flipped char", flip(live.Refresh)},
		{"access token as refresh", live.Access.Raw},
		{"huge", strings.Repeat("A", 1<<16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := f.svc.Refresh(ctx, tc.token, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
				t.Errorf("Refresh(%s) = %v, want ErrInvalidRefreshToken", tc.name, err)
			}
		})
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestRefreshTokensStoredOnlyAsHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM auth.refresh_tokens t
		WHERE position($1::bytea in t.token_hash) > 0 OR encode(t.token_hash, 'escape') LIKE '%' || $2 || '%'`,
		[]byte(tok.Refresh), tok.Refresh).Scan(&n)
	if err != nil || n != 0 {
		t.Errorf("found the refresh token in clear in %d rows (%v)", n, err)
	}
}

func TestConcurrentRefreshesExactlyOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	const n = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []domain.Tokens
		start   = make(chan struct{})
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got, err := f.svc.Refresh(ctx, tok.Refresh, f.ip)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, got)
				mu.Unlock()
			case !errors.Is(err, domain.ErrInvalidRefreshToken):
				t.Errorf("Refresh(concurrent) = %v, want success or ErrInvalidRefreshToken", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent refreshes of one token won, want exactly 1", len(winners), n)
	}
	// The losers look like theft, so the family (and the winner's pair) is dead.
	if !f.revs.Contains(winners[0].Access.ID) {
		t.Error("the winner's access token survived a detected reuse")
	}
}

// TestLogout logs a user out with each kind of refresh token. Logout always
// ends the session the access token belongs to, and also the one the
// refresh token names if that is the caller's; anything else is untouched.
func TestLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, domain.Config{})
	// A case names sessions: "mine" is the caller's, "sibling" another login
	// of the same user, "bob" a login of another user.
	tests := []struct {
		name      string
		refreshed bool   // the caller's access token came from a refresh, not the login
		send      string // the session whose refresh token is sent, or a literal token
		dead      []string
	}{
		{name: "own current refresh token", send: "mine", dead: []string{"mine"}},
		{name: "refresh token of another own session", send: "sibling", dead: []string{"mine", "sibling"}},
		{name: "garbage refresh token", send: "garbage", dead: []string{"mine"}},
		{name: "unknown refresh token", send: unknownRefreshToken(), dead: []string{"mine"}},
		{name: "another user's refresh token", send: "bob", dead: []string{"mine"}},
		{name: "access token obtained by refresh", refreshed: true, send: "garbage", dead: []string{"mine"}},
		{name: "refreshed, another own session", refreshed: true, send: "sibling", dead: []string{"mine", "sibling"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			alice, alicePW := f.register(t)
			bob, bobPW := f.register(t)
			login := f.login(t, alice.Email, alicePW)
			sessions := map[string]domain.Tokens{"mine": login,
				"sibling": f.login(t, alice.Email, alicePW), "bob": f.login(t, bob.Email, bobPW)}
			if tt.refreshed {
				next, err := f.svc.Refresh(ctx, login.Refresh, f.ip)
				if err != nil {
					t.Fatal(err)
				}
				sessions["mine"] = next
			}
			sent := tt.send
			if s, ok := sessions[tt.send]; ok {
				sent = s.Refresh
			}
			mine := sessions["mine"]
			caller := identity.User{ID: alice.ID, Roles: alice.Roles, TokenID: mine.Access.ID, ExpiresAt: mine.Access.ExpiresAt}

			if err := f.svc.Logout(ctx, caller, sent, f.ip); err != nil {
				t.Fatalf("Logout = %v, want nil whatever the refresh token", err)
			}

			// The login's access token is revoked with its family, also when
			// the caller presented a later one.
			if !f.revs.Contains(login.Access.ID) {
				t.Error("the access token of the logged-out session's login is not revoked")
			}
			for _, name := range []string{"mine", "sibling", "bob"} {
				s, dead := sessions[name], slices.Contains(tt.dead, name)
				if got := f.revs.Contains(s.Access.ID); got != dead {
					t.Errorf("%s access token revoked = %t, want %t", name, got, dead)
				}
				_, err := f.svc.Refresh(ctx, s.Refresh, f.ip)
				if dead && !errors.Is(err, domain.ErrInvalidRefreshToken) {
					t.Errorf("Refresh(%s) = %v, want ErrInvalidRefreshToken", name, err)
				} else if !dead && err != nil {
					t.Errorf("Refresh(%s) = %v, want success: logout must not end it", name, err)
				}
			}

			family, session := logoutAudit(t, f, alice.ID)
			var revoked []string
			if family != "" {
				revoked = strings.Split(family, ",")
			}
			if len(revoked) != len(tt.dead) {
				t.Errorf("audited families %q, want %d", family, len(tt.dead))
			}
			if !slices.Contains(revoked, session) {
				t.Errorf("audited session family %q, want one of the revoked %q", session, family)
			}
		})
	}
}

// unknownRefreshToken is shaped like a refresh token but was never issued.
func unknownRefreshToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// logoutAudit returns the details of the user's one logout audit event.
func logoutAudit(t *testing.T, f *fixture, userID string) (family, session string) {
	t.Helper()
	err := f.db.QueryRow(context.Background(), `SELECT detail->>'family', detail->>'session_family'
		FROM auth.audit_events WHERE resource = $1 AND action = $2`, "user/"+userID, domain.EventLogout).
		Scan(&family, &session)
	if err != nil {
		t.Fatalf("read the logout audit event: %v", err)
	}
	return family, session
}

// TestCrossedLogouts logs two sessions of one user out at once, each naming
// the other: both lock both families, and both must succeed.
func TestCrossedLogouts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	a, b := f.login(t, u.Email, pw), f.login(t, u.Email, pw)
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for _, pair := range [][2]domain.Tokens{{a, b}, {b, a}} {
		wg.Go(func() {
			caller := identity.User{ID: u.ID, Roles: u.Roles, TokenID: pair[0].Access.ID, ExpiresAt: pair[0].Access.ExpiresAt}
			errc <- f.svc.Logout(ctx, caller, pair[1].Refresh, f.ip)
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Errorf("Logout = %v", err)
		}
	}
	for _, s := range []domain.Tokens{a, b} {
		if _, err := f.svc.Refresh(ctx, s.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
			t.Errorf("Refresh(after logout) = %v, want ErrInvalidRefreshToken", err)
		}
	}
}

func TestRefreshSeesRoleChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	if err := f.repo.InTx(ctx, func(tx domain.Tx) error {
		_, err := tx.SetRoles(ctx, u.ID, []string{"manager", "user"}, f.clock.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Refresh(ctx, tok.Refresh, f.ip)
	if err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if !strings.HasSuffix(got.Access.Raw, ":manager,user") {
		t.Errorf("refreshed access token %q, want the roles now in the database (manager,user)", got.Access.Raw)
	}
}
