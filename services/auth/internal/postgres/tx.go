package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	bankpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// txn is domain.Tx on one pgx transaction.
type txn struct {
	tx    pgx.Tx
	audit auditor
}

var _ domain.Tx = (*txn)(nil)

// userColumns reads a user; mfa_enabled comes from auth.totp, whose rows
// change only under the user's row lock, so it is as current as the row.
const userColumns = `u.id, u.email, u.display_name, u.roles, u.status,
	EXISTS (SELECT 1 FROM auth.totp t WHERE t.user_id = u.id AND t.secret IS NOT NULL), u.created_at, u.updated_at`

func scanUser(row pgx.Row, extra ...any) (domain.User, error) {
	var u domain.User
	dst := append([]any{&u.ID, &u.Email, &u.DisplayName, &u.Roles, &u.Status, &u.MFAEnabled, &u.CreatedAt, &u.UpdatedAt}, extra...)
	if err := row.Scan(dst...); err != nil {
		return domain.User{}, bankpg.MapError(err)
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

func (t *txn) CreateUser(ctx context.Context, u domain.User, hash string) error {
	status := u.Status
	if status == "" {
		status = domain.StatusActive
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO auth.users (id, email, display_name, roles, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`, u.ID, u.Email, u.DisplayName, u.Roles, status, u.CreatedAt)
	if bankpg.IsUniqueViolation(err) {
		return errs.Wrap(errs.Conflict, "email already registered", err)
	}
	if err != nil {
		return bankpg.MapError(err)
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO auth.credentials (user_id, password_hash, updated_at) VALUES ($1, $2, $3)`,
		u.ID, hash, u.CreatedAt)
	return bankpg.MapError(err)
}

func (t *txn) UserByEmail(ctx context.Context, email string) (domain.User, string, error) {
	var hash string
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+`, c.password_hash
		FROM auth.users u JOIN auth.credentials c ON c.user_id = u.id
		WHERE lower(u.email) = lower($1)`, email), &hash)
	return u, hash, err
}

// notFoundUnlessUUID refuses an id that is not a UUID as NotFound, rather
// than letting Postgres fail on the cast as an internal error.
func notFoundUnlessUUID(id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return errs.Wrap(errs.NotFound, "not found", err)
	}
	return nil
}

func (t *txn) UserByID(ctx context.Context, id string) (domain.User, error) {
	if err := notFoundUnlessUUID(id); err != nil {
		return domain.User{}, err
	}
	return scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM auth.users u WHERE u.id = $1`, id))
}

func (t *txn) LockUser(ctx context.Context, id string) (domain.User, error) {
	if err := notFoundUnlessUUID(id); err != nil {
		return domain.User{}, err
	}
	return scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM auth.users u WHERE u.id = $1 FOR UPDATE`, id))
}

// LockUserToIssue takes FOR NO KEY UPDATE, not FOR SHARE, although it
// changes nothing. Postgres lets a FOR SHARE locker join the ones already
// holding a row without queueing behind a waiting FOR UPDATE, so a stream
// of refreshes kept a role change waiting: with 16 sessions refreshing in a
// loop, a demotion waited up to 5 s. An exclusive mode queues in turn. It
// still lets the foreign-key checks (FOR KEY SHARE) of inserts through.
func (t *txn) LockUserToIssue(ctx context.Context, id string) (domain.User, error) {
	if err := notFoundUnlessUUID(id); err != nil {
		return domain.User{}, err
	}
	return scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM auth.users u WHERE u.id = $1 FOR NO KEY UPDATE`, id))
}

// LockTokenOwner finds the owner through the token's user_id, which never
// changes, so reading it without a lock is safe; only the user row is
// locked, as LockUserToIssue locks it.
func (t *txn) LockTokenOwner(ctx context.Context, hash []byte) (domain.User, error) {
	return scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM auth.users u
		WHERE u.id = (SELECT user_id FROM auth.refresh_tokens WHERE token_hash = $1) FOR NO KEY UPDATE`, hash))
}

