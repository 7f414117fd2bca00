package domain

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// refreshBytes is the entropy of a refresh token.
const refreshBytes = 32

// ErrInvalidRefreshToken answers every refresh that does not succeed: an
// unknown, expired, spent or revoked token all look the same to the caller.
var ErrInvalidRefreshToken = errs.Reasoned(errs.Unauthenticated, "invalid_refresh_token", "invalid refresh token")

// newRefreshToken returns a fresh opaque token and the hash to store.
func newRefreshToken() (string, []byte) {
	b := make([]byte, refreshBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(b), sum[:]
}

// hashRefreshToken returns the stored hash of raw, or false if raw is not
// the shape of a token this service issues.
func hashRefreshToken(raw string) ([]byte, bool) {
	if len(raw) != base64.RawURLEncoding.EncodedLen(refreshBytes) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(raw)
	if err != nil || len(b) != refreshBytes {
		return nil, false
	}
	sum := sha256.Sum256(b)
	return sum[:], true
}

// startFamily begins a refresh-token family for a new login proven with
// the methods amr.
func (s *Service) startFamily(ctx context.Context, tx Tx, u User, amr []string, now time.Time) (Tokens, error) {
	f := Family{ID: uuid.NewString(), UserID: u.ID, AMR: amr, CreatedAt: now}
	if err := tx.CreateFamily(ctx, f); err != nil {
		return Tokens{}, err
	}
	return s.issue(ctx, tx, u, f, now)
}

// issue signs an access token for u, with the family's amr, and stores a
// refresh token beside it in the family, remembering the access token's id
// so it can be revoked too.
func (s *Service) issue(ctx context.Context, tx Tx, u User, f Family, now time.Time) (Tokens, error) {
	familyID := f.ID
	at, err := s.iss.Issue(u.ID, u.Roles, f.AMR)
	if err != nil {
		return Tokens{}, errs.Wrap(errs.Internal, "", err)
	}
	raw, hash := newRefreshToken()
	err = tx.InsertRefreshToken(ctx, RefreshToken{Hash: hash, FamilyID: familyID, UserID: u.ID,
		IssuedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL),
		AccessTokenID: at.ID, AccessExpiresAt: at.ExpiresAt})
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: at, Refresh: raw, ExpiresIn: at.ExpiresAt.Sub(at.IssuedAt)}, nil
}

