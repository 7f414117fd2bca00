package domain_test

import (
	"context"
	"errors"
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

func TestLogout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	alice, alicePW := f.register(t)
	bob, bobPW := f.register(t)
	a1 := f.login(t, alice.Email, alicePW)
	a2, err := f.svc.Refresh(ctx, a1.Refresh, f.ip)
	if err != nil {
		t.Fatal(err)
	}
	other := f.login(t, alice.Email, alicePW)
	b := f.login(t, bob.Email, bobPW)
	caller := identity.User{ID: alice.ID, Roles: alice.Roles, TokenID: a2.Access.ID, ExpiresAt: a2.Access.ExpiresAt}

	// Alice presents Bob's refresh token: her own access token is revoked,
	// Bob's family is left alone.
	if err := f.svc.Logout(ctx, caller, b.Refresh, f.ip); err != nil {
		t.Fatalf("Logout(someone else's refresh token) = %v, want nil (revealing nothing)", err)
	}
	if _, err := f.svc.Refresh(ctx, b.Refresh, f.ip); err != nil {
		t.Errorf("Bob's Refresh after Alice logged out with his token = %v, want success", err)
	}
	if !f.revs.Contains(a2.Access.ID) {
		t.Error("Alice's presented access token is not revoked")
	}

	if err := f.svc.Logout(ctx, caller, a2.Refresh, f.ip); err != nil {
		t.Fatalf("Logout = %v", err)
	}
	if _, err := f.svc.Refresh(ctx, a2.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Errorf("Refresh(after logout) = %v, want ErrInvalidRefreshToken", err)
	}
	if !f.revs.Contains(a1.Access.ID) {
		t.Error("an earlier access token of the logged-out family is not revoked")
	}
	if f.revs.Contains(other.Access.ID) {
		t.Error("logout revoked a session from another login")
	}
	if err := f.svc.Logout(ctx, caller, "garbage", f.ip); err != nil {
		t.Errorf("Logout(malformed refresh token) = %v, want nil", err)
	}
	if got := f.ctr.get("logout:ok"); got != 3 {
		t.Errorf("logouts counted %d, want 3", got)
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