// LockAdmins locks disabled admins too, so that enabling one waits for a
// concurrent change of the admins as well.
func (t *txn) LockAdmins(ctx context.Context) ([]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT id::text, status FROM auth.users WHERE 'admin' = ANY (roles) ORDER BY id FOR UPDATE`)
	if err != nil {
		return nil, bankpg.MapError(err)
	}
	var active []string
	var id, status string
	_, err = pgx.ForEachRow(rows, []any{&id, &status}, func() error {
		if status == domain.StatusActive {
			active = append(active, id)
		}
		return nil
	})
	return active, bankpg.MapError(err)
}

func (t *txn) SetRoles(ctx context.Context, id string, roles []string, now time.Time) (domain.User, error) {
	return scanUser(t.tx.QueryRow(ctx, `UPDATE auth.users u SET roles = $2, updated_at = $3 WHERE u.id = $1
		RETURNING `+userColumns, id, roles, now))
}

func (t *txn) SetStatus(ctx context.Context, id, status string, now time.Time) (domain.User, error) {
	return scanUser(t.tx.QueryRow(ctx, `UPDATE auth.users u SET status = $2, updated_at = $3 WHERE u.id = $1
		RETURNING `+userColumns, id, status, now))
}

// ListUsers pages with a row comparison on (created_at, id), which the
// users_created index serves: each page costs the same however deep.
func (t *txn) ListUsers(ctx context.Context, after *domain.UserCursor, email string, limit int) ([]domain.User, error) {
	var since time.Time
	var id any // nil: no lower bound on the id
	if after != nil {
		since, id = after.CreatedAt, after.ID
	}
	rows, err := t.tx.Query(ctx, `SELECT `+userColumns+` FROM auth.users u
		WHERE ($1::uuid IS NULL OR (u.created_at, u.id) > ($2, $1::uuid))
		  AND ($3 = '' OR lower(u.email) = lower($3))
		ORDER BY u.created_at, u.id LIMIT $4`, id, since, email, limit)
	if err != nil {
		return nil, bankpg.MapError(err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.User, error) { return scanUser(r) })
	return users, bankpg.MapError(err)
}

func (t *txn) SetPasswordHash(ctx context.Context, id, hash string, now time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE auth.credentials SET password_hash = $2, updated_at = $3 WHERE user_id = $1`, id, hash, now)
	return bankpg.MapError(err)
}

// LockCounters locks every counter in one statement. An upsert both
// creates a missing counter and locks an existing one: INSERT … ON CONFLICT
// DO UPDATE always ends in exactly one of the two, even when another
// transaction is creating or deleting the same row. The rows are inserted in
// the order given (WITH ORDINALITY … ORDER BY), which is the lock order the
// domain relies on to avoid deadlocks.
func (t *txn) LockCounters(ctx context.Context, keys []domain.Counter) ([]domain.Counter, error) {
	scopes := make([]string, len(keys))
	names := make([]string, len(keys))
	for i, k := range keys {
		scopes[i], names[i] = k.Scope, k.Key
	}
	rows, err := t.tx.Query(ctx, `INSERT INTO auth.login_counters AS c (scope, key, count, window_start)
		SELECT s, k, 0, 'epoch' FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(s, k, n) ORDER BY n
		ON CONFLICT (scope, key) DO UPDATE SET count = c.count
		RETURNING scope, key, count, window_start`, scopes, names)
	if err != nil {
		return nil, bankpg.MapError(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Counter, error) {
		var c domain.Counter
		err := r.Scan(&c.Scope, &c.Key, &c.Count, &c.WindowStart)
		c.WindowStart = c.WindowStart.UTC()
		return c, err
	})
	if err != nil {
		return nil, bankpg.MapError(err)
	}
	// RETURNING promises no order: put the rows back in the caller's.
	out := make([]domain.Counter, len(keys))
	for i, k := range keys {
		j := slices.IndexFunc(got, func(c domain.Counter) bool { return c.Scope == k.Scope && c.Key == k.Key })
		if j < 0 {
			return nil, errs.Wrap(errs.Internal, "", fmt.Errorf("lock counters: no row for %s counter", k.Scope))
		}
		out[i] = got[j]
	}
	return out, nil
}

// SaveCounters sends one statement per counter in a single batch.
func (t *txn) SaveCounters(ctx context.Context, cs []domain.Counter) error {
	b := &pgx.Batch{}
	for _, c := range cs {
		if c.Count <= 0 {
			b.Queue(`DELETE FROM auth.login_counters WHERE scope = $1 AND key = $2`, c.Scope, c.Key)
		} else {
			b.Queue(`UPDATE auth.login_counters SET count = $3, window_start = $4
				WHERE scope = $1 AND key = $2`, c.Scope, c.Key, c.Count, c.WindowStart)
		}
	}
	return bankpg.MapError(t.tx.SendBatch(ctx, b).Close())
}

