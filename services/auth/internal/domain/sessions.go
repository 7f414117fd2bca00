package domain

import (
	"context"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// maxSessions bounds the session list. Each login starts a session that
// lives until it is revoked or its refresh token expires, so a script that
// logs in often could hold many; the list shows the most recently used.
const maxSessions = 100

// ErrSessionNotFound answers a revoke of a session that is not one of the
// caller's live sessions: another user's, revoked, expired or made up all
// look the same, so the answer never reveals another user's session.
var ErrSessionNotFound = errs.New(errs.NotFound, "session not found")

// SessionView is one of the caller's sessions as the caller sees it.
type SessionView struct {
	Session
	Current bool // the session the calling access token was issued in
}

// Sessions returns the caller's live sessions (refresh families that are
// not revoked and hold a refresh token that can still be spent), most
// recently used first, at most maxSessions, marking the one the calling
// access token belongs to.
func (s *Service) Sessions(ctx context.Context, caller identity.User) ([]SessionView, error) {
	now := s.now().UTC()
	var out []SessionView
	err := s.store.InTx(ctx, func(tx Tx) error {
		out = nil
		current := ""
		if caller.TokenID != "" {
			id, err := tx.FamilyOfAccessToken(ctx, caller.ID, caller.TokenID)
			if current, err = ignoreNotFound(id, err); err != nil {
				return err
			}
		}
		sessions, err := tx.Sessions(ctx, caller.ID, now, maxSessions)
		if err != nil {
			return err
		}
		for _, ss := range sessions {
			out = append(out, SessionView{Session: ss, Current: ss.ID == current})
		}
		return nil
	})
	return out, err
}

// RevokeSession ends one of the caller's live sessions: the family is
// revoked with every unexpired access token issued in it, as a logout does,
// so none is accepted anywhere after a second. The current session may be
// ended too. Anything that is not one of the caller's live sessions is
// ErrSessionNotFound, and the attempt is audited and counted, since asking
// for another user's session id is how a BOLA probe looks.
func (s *Service) RevokeSession(ctx context.Context, caller identity.User, sessionID, clientIP string) error {
	now := s.now().UTC()
	var revs []Revocation
	found := true
	err := s.store.InTx(ctx, func(tx Tx) error {
		revs, found = nil, true
		f, err := tx.LiveFamily(ctx, caller.ID, sessionID, now)
		if errs.KindOf(err) == errs.NotFound {
			found = false
			return tx.Audit(ctx, AuditEvent{Action: EventSessionRevoked, Actor: caller.ID, Resource: UserResource(caller.ID),
				ClientIP: clientIP, Outcome: OutcomeDenied, Reason: "not_found", At: now,
				Detail: map[string]string{"family": sessionID}})
		}
		if err != nil {
			return err
		}
		// RevokeFamilies locks the family, so a refresh racing with this
		// either commits first (and its token is revoked here) or finds the
		// family revoked.
		_, revs, err = tx.RevokeFamilies(ctx, []string{f.ID}, now)
		if err != nil {
			return err
		}
		if err := tx.RevokeAccessTokens(ctx, revs); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventSessionRevoked, Actor: caller.ID, Resource: UserResource(caller.ID),
			ClientIP: clientIP, Outcome: OutcomeSuccess, At: now, Detail: map[string]string{"family": f.ID}})
	})
	if err != nil {
		return err
	}
	if !found {
		s.ctr.Event(ctx, "session_revoke", "not_found")
		return ErrSessionNotFound
	}
	s.revs.Add(revs)
	s.ctr.Event(ctx, "session_revoke", "ok")
	return nil
}