// Refresh spends a refresh token and issues a new pair in the same family.
// It returns ErrInvalidRefreshToken for any token that cannot be spent. A
// token that was already spent is treated as stolen: its whole family and
// every unexpired access token issued in it are revoked, and the event is
// audited.
//
// The token's row is locked for the transaction, so of many concurrent
// refreshes of one token exactly one succeeds; the others see it spent,
// which is indistinguishable from theft, and so revoke the family.
//
// The user's row is locked before the family and the token, the lock
// order of the package doc, and the new access token carries the roles
// read under that lock: a role change either waits for this refresh to
// commit and then revokes what it issued, or commits first, and then this
// refresh finds the family revoked.
func (s *Service) Refresh(ctx context.Context, raw, clientIP string) (Tokens, error) {
	hash, ok := hashRefreshToken(raw)
	if !ok {
		s.ctr.TokenRejected(ctx, "refresh_malformed")
		return Tokens{}, ErrInvalidRefreshToken
	}
	now := s.now().UTC()
	var (
		out     Tokens
		reason  string // why the token was refused; "" on success
		revoked []Revocation
	)
	err := s.store.InTx(ctx, func(tx Tx) error {
		out, reason, revoked = Tokens{}, "", nil
		u, rt, fam, err := lockSession(ctx, tx, hash)
		switch {
		case errs.KindOf(err) == errs.NotFound:
			reason = "refresh_unknown"
			return nil
		case err != nil:
			return err
		case u.Disabled():
			// A disable revokes every family too; this is read under the
			// user's lock, so it holds even for a family it has not reached.
			reason = "refresh_user_disabled"
			return nil
		case !fam.RevokedAt.IsZero():
			reason = "refresh_revoked"
			return nil
		case !rt.UsedAt.IsZero():
			reason = "refresh_reuse"
			revoked, err = s.revokeFamily(ctx, tx, rt, clientIP, now)
			return err
		case !rt.ExpiresAt.After(now):
			reason = "refresh_expired"
			return nil
		}
		if err := tx.MarkRefreshTokenUsed(ctx, hash, now); err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, u, fam, now)
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	s.revs.Add(revoked)
	if reason != "" {
		s.ctr.TokenRejected(ctx, reason)
		if reason == "refresh_reuse" {
			s.ctr.Event(ctx, "refresh_reuse", "family_revoked")
		}
		return Tokens{}, ErrInvalidRefreshToken
	}
	return out, nil
}

// lockSession takes a refresh's locks in the package's lock order: the
// token's owner, then its family, then the token itself.
func lockSession(ctx context.Context, tx Tx, hash []byte) (User, RefreshToken, Family, error) {
	u, err := tx.LockTokenOwner(ctx, hash)
	if err != nil {
		return User{}, RefreshToken{}, Family{}, err
	}
	rt, fam, err := tx.LockRefreshToken(ctx, hash)
	return u, rt, fam, err
}

// revokeFamily kills the family of a reused token and audits the reuse.
func (s *Service) revokeFamily(ctx context.Context, tx Tx, rt RefreshToken, ip string, now time.Time) ([]Revocation, error) {
	revs, err := tx.RevokeFamily(ctx, rt.FamilyID, now)
	if err != nil {
		return nil, err
	}
	if err := tx.RevokeAccessTokens(ctx, revs); err != nil {
		return nil, err
	}
	return revs, tx.Audit(ctx, AuditEvent{Action: EventRefreshReuse, Resource: UserResource(rt.UserID), ClientIP: ip,
		Outcome: OutcomeDenied, Reason: "family_revoked", Detail: map[string]string{"family": rt.FamilyID}, At: now})
}

// revokeUserSessions ends every session of a user: it revokes each live
// refresh family and every unexpired access token issued in them, and
// records the revocations, which reach the other replicas and every
// verifier once the transaction commits. The caller must already hold the
// user's row (Tx.LockUser); the package doc explains why that makes the
// revocation complete. A role change calls it, and so must a disable or a
// password change: after each, the API contract accepts no older token.
func revokeUserSessions(ctx context.Context, tx Tx, userID string, now time.Time) ([]Revocation, error) {
	revs, err := tx.RevokeUserFamilies(ctx, userID, now)
	if err != nil {
		return nil, err
	}
	return revs, tx.RevokeAccessTokens(ctx, revs)
}

// Logout ends the session the caller's access token belongs to and, if the
// refresh token is the caller's, the session that token belongs to: both
// refresh families are revoked, with every unexpired access token issued in
// them and the presented one. A refresh token that is unknown or someone
// else's is ignored without saying so, so Logout cannot probe tokens; the
// caller's own session ends whatever refresh token is sent.
func (s *Service) Logout(ctx context.Context, caller identity.User, rawRefresh, clientIP string) error {
	now := s.now().UTC()
	hash, ok := hashRefreshToken(rawRefresh)
	var revs []Revocation
	err := s.store.InTx(ctx, func(tx Tx) error {
		revs = nil
		var session, named string // the families of the access and the refresh token
		if caller.TokenID != "" {
			revs = append(revs, Revocation{TokenID: caller.TokenID, ExpiresAt: caller.ExpiresAt})
			id, err := tx.FamilyOfAccessToken(ctx, caller.ID, caller.TokenID)
			if session, err = ignoreNotFound(id, err); err != nil {
				return err
			}
		}
		if ok {
			id, err := tx.FamilyOfRefreshToken(ctx, caller.ID, hash)
			if named, err = ignoreNotFound(id, err); err != nil {
				return err
			}
		}
		var ids []string
		for _, id := range []string{session, named} {
			if id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		revoked, more, err := tx.RevokeFamilies(ctx, ids, now)
		if err != nil {
			return err
		}
		revs = append(revs, more...)
		if err := tx.RevokeAccessTokens(ctx, revs); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventLogout, Actor: caller.ID, Resource: UserResource(caller.ID),
			ClientIP: clientIP, Outcome: OutcomeSuccess, At: now, Detail: map[string]string{
				"family": strings.Join(revoked, ","), "session_family": session}})
	})
	if err != nil {
		return err
	}
	s.revs.Add(revs)
	s.ctr.Event(ctx, "logout", "ok")
	return nil
}

// ignoreNotFound turns a lookup that found nothing into "".
func ignoreNotFound(id string, err error) (string, error) {
	if errs.KindOf(err) == errs.NotFound {
		return "", nil
	}
	return id, err
}
