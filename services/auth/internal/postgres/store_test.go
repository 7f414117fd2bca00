package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/postgres"
)

const fakeHash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newUser(roles ...string) domain.User {
	if len(roles) == 0 {
		roles = []string{"user"}
	}
	id := uuid.NewString()
	return domain.User{ID: id, Email: "u-" + id + "@example.com", DisplayName: "U", Roles: roles, Status: domain.StatusActive, CreatedAt: t0, UpdatedAt: t0}
}

func createUser(t *testing.T, repo *postgres.Store, u domain.User) {
	t.Helper()
	if err := repo.InTx(context.Background(), func(tx domain.Tx) error { return tx.CreateUser(context.Background(), u, fakeHash) }); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	_, pool := openRepo(t)
	if err := postgres.Migrate(context.Background(), pool); err != nil {
		t.Errorf("second Migrate() = %v, want nil", err)
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, _ := openRepo(t)
	u := newUser()
	createUser(t, repo, u)

	for _, tc := range []struct {
		name  string
		email string
	}{
		{"exact", u.Email},
		{"upper case", strings.ToUpper(u.Email)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := repo.InTx(ctx, func(tx domain.Tx) error {
				got, hash, err := tx.UserByEmail(ctx, tc.email)
				if err != nil {
					return err
				}
				if diff := cmp.Diff(u, got); diff != "" || hash != fakeHash {
					t.Errorf("UserByEmail(%q) mismatch (-want +got):\n%s hash %q", tc.email, diff, hash)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("UserByEmail(%q) = %v", tc.email, err)
			}
		})
	}

	t.Run("duplicate email", func(t *testing.T) {
		dup := newUser()
		dup.Email = u.Email
		err := repo.InTx(ctx, func(tx domain.Tx) error { return tx.CreateUser(ctx, dup, fakeHash) })
		if errs.KindOf(err) != errs.Conflict {
			t.Errorf("CreateUser(duplicate) = %v, want conflict", err)
		}
	})
	t.Run("upper-case email refused by the schema", func(t *testing.T) {
		bad := newUser()
		bad.Email = strings.ToUpper(u.Email)
		err := repo.InTx(ctx, func(tx domain.Tx) error { return tx.CreateUser(ctx, bad, fakeHash) })
		if err == nil {
			t.Error("CreateUser(upper-case email) = nil, want refusal: emails are stored lower case")
		}
	})
	t.Run("non-argon2id hash refused by the schema", func(t *testing.T) {
		err := repo.InTx(ctx, func(tx domain.Tx) error { return tx.CreateUser(ctx, newUser(), "plaintext-password") })
		if err == nil {
			t.Error("CreateUser(plain text hash) = nil, want refusal")
		}
	})
	t.Run("unknown role refused by the schema", func(t *testing.T) {
		err := repo.InTx(ctx, func(tx domain.Tx) error { return tx.CreateUser(ctx, newUser("root"), fakeHash) })
		if err == nil {
			t.Error(`CreateUser(roles ["root"]) = nil, want refusal`)
		}
	})
	for _, id := range []string{uuid.NewString(), "not-a-uuid", "'; DROP TABLE auth.users; --"} {
		t.Run("missing "+id, func(t *testing.T) {
			err := repo.InTx(ctx, func(tx domain.Tx) error { _, err := tx.UserByID(ctx, id); return err })
			if errs.KindOf(err) != errs.NotFound {
				t.Errorf("UserByID(%q) = %v, want not found", id, err)
			}
		})
	}
}

func TestRolesAndAdmins(t *testing.T) {
	ctx := context.Background()
	repo, _ := openRepo(t)
	a, b := newUser("admin", "user"), newUser("user")
	createUser(t, repo, a)
	createUser(t, repo, b)
	err := repo.InTx(ctx, func(tx domain.Tx) error {
		admins, err := tx.LockAdmins(ctx)
		if err != nil {
			return err
		}
		if !contains(admins, a.ID) || contains(admins, b.ID) {
			t.Errorf("LockAdmins() = %v, want %s in and %s out", admins, a.ID, b.ID)
		}
		got, err := tx.SetRoles(ctx, b.ID, []string{"admin", "manager"}, t0.Add(time.Hour))
		if err != nil {
			return err
		}
		if !cmp.Equal(got.Roles, []string{"admin", "manager"}) || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("SetRoles() = %+v, want roles admin,manager updated an hour later", got)
		}
		return tx.SetPasswordHash(ctx, b.ID, fakeHash+"x", t0)
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestCounters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, _ := openRepo(t)
	// Two counters, given IP first: the answer must keep the caller's order
	// whatever order the rows come back in.
	keys := []domain.Counter{{Scope: domain.CounterIP, Key: "ip:" + uuid.NewString()}, {Scope: domain.CounterAccount, Key: uuid.NewString()}}
	inTx := func(fn func(tx domain.Tx) error) {
		t.Helper()
		if err := repo.InTx(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	lock := func(tx domain.Tx) []domain.Counter {
		t.Helper()
		cs, err := tx.LockCounters(ctx, keys)
		if err != nil || len(cs) != len(keys) {
			t.Fatalf("LockCounters() = %+v, %v; want %d counters", cs, err, len(keys))
		}
		for i, c := range cs {
			if c.Scope != keys[i].Scope || c.Key != keys[i].Key {
				t.Fatalf("LockCounters()[%d] = %s/%s, want %s/%s", i, c.Scope, c.Key, keys[i].Scope, keys[i].Key)
			}
		}
		return cs
	}
	inTx(func(tx domain.Tx) error {
		cs := lock(tx)
		if cs[0].Count != 0 || cs[1].Count != 0 {
			t.Errorf("LockCounters(new) = %+v; want counts 0", cs)
		}
		cs[0].Count, cs[0].WindowStart = 3, t0
		cs[1].Count, cs[1].WindowStart = 1, t0.Add(time.Minute)
		return tx.SaveCounters(ctx, cs)
	})
	inTx(func(tx domain.Tx) error {
		cs := lock(tx)
		if cs[0].Count != 3 || !cs[0].WindowStart.Equal(t0) || cs[1].Count != 1 || !cs[1].WindowStart.Equal(t0.Add(time.Minute)) {
			t.Errorf("LockCounters() = %+v; want counts 3 from %v and 1 from %v", cs, t0, t0.Add(time.Minute))
		}
		cs[0].Count = 0 // deleted; the other one is kept as it is
		return tx.SaveCounters(ctx, cs)
	})
	inTx(func(tx domain.Tx) error {
		cs := lock(tx)
		if cs[0].Count != 0 || cs[1].Count != 1 {
			t.Errorf("LockCounters(after reset) = %+v; want counts 0 and 1", cs)
		}
		return nil
	})
}

// TestCountersAreLocked: a second transaction's LockCounters waits for the
// first to commit and then sees what it saved, so no two logins can both
// take the last attempt.
func TestCountersAreLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, pool := openRepo(t)
	keys := []domain.Counter{{Scope: domain.CounterAccount, Key: uuid.NewString()}, {Scope: domain.CounterIP, Key: "ip:" + uuid.NewString()}}
	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- repo.InTx(ctx, func(tx domain.Tx) error {
			cs, err := tx.LockCounters(ctx, keys)
			if err != nil {
				return err
			}
			close(locked)
			<-release
			for i := range cs {
				cs[i].Count, cs[i].WindowStart = 1, t0
			}
			return tx.SaveCounters(ctx, cs)
		})
	}()
	<-locked
	second := make(chan []domain.Counter, 1)
	go func() {
		var got []domain.Counter
		err := repo.InTx(ctx, func(tx domain.Tx) error {
			var err error
			got, err = tx.LockCounters(ctx, keys)
			return err
		})
		if err != nil {
			t.Error(err)
		}
		second <- got
	}()
	// Release the first only once the second is seen blocked on its row
	// locks, so the test proves the wait rather than hoping for the order.
	waitForLockWait(t, pool, "login_counters")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := <-second; len(got) != 2 || got[0].Count != 1 || got[1].Count != 1 {
		t.Errorf("second LockCounters() = %+v; want both counts 1, as the first transaction saved them", got)
	}
}

// waitForLockWait returns once a backend of this database is waiting for a
// lock in a statement that mentions table. It polls pg_stat_activity rather
// than sleeping a fixed time, and fails the test after 30 s.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool, table string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, table).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no transaction ever waited for a lock on %s: the rows are not locked", table)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hashOf(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func randomHash() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return hashOf(b)
}

func TestRefreshTokensAndFamilies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, _ := openRepo(t)
	u := newUser()
	createUser(t, repo, u)
	fam := domain.Family{ID: uuid.NewString(), UserID: u.ID, AMR: []string{"pwd", "otp"}, CreatedAt: t0}
	live := domain.RefreshToken{Hash: randomHash(), FamilyID: fam.ID, UserID: u.ID, IssuedAt: t0,
		ExpiresAt: t0.Add(24 * time.Hour), AccessTokenID: "jti-live", AccessExpiresAt: t0.Add(15 * time.Minute)}
	old := live
	old.Hash, old.AccessTokenID, old.AccessExpiresAt = randomHash(), "jti-old", t0.Add(-time.Minute)
	err := repo.InTx(ctx, func(tx domain.Tx) error {
		if err := tx.CreateFamily(ctx, fam); err != nil {
			return err
		}
		if err := tx.InsertRefreshToken(ctx, live); err != nil {
			return err
		}
		return tx.InsertRefreshToken(ctx, old)
	})
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	err = repo.InTx(ctx, func(tx domain.Tx) error {
		got, gotFam, err := tx.LockRefreshToken(ctx, live.Hash)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(live, got); diff != "" {
			t.Errorf("LockRefreshToken() mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(fam, gotFam); diff != "" {
			t.Errorf("LockRefreshToken() family mismatch (-want +got):\n%s", diff)
		}
		if _, _, err := tx.LockRefreshToken(ctx, randomHash()); errs.KindOf(err) != errs.NotFound {
			t.Errorf("LockRefreshToken(unknown) = %v, want not found", err)
		}
		if err := tx.MarkRefreshTokenUsed(ctx, live.Hash, t0.Add(time.Minute)); err != nil {
			return err
		}
		got, _, err = tx.LockRefreshToken(ctx, live.Hash)
		if !got.UsedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("UsedAt = %v after MarkRefreshTokenUsed, want %v", got.UsedAt, t0.Add(time.Minute))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = repo.InTx(ctx, func(tx domain.Tx) error {
		revs, err := tx.RevokeFamily(ctx, fam.ID, t0)
		if err != nil {
			return err
		}
		want := []domain.Revocation{{TokenID: "jti-live", ExpiresAt: live.AccessExpiresAt}}
		if diff := cmp.Diff(want, revs); diff != "" {
			t.Errorf("RevokeFamily() mismatch, expired access tokens must be left out (-want +got):\n%s", diff)
		}
		again, err := tx.RevokeUserFamilies(ctx, u.ID, t0)
		if len(again) != 0 {
			t.Errorf("RevokeUserFamilies(after RevokeFamily) = %v, want nothing: the family is already dead", again)
		}
		_, gotFam, _ := tx.LockRefreshToken(ctx, live.Hash)
		if !gotFam.RevokedAt.Equal(t0) {
			t.Errorf("family RevokedAt = %v, want %v", gotFam.RevokedAt, t0)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLogoutLookupsAndRevokeFamilies covers what logout does: find the
// families of an access token and of a refresh token, only the user's own,
// and revoke several families at once.
func TestLogoutLookupsAndRevokeFamilies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, pool := openRepo(t)
	u, other := newUser(), newUser()
	createUser(t, repo, u)
	createUser(t, repo, other)
	a := domain.Family{ID: uuid.NewString(), UserID: u.ID, CreatedAt: t0}
	b := domain.Family{ID: uuid.NewString(), UserID: u.ID, CreatedAt: t0}
	token := func(f domain.Family, accessExp time.Time) domain.RefreshToken {
		return domain.RefreshToken{Hash: randomHash(), FamilyID: f.ID, UserID: f.UserID, IssuedAt: t0,
			ExpiresAt: t0.Add(24 * time.Hour), AccessTokenID: uuid.NewString(), AccessExpiresAt: accessExp}
	}
	a1, a2, b1 := token(a, t0.Add(-time.Minute)), token(a, t0.Add(15*time.Minute)), token(b, t0.Add(15*time.Minute))
	err := repo.InTx(ctx, func(tx domain.Tx) error {
		for _, f := range []domain.Family{a, b} {
			if err := tx.CreateFamily(ctx, f); err != nil {
				return err
			}
		}
		for _, rt := range []domain.RefreshToken{a1, a2, b1} {
			if err := tx.InsertRefreshToken(ctx, rt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert: %v", err)
	}

	err = repo.InTx(ctx, func(tx domain.Tx) error {
		for _, rt := range []domain.RefreshToken{a1, a2, b1} {
			if got, err := tx.FamilyOfAccessToken(ctx, u.ID, rt.AccessTokenID); err != nil || got != rt.FamilyID {
				t.Errorf("FamilyOfAccessToken(%s) = %q, %v; want %q", rt.AccessTokenID, got, err, rt.FamilyID)
			}
			if got, err := tx.FamilyOfRefreshToken(ctx, u.ID, rt.Hash); err != nil || got != rt.FamilyID {
				t.Errorf("FamilyOfRefreshToken() = %q, %v; want %q", got, err, rt.FamilyID)
			}
		}
		for name, lookup := range map[string]func() (string, error){
			"another user's access token":  func() (string, error) { return tx.FamilyOfAccessToken(ctx, other.ID, a2.AccessTokenID) },
			"unknown access token":         func() (string, error) { return tx.FamilyOfAccessToken(ctx, u.ID, uuid.NewString()) },
			"a user id that is not a UUID": func() (string, error) { return tx.FamilyOfAccessToken(ctx, "x", a2.AccessTokenID) },
			"another user's refresh token": func() (string, error) { return tx.FamilyOfRefreshToken(ctx, other.ID, a2.Hash) },
			"unknown refresh token":        func() (string, error) { return tx.FamilyOfRefreshToken(ctx, u.ID, randomHash()) },
		} {
			if got, err := lookup(); errs.KindOf(err) != errs.NotFound {
				t.Errorf("%s: family %q, %v; want not found", name, got, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	err = repo.InTx(ctx, func(tx domain.Tx) error {
		if _, err := tx.RevokeFamily(ctx, b.ID, t0); err != nil {
			return err
		}
		ids, revs, err := tx.RevokeFamilies(ctx, []string{b.ID, a.ID}, t0)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{a.ID}, ids); diff != "" {
			t.Errorf("RevokeFamilies() ids mismatch, a family already revoked is left out (-want +got):\n%s", diff)
		}
		want := []domain.Revocation{{TokenID: a2.AccessTokenID, ExpiresAt: a2.AccessExpiresAt}}
		if diff := cmp.Diff(want, revs); diff != "" {
			t.Errorf("RevokeFamilies() revocations mismatch, expired access tokens must be left out (-want +got):\n%s", diff)
		}
		ids, revs, err = tx.RevokeFamilies(ctx, nil, t0)
		if len(ids) != 0 || len(revs) != 0 || err != nil {
			t.Errorf("RevokeFamilies(none) = %v, %v, %v; want nothing", ids, revs, err)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Logout looks a session up by its access token id: that must not be a
	// scan of every refresh token.
	var indexed bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'auth'
		AND tablename = 'refresh_tokens' AND indexdef LIKE '%(access_token_id)')`).Scan(&indexed); err != nil || !indexed {
		t.Errorf("an index on auth.refresh_tokens (access_token_id): %t, %v; want one", indexed, err)
	}
}

// TestRevocationsAndPurge is not parallel: the purge deletes every expired
// row in the package database.
func TestRevocationsAndPurge(t *testing.T) {
	ctx := context.Background()
	repo, _ := openRepo(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := domain.Revocation{TokenID: "rev-" + uuid.NewString(), ExpiresAt: now.Add(time.Minute)}
	b := domain.Revocation{TokenID: "rev-" + uuid.NewString(), ExpiresAt: now.Add(-time.Minute)}
	for range 2 { // the second time proves a known id is not an error
		if err := repo.InTx(ctx, func(tx domain.Tx) error { return tx.RevokeAccessTokens(ctx, []domain.Revocation{a, b}) }); err != nil {
			t.Fatalf("RevokeAccessTokens: %v", err)
		}
	}
	rolledBack := domain.Revocation{TokenID: "rev-" + uuid.NewString(), ExpiresAt: now.Add(time.Minute)}
	_ = repo.InTx(ctx, func(tx domain.Tx) error {
		if err := tx.RevokeAccessTokens(ctx, []domain.Revocation{rolledBack}); err != nil {
			return err
		}
		return errs.New(errs.Refused, "roll back")
	})
	got, err := repo.ActiveRevocations(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if !hasRevocation(got, a) || hasRevocation(got, b) || hasRevocation(got, rolledBack) {
		t.Errorf("ActiveRevocations() = %v, want %v and not the expired or rolled-back ones", got, a)
	}
	if err := repo.PurgeExpired(ctx, now.Add(2*time.Minute), 15*time.Minute); err != nil {
		t.Fatalf("PurgeExpired: %v", err)
	}
	if got, _ := repo.ActiveRevocations(ctx, now); hasRevocation(got, a) {
		t.Errorf("ActiveRevocations(after purge) still has %v", a)
	}
}

func hasRevocation(revs []domain.Revocation, v domain.Revocation) bool {
	for _, r := range revs {
		if r.TokenID == v.TokenID && r.ExpiresAt.Equal(v.ExpiresAt) {
			return true
		}
	}
	return false
}