func (t *txn) CreateFamily(ctx context.Context, f domain.Family) error {
	amr := f.AMR
	if len(amr) == 0 {
		amr = []string{"pwd"}
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO auth.refresh_families (id, user_id, amr, created_at) VALUES ($1, $2, $3, $4)`,
		f.ID, f.UserID, amr, f.CreatedAt)
	return bankpg.MapError(err)
}

func (t *txn) InsertRefreshToken(ctx context.Context, rt domain.RefreshToken) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO auth.refresh_tokens
		(token_hash, family_id, user_id, issued_at, expires_at, access_token_id, access_expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		rt.Hash, rt.FamilyID, rt.UserID, rt.IssuedAt, rt.ExpiresAt, rt.AccessTokenID, rt.AccessExpiresAt)
	return bankpg.MapError(err)
}

// LockRefreshToken locks the family first and then the token, the order
// every path here uses, so that a reuse (which revokes the family) and a
// refresh of a sibling token are serialised instead of interleaving.
func (t *txn) LockRefreshToken(ctx context.Context, hash []byte) (domain.RefreshToken, domain.Family, error) {
	var f domain.Family
	var revoked *time.Time
	err := t.tx.QueryRow(ctx, `SELECT f.id, f.user_id, f.amr, f.created_at, f.revoked_at FROM auth.refresh_families f
		WHERE f.id = (SELECT family_id FROM auth.refresh_tokens WHERE token_hash = $1) FOR UPDATE`, hash).
		Scan(&f.ID, &f.UserID, &f.AMR, &f.CreatedAt, &revoked)
	if err != nil {
		return domain.RefreshToken{}, domain.Family{}, bankpg.MapError(err)
	}
	if revoked != nil {
		f.RevokedAt = revoked.UTC()
	}
	rt := domain.RefreshToken{Hash: hash}
	var used *time.Time
	err = t.tx.QueryRow(ctx, `SELECT family_id, user_id, issued_at, expires_at, used_at, access_token_id, access_expires_at
		FROM auth.refresh_tokens WHERE token_hash = $1 FOR UPDATE`, hash).
		Scan(&rt.FamilyID, &rt.UserID, &rt.IssuedAt, &rt.ExpiresAt, &used, &rt.AccessTokenID, &rt.AccessExpiresAt)
	if err != nil {
		return domain.RefreshToken{}, domain.Family{}, bankpg.MapError(err)
	}
	if used != nil {
		rt.UsedAt = used.UTC()
	}
	rt.IssuedAt, rt.ExpiresAt, rt.AccessExpiresAt = rt.IssuedAt.UTC(), rt.ExpiresAt.UTC(), rt.AccessExpiresAt.UTC()
	f.CreatedAt = f.CreatedAt.UTC()
	return rt, f, nil
}

func (t *txn) MarkRefreshTokenUsed(ctx context.Context, hash []byte, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE auth.refresh_tokens SET used_at = $2 WHERE token_hash = $1`, hash, at)
	return bankpg.MapError(err)
}

// FamilyOfAccessToken reads through refresh_tokens_access_token.
func (t *txn) FamilyOfAccessToken(ctx context.Context, userID, tokenID string) (string, error) {
	if err := notFoundUnlessUUID(userID); err != nil {
		return "", err
	}
	var id string
	err := t.tx.QueryRow(ctx, `SELECT family_id::text FROM auth.refresh_tokens
		WHERE access_token_id = $1 AND user_id = $2`, tokenID, userID).Scan(&id)
	return id, bankpg.MapError(err)
}

func (t *txn) FamilyOfRefreshToken(ctx context.Context, userID string, hash []byte) (string, error) {
	if err := notFoundUnlessUUID(userID); err != nil {
		return "", err
	}
	var id string
	err := t.tx.QueryRow(ctx, `SELECT family_id::text FROM auth.refresh_tokens
		WHERE token_hash = $1 AND user_id = $2`, hash, userID).Scan(&id)
	return id, bankpg.MapError(err)
}

func (t *txn) RevokeFamily(ctx context.Context, familyID string, now time.Time) ([]domain.Revocation, error) {
	_, revs, err := t.revokeFamilies(ctx, now, `id = $2`, familyID)
	return revs, err
}

