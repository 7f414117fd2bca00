package domain_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	first := f.login(t, u.Email, pw)
	f.clock.Advance(time.Minute)
	second := f.login(t, u.Email, pw)
	f.clock.Advance(time.Minute)
	third := f.login(t, u.Email, pw)
	f.clock.Advance(time.Minute)
	refreshed, err := f.svc.Refresh(ctx, first.Refresh, f.ip) // first is now the most recently used
	if err != nil {
		t.Fatal(err)
	}
	me := caller(u, second)

	list, err := f.svc.Sessions(ctx, me)
	if err != nil {
		t.Fatalf("Sessions() = %v", err)
	}
	if len(list) != 3 {
		t.Fatalf("Sessions() = %d sessions, want 3: %+v", len(list), list)
	}
	if !list[0].LastUsedAt.Equal(f.clock.Now()) || !list[0].CreatedAt.Equal(f.clock.Now().Add(-3*time.Minute)) {
		t.Errorf("the refreshed session = %+v, want created 3 minutes ago and used now", list[0])
	}
	var current []string
	for _, s := range list {
		if s.Current {
			current = append(current, s.ID)
		}
	}
	if len(current) != 1 || current[0] != list[2].ID {
		t.Errorf("current sessions %v, want only the second login's, %s", current, list[2].ID)
	}

	// Another user's session, a made-up one and a malformed id are all
	// simply not found.
	v, vpw := f.register(t)
	theirs := f.login(t, v.Email, vpw)
	theirList, err := f.svc.Sessions(ctx, caller(v, theirs))
	if err != nil || len(theirList) != 1 {
		t.Fatalf("Sessions(other user) = %+v, %v", theirList, err)
	}
	for _, id := range []string{theirList[0].ID, uuid.NewString(), "not-a-uuid"} {
		if err := f.svc.RevokeSession(ctx, me, id, f.ip); !errors.Is(err, domain.ErrSessionNotFound) {
			t.Errorf("RevokeSession(%s) = %v, want ErrSessionNotFound", id, err)
		}
	}
	if _, err := f.svc.Refresh(ctx, theirs.Refresh, f.ip); err != nil {
		t.Errorf("the other user's session did not survive the probe: %v", err)
	}
	if n := f.ctr.get("session_revoke:not_found"); n != 3 {
		t.Errorf("refused revokes counted %d, want 3", n)
	}
	if !slices.Contains(auditEvents(t, u.ID), "auth.session_revoked:denied:not_found") {
		t.Errorf("the refused revoke was not audited: %v", auditEvents(t, u.ID))
	}

	// Revoking the third login's session kills its tokens, and only those.
	target := list[1].ID
	if err := f.svc.RevokeSession(ctx, me, target, f.ip); err != nil {
		t.Fatalf("RevokeSession() = %v", err)
	}
	if !f.revs.Contains(third.Access.ID) || f.revs.Contains(second.Access.ID) || f.revs.Contains(refreshed.Access.ID) {
		t.Error("RevokeSession revoked the wrong access tokens")
	}
	// The other replicas hear of it from the table, and the revoke is audited.
	if stored, err := f.repo.ActiveRevocations(ctx, f.clock.Now()); err != nil || !hasID(stored, third.Access.ID) {
		t.Errorf("ActiveRevocations() = %d revocations, %v; want the revoked session's access token stored for other replicas", len(stored), err)
	}
	if events := auditEvents(t, u.ID); countOf(events, domain.EventSessionRevoked+":success:") != 1 {
		t.Errorf("audit trail %v, want the revoked session audited once", events)
	}
	if _, err := f.svc.Refresh(ctx, third.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Errorf("Refresh(revoked session) = %v, want ErrInvalidRefreshToken", err)
	}
	if err := f.svc.RevokeSession(ctx, me, target, f.ip); !errors.Is(err, domain.ErrSessionNotFound) {
		t.Errorf("RevokeSession(again) = %v, want ErrSessionNotFound", err)
	}
	left, _ := f.svc.Sessions(ctx, me)
	if len(left) != 2 {
		t.Errorf("Sessions(after revoke) = %+v, want 2", left)
	}
	// The current session can be ended too, like a logout.
	if err := f.svc.RevokeSession(ctx, me, list[2].ID, f.ip); err != nil || !f.revs.Contains(second.Access.ID) {
		t.Errorf("RevokeSession(current) = %v, revoked %v; want the calling token revoked", err, f.revs.Contains(second.Access.ID))
	}
}

// TestSessionsHideDeadFamilies: a family whose refresh token has expired
// is no longer a session.
func TestSessionsHideDeadFamilies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{RefreshTTL: time.Hour})
	u, pw := f.register(t)
	old := f.login(t, u.Email, pw)
	f.clock.Advance(2 * time.Hour)
	fresh := f.login(t, u.Email, pw)
	list, err := f.svc.Sessions(ctx, caller(u, fresh))
	if err != nil || len(list) != 1 || !list[0].Current {
		t.Fatalf("Sessions() = %+v, %v; want only the fresh, current session", list, err)
	}
	if err := f.svc.RevokeSession(ctx, caller(u, fresh), familyOf(t, f, u, old), f.ip); !errors.Is(err, domain.ErrSessionNotFound) {
		t.Errorf("RevokeSession(expired) = %v, want ErrSessionNotFound", err)
	}
}

// familyOf returns the family the login tok started.
func familyOf(t *testing.T, f *fixture, u domain.User, tok domain.Tokens) string {
	t.Helper()
	var id string
	err := f.repo.InTx(context.Background(), func(tx domain.Tx) error {
		var err error
		id, err = tx.FamilyOfAccessToken(context.Background(), u.ID, tok.Access.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
