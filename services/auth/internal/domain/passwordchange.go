package domain

import (
	"context"
	"errors"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// ErrWrongPassword answers a password change whose current password is not
// the caller's. It is a 403, not a 401: the access token is good, and a
// client that took the answer for an expired token would refresh and retry.
var ErrWrongPassword = errs.Reasoned(errs.Permission, "wrong_password", "the current password is not right")

// ChangePasswordInput is a password change by the signed-in user.
type ChangePasswordInput struct {
	Caller   identity.User // the verified caller
	Current  string        // the password now, as typed
	New      string        // the new password, as typed
	ClientIP string
}

// ChangePassword replaces the caller's password, given the current one, and
// ends every other session of the caller: each other refresh family is
// revoked with the access tokens issued in it, under the user's row lock as
// any user-wide revocation is (the package doc), so no token of another
// session is accepted anywhere a second after it returns. The session of
// the calling access token survives.
//
// The current password is checked as a login checks one, against the same
// throttle: a wrong one is a failed attempt on the account from the
// client's network, so a stolen access token cannot be used to guess the
// password faster than the login form allows. It returns ErrWrongPassword,
// the throttle's errs.RateLimited, the policy's errs.Invalid for the new
// password, password.ErrBusy, or errs.Unauthenticated if the caller no
// longer exists or is disabled.
func (s *Service) ChangePassword(ctx context.Context, in ChangePasswordInput) error {
	current, err := password.Normalize(in.Current)
	if err != nil {
		return err
	}
	next, err := s.pol.Check(in.New)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	var me User
	err = s.store.InTx(ctx, func(tx Tx) error {
		var err error
		me, err = tx.UserByID(ctx, in.Caller.ID)
		return err
	})
	if errs.KindOf(err) == errs.NotFound {
		return errs.Wrap(errs.Unauthenticated, "invalid token", err)
	} else if err != nil {
		return err
	}
	if err := s.checkCurrentPassword(ctx, me.Email, current, in.Current, in.ClientIP); err != nil {
		return err
	}
	hash, err := s.hash.Hash(ctx, next)
	if err != nil {
		return err
	}
	var revs []Revocation
	err = s.store.InTx(ctx, func(tx Tx) error {
		revs = nil
		u, err := tx.LockUser(ctx, me.ID)
		if err != nil {
			return err
		}
		if u.Disabled() {
			return errs.New(errs.Unauthenticated, "invalid token")
		}
		keep := ""
		if in.Caller.TokenID != "" {
			id, err := tx.FamilyOfAccessToken(ctx, u.ID, in.Caller.TokenID)
			if keep, err = ignoreNotFound(id, err); err != nil {
				return err
			}
		}
		if err := tx.SetPasswordHash(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if revs, err = tx.RevokeUserFamiliesExcept(ctx, u.ID, keep, now); err != nil {
			return err
		}
		if err := tx.RevokeAccessTokens(ctx, revs); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventPasswordChange, Actor: u.ID, Resource: UserResource(u.ID), ClientIP: in.ClientIP,
			Outcome: OutcomeSuccess, At: now, Detail: map[string]string{"kept_family": keep}})
	})
	if err != nil {
		return err
	}
	s.revs.Add(revs)
	s.ctr.Event(ctx, "password_change", "ok")
	return nil
}

// checkCurrentPassword checks the current password of the account with
// email as Login does: a place in the hash pool first, then the attempt
// counted by the throttle, given back only if the password is right.
func (s *Service) checkCurrentPassword(ctx context.Context, email, pw, typed, ip string) error {
	ticket, err := s.hash.Admit(ctx)
	if err != nil {
		s.ctr.Event(ctx, "password_change", "busy")
		return err
	}
	defer ticket.Release()
	now := s.now().UTC()
	user, hash, err := s.admitLogin(ctx, email, ip, now)
	if err != nil {
		return err
	}
	ok, _, err := s.verifyPassword(ctx, ticket.Verify, pw, typed, hash)
	if err != nil {
		if rerr := s.store.InTx(ctx, func(tx Tx) error {
			return s.releaseAttempt(ctx, tx, email, ip, false, now)
		}); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	if !ok {
		s.ctr.Event(ctx, "password_change", "wrong_password")
		err := s.store.InTx(ctx, func(tx Tx) error {
			return tx.Audit(ctx, AuditEvent{Action: EventPasswordChange, Actor: user.ID, Resource: UserResource(user.ID), ClientIP: ip,
				Outcome: OutcomeFailure, Reason: "wrong_password", At: now})
		})
		if err != nil {
			return err
		}
		return ErrWrongPassword
	}
	return s.store.InTx(ctx, func(tx Tx) error {
		return s.releaseAttempt(ctx, tx, email, ip, true, now)
	})
}
