package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// TestRevokeSeesTokenCommittedWhileWaiting is the revocation race at the
// storage layer: another transaction (a refresh, as far as the database can
// tell) holds the family's lock, the revocation waits for it, and the holder
// adds a token and commits. The revocation must return that token too.
func TestRevokeSeesTokenCommittedWhileWaiting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		revoke func(ctx context.Context, tx domain.Tx, u domain.User, fam domain.Family) ([]domain.Revocation, error)
	}{
		{"RevokeFamily", func(ctx context.Context, tx domain.Tx, _ domain.User, fam domain.Family) ([]domain.Revocation, error) {
			return tx.RevokeFamily(ctx, fam.ID, t0)
		}},
		{"RevokeFamilies", func(ctx context.Context, tx domain.Tx, _ domain.User, fam domain.Family) ([]domain.Revocation, error) {
			_, revs, err := tx.RevokeFamilies(ctx, []string{fam.ID}, t0)
			return revs, err
		}},
		{"RevokeUserFamilies", func(ctx context.Context, tx domain.Tx, u domain.User, _ domain.Family) ([]domain.Revocation, error) {
			return tx.RevokeUserFamilies(ctx, u.ID, t0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			repo, pool := openRepo(t)
			u := newUser()
			createUser(t, repo, u)
			fam := domain.Family{ID: uuid.NewString(), UserID: u.ID, CreatedAt: t0}
			first := domain.RefreshToken{Hash: randomHash(), FamilyID: fam.ID, UserID: u.ID, IssuedAt: t0,
				ExpiresAt: t0.Add(time.Hour), AccessTokenID: "jti-" + uuid.NewString(), AccessExpiresAt: t0.Add(15 * time.Minute)}
			if err := repo.InTx(ctx, func(tx domain.Tx) error {
				if err := tx.CreateFamily(ctx, fam); err != nil {
					return err
				}
				return tx.InsertRefreshToken(ctx, first)
			}); err != nil {
				t.Fatal(err)
			}

			holder, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Rollback(ctx)
			var pid uint32
			if err := holder.QueryRow(ctx, `SELECT pg_backend_pid() FROM auth.refresh_families WHERE id = $1 FOR UPDATE`,
				fam.ID).Scan(&pid); err != nil {
				t.Fatal(err)
			}
			type result struct {
				revs []domain.Revocation
				err  error
			}
			done := make(chan result, 1)
			go func() {
				var r result
				r.err = repo.InTx(ctx, func(tx domain.Tx) error {
					var err error
					r.revs, err = tt.revoke(ctx, tx, u, fam)
					return err
				})
				done <- r
			}()
			waitForWaiter(t, pool, pid)
			next := first
			next.Hash, next.AccessTokenID = randomHash(), "jti-"+uuid.NewString()
			if _, err := holder.Exec(ctx, `INSERT INTO auth.refresh_tokens
				(token_hash, family_id, user_id, issued_at, expires_at, access_token_id, access_expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, next.Hash, fam.ID, u.ID, next.IssuedAt, next.ExpiresAt,
				next.AccessTokenID, next.AccessExpiresAt); err != nil {
				t.Fatal(err)
			}
			if err := holder.Commit(ctx); err != nil {
				t.Fatal(err)
			}

			r := <-done
			if r.err != nil {
				t.Fatalf("%s = %v", tt.name, r.err)
			}
			var got []string
			for _, v := range r.revs {
				got = append(got, v.TokenID)
			}
			for _, want := range []string{first.AccessTokenID, next.AccessTokenID} {
				if !slices.Contains(got, want) {
					t.Errorf("%s = %v, want it to include %s (committed while it waited: %t)", tt.name, got, want, want == next.AccessTokenID)
				}
			}
		})
	}
}

// waitForWaiter waits until some backend waits on the one with pid.
func waitForWaiter(t *testing.T, pool *pgxpool.Pool, pid uint32) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		var waiting bool
		if err := pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE $1::int = ANY (pg_blocking_pids(pid)))`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
	}
	t.Fatal("after 10s nothing waits on the family's lock: the test no longer sets up the race")
}

// TestLockUserToIssue: the lock a login and a refresh take on the user
// before issuing returns the user, found by id or by a refresh token.
func TestLockUserToIssue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, _ := openRepo(t)
	u := newUser("admin", "user")
	createUser(t, repo, u)
	fam := domain.Family{ID: uuid.NewString(), UserID: u.ID, CreatedAt: t0}
	rt := domain.RefreshToken{Hash: randomHash(), FamilyID: fam.ID, UserID: u.ID, IssuedAt: t0,
		ExpiresAt: t0.Add(time.Hour), AccessTokenID: "jti-" + uuid.NewString(), AccessExpiresAt: t0.Add(15 * time.Minute)}
	err := repo.InTx(ctx, func(tx domain.Tx) error {
		if err := tx.CreateFamily(ctx, fam); err != nil {
			return err
		}
		return tx.InsertRefreshToken(ctx, rt)
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		lock  func(domain.Tx) (domain.User, error)
		found bool // else errs.NotFound
	}{
		{"by id", func(tx domain.Tx) (domain.User, error) { return tx.LockUserToIssue(ctx, u.ID) }, true},
		{"unknown id", func(tx domain.Tx) (domain.User, error) { return tx.LockUserToIssue(ctx, uuid.NewString()) }, false},
		{"not a uuid", func(tx domain.Tx) (domain.User, error) { return tx.LockUserToIssue(ctx, "x'--") }, false},
		{"by refresh token", func(tx domain.Tx) (domain.User, error) { return tx.LockTokenOwner(ctx, rt.Hash) }, true},
		{"unknown refresh token", func(tx domain.Tx) (domain.User, error) { return tx.LockTokenOwner(ctx, randomHash()) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got domain.User
			err := repo.InTx(ctx, func(tx domain.Tx) error {
				var err error
				got, err = tt.lock(tx)
				return err
			})
			if !tt.found {
				if errs.KindOf(err) != errs.NotFound {
					t.Errorf("%s = %v, want not found", tt.name, err)
				}
				return
			}
			if err != nil || got.ID != u.ID || !slices.Equal(got.Roles, u.Roles) {
				t.Errorf("%s = %+v, %v; want %+v", tt.name, got, err, u)
			}
		})
	}
}
