package domain_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// TestNoTokenSurvivesRevocationUnderLoad is the race without a held lock:
// in each trial four sessions of one admin refresh in a loop, and the
// revocation lands while they do. Once it has returned, every access token
// the sessions were ever issued must be revoked, here and in the table the
// other replicas read. The loops end on their own: a revoked family refuses
// the next refresh.
func TestNoTokenSurvivesRevocationUnderLoad(t *testing.T) {
	t.Parallel()
	const trials, sessions = 50, 4
	f := newFixture(t, domain.Config{})
	admin := f.admin(t)
	tests := []struct {
		name   string
		revoke func(t *testing.T, u domain.User, logins []domain.Tokens)
	}{
		{"role change", func(t *testing.T, u domain.User, _ []domain.Tokens) {
			_, err := f.svc.SetUserRoles(context.Background(), domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"user"}})
			if err != nil {
				t.Errorf("SetUserRoles(demote) = %v", err)
			}
		}},
		{"logout of every session", func(t *testing.T, u domain.User, logins []domain.Tokens) {
			var wg sync.WaitGroup
			for _, l := range logins {
				wg.Go(func() {
					caller := identity.User{ID: u.ID, Roles: u.Roles, TokenID: l.Access.ID, ExpiresAt: l.Access.ExpiresAt}
					if err := f.svc.Logout(context.Background(), caller, l.Refresh, f.ip); err != nil {
						t.Errorf("Logout = %v", err)
					}
				})
			}
			wg.Wait()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			var issued, survivors int
			for range trials {
				u, pw := f.register(t)
				u, err := f.svc.SetUserRoles(context.Background(), domain.SetRolesInput{Actor: admin, UserID: u.ID, Roles: []string{"admin", "user"}})
				if err != nil {
					t.Fatalf("SetUserRoles(promote) = %v", err)
				}
				logins := make([]domain.Tokens, sessions)
				for i := range logins {
					logins[i] = f.login(t, u.Email, pw)
				}
				tokens := refreshDuring(t, f, logins, func() { tt.revoke(t, u, logins) })
				issued += len(tokens) - sessions
				survivors += countSurvivors(t, f, tokens)
			}
			t.Logf("%d trials, %d refreshes issued around the revocation, %d tokens survived, in %v",
				trials, issued, survivors, time.Since(start).Round(time.Millisecond))
			if survivors != 0 {
				t.Errorf("%d access tokens survived the %s in %d trials, want 0", survivors, tt.name, trials)
			}
		})
	}
}

// refreshDuring refreshes each login in a loop of its own until the refresh
// is refused, runs revoke once every loop has refreshed at least once, and
// returns every access token the logins and the loops were issued.
func refreshDuring(t *testing.T, f *fixture, logins []domain.Tokens, revoke func()) []domain.AccessToken {
	t.Helper()
	var (
		mu      sync.Mutex
		tokens  []domain.AccessToken
		warm    sync.WaitGroup
		running sync.WaitGroup
	)
	for _, l := range logins {
		tokens = append(tokens, l.Access)
	}
	for _, l := range logins {
		warm.Add(1)
		running.Go(func() {
			cur, first := l, true
			for {
				next, err := f.svc.Refresh(context.Background(), cur.Refresh, f.ip)
				if err != nil {
					if !errors.Is(err, domain.ErrInvalidRefreshToken) {
						t.Errorf("Refresh(in the loop) = %v, want success or ErrInvalidRefreshToken", err)
					}
					if first {
						warm.Done()
					}
					return
				}
				mu.Lock()
				tokens = append(tokens, next.Access)
				mu.Unlock()
				if first {
					warm.Done()
					first = false
				}
				cur = next
			}
		})
	}
	warm.Wait()
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	revoke()
	running.Wait()
	return tokens
}

// countSurvivors returns how many of tokens are missing from this replica's
// revocation set or from the table the other replicas read.
func countSurvivors(t *testing.T, f *fixture, tokens []domain.AccessToken) int {
	t.Helper()
	ids := make([]string, len(tokens))
	for i, at := range tokens {
		ids[i] = at.ID
	}
	rows, err := f.db.Query(context.Background(), `SELECT token_id FROM auth.revoked_tokens WHERE token_id = ANY ($1)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, at := range tokens {
		if !f.revs.Contains(at.ID) || !slices.Contains(stored, at.ID) {
			n++
		}
	}
	return n
}