func (t *txn) RevokeFamilies(ctx context.Context, ids []string, now time.Time) ([]string, []domain.Revocation, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	return t.revokeFamilies(ctx, now, `id = ANY ($2::text[]::uuid[])`, ids)
}

func (t *txn) RevokeUserFamilies(ctx context.Context, userID string, now time.Time) ([]domain.Revocation, error) {
	_, revs, err := t.revokeFamilies(ctx, now, `user_id = $2`, userID)
	return revs, err
}

func (t *txn) RevokeUserFamiliesExcept(ctx context.Context, userID, keep string, now time.Time) ([]domain.Revocation, error) {
	if keep == "" {
		return t.RevokeUserFamilies(ctx, userID, now)
	}
	_, revs, err := t.revokeFamilies(ctx, now, `user_id = $2 AND id <> $3::uuid`, userID, keep)
	return revs, err
}

// liveFamily is the condition on a family f that Sessions and LiveFamily
// share: not revoked, and holding a refresh token that can still be spent.
const liveFamily = `f.revoked_at IS NULL AND EXISTS (SELECT 1 FROM auth.refresh_tokens t
	WHERE t.family_id = f.id AND t.used_at IS NULL AND t.expires_at > $2)`

func (t *txn) Sessions(ctx context.Context, userID string, now time.Time, limit int) ([]domain.Session, error) {
	if err := notFoundUnlessUUID(userID); err != nil {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT f.id::text, f.created_at,
			(SELECT max(t.issued_at) FROM auth.refresh_tokens t WHERE t.family_id = f.id) AS last_used
		FROM auth.refresh_families f WHERE f.user_id = $1 AND `+liveFamily+`
		ORDER BY last_used DESC, f.id LIMIT $3`, userID, now, limit)
	if err != nil {
		return nil, bankpg.MapError(err)
	}
	sessions, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Session, error) {
		var s domain.Session
		err := r.Scan(&s.ID, &s.CreatedAt, &s.LastUsedAt)
		s.CreatedAt, s.LastUsedAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC()
		return s, err
	})
	return sessions, bankpg.MapError(err)
}

func (t *txn) LiveFamily(ctx context.Context, userID, id string, now time.Time) (domain.Family, error) {
	if err := notFoundUnlessUUID(userID); err != nil {
		return domain.Family{}, err
	}
	if err := notFoundUnlessUUID(id); err != nil {
		return domain.Family{}, err
	}
	f := domain.Family{ID: id, UserID: userID}
	err := t.tx.QueryRow(ctx, `SELECT f.created_at FROM auth.refresh_families f
		WHERE f.user_id = $1 AND f.id = $3 AND `+liveFamily, userID, now, id).Scan(&f.CreatedAt)
	f.CreatedAt = f.CreatedAt.UTC()
	return f, bankpg.MapError(err)
}

// revokeFamilies marks the live families matching where (a fixed condition
// on $2 and later parameters, args) revoked at now and returns their ids and
// the unexpired access tokens issued in them. It locks the families in id order, so two revocations of
// overlapping sets (two logouts, each naming the other's session) wait for
// each other instead of deadlocking.
//
// The tokens are read by a second statement, on purpose. In READ COMMITTED
// a statement reads from the snapshot taken when it starts, and one that
// waits for a row lock still reads every other row from that snapshot. A
// refresh holding a family's lock commits a new token and only then lets
// go, so a single statement that locked the families and joined their
// tokens missed that token (and, while it waited for the first family, every
// token the other families' refreshes committed), leaving it valid for its
// whole lifetime. The second statement starts after every lock is held, so
// its snapshot has every token the families will ever have: a refresh that
// comes later finds its family revoked.
func (t *txn) revokeFamilies(ctx context.Context, now time.Time, where string, args ...any) ([]string, []domain.Revocation, error) {
	rows, err := t.tx.Query(ctx, `WITH locked AS (
			SELECT id FROM auth.refresh_families WHERE `+where+` AND revoked_at IS NULL ORDER BY id FOR UPDATE)
		UPDATE auth.refresh_families f SET revoked_at = $1 FROM locked l WHERE f.id = l.id
		RETURNING f.id::text`, append([]any{now}, args...)...)
	if err != nil {
		return nil, nil, bankpg.MapError(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) == 0 {
		return nil, nil, bankpg.MapError(err)
	}
	slices.Sort(ids)
	rows, err = t.tx.Query(ctx, `SELECT access_token_id, access_expires_at FROM auth.refresh_tokens
		WHERE family_id = ANY ($1::text[]::uuid[]) AND access_expires_at > $2
		ORDER BY family_id, access_token_id`, ids, now)
	if err != nil {
		return nil, nil, bankpg.MapError(err)
	}
	revs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Revocation, error) {
		var v domain.Revocation
		err := r.Scan(&v.TokenID, &v.ExpiresAt)
		v.ExpiresAt = v.ExpiresAt.UTC()
		return v, err
	})
	if err != nil {
		return nil, nil, bankpg.MapError(err)
	}
	return ids, revs, nil
}

// RevokeAccessTokens inserts the revocations and queues a NOTIFY for each
// batch. Postgres delivers a NOTIFY only when the transaction commits, so
// other replicas never hear of a revocation that was rolled back.
func (t *txn) RevokeAccessTokens(ctx context.Context, revs []domain.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	ids := make([]string, len(revs))
	exps := make([]time.Time, len(revs))
	for i, v := range revs {
		ids[i], exps[i] = v.TokenID, v.ExpiresAt
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO auth.revoked_tokens (token_id, expires_at)
		SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT (token_id) DO NOTHING`, ids, exps)
	if err != nil {
		return bankpg.MapError(err)
	}
	payloads, err := encodePayloads(revs)
	if err != nil {
		return errs.Wrap(errs.Internal, "", err)
	}
	for _, p := range payloads {
		if _, err := t.tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, p); err != nil {
			return bankpg.MapError(err)
		}
	}
	return nil
}

func (t *txn) TOTP(ctx context.Context, userID string) (domain.TOTPState, error) {
	if err := notFoundUnlessUUID(userID); err != nil {
		return domain.TOTPState{}, err
	}
	var st domain.TOTPState
	var pendingAt, enabledAt *time.Time
	err := t.tx.QueryRow(ctx, `SELECT secret, pending, pending_at, enabled_at, last_step FROM auth.totp WHERE user_id = $1`, userID).
		Scan(&st.Secret, &st.Pending, &pendingAt, &enabledAt, &st.LastStep)
	if err != nil {
		return domain.TOTPState{}, bankpg.MapError(err)
	}
	if pendingAt != nil {
		st.PendingAt = pendingAt.UTC()
	}
	if enabledAt != nil {
		st.EnabledAt = enabledAt.UTC()
	}
	return st, nil
}

func (t *txn) SaveTOTP(ctx context.Context, userID string, st domain.TOTPState, now time.Time) error {
	orNull := func(at time.Time) *time.Time {
		if at.IsZero() {
			return nil
		}
		return &at
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO auth.totp AS t (user_id, secret, pending, pending_at, enabled_at, last_step, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (user_id) DO UPDATE SET secret = $2, pending = $3, pending_at = $4, enabled_at = $5, last_step = $6, updated_at = $7`,
		userID, st.Secret, st.Pending, orNull(st.PendingAt), orNull(st.EnabledAt), st.LastStep, now)
	return bankpg.MapError(err)
}

func (t *txn) CreateMFATicket(ctx context.Context, m domain.MFATicket) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO auth.mfa_tickets (ticket_hash, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)`,
		m.Hash, m.UserID, m.IssuedAt, m.ExpiresAt)
	return bankpg.MapError(err)
}

// SpendMFATicket is one UPDATE: of concurrent spends, the first takes the
// row lock and marks it used, and the others, re-reading the row after it
// commits, no longer match used_at IS NULL.
func (t *txn) SpendMFATicket(ctx context.Context, hash []byte, now time.Time) (domain.MFATicket, error) {
	m := domain.MFATicket{Hash: hash}
	err := t.tx.QueryRow(ctx, `UPDATE auth.mfa_tickets SET used_at = $2 WHERE ticket_hash = $1 AND used_at IS NULL
		RETURNING user_id::text, issued_at, expires_at`, hash, now).Scan(&m.UserID, &m.IssuedAt, &m.ExpiresAt)
	m.IssuedAt, m.ExpiresAt = m.IssuedAt.UTC(), m.ExpiresAt.UTC()
	return m, bankpg.MapError(err)
}

func (t *txn) Audit(ctx context.Context, e domain.AuditEvent) error {
	return t.audit.append(ctx, t.tx, e)
}
