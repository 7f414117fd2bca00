package domain

import (
	"context"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// ErrLastAdmin refuses a role change that would leave no admin.
var ErrLastAdmin = errs.Reasoned(errs.Refused, "last_admin", "the last admin cannot be demoted")

// SetRolesInput is a role change.
type SetRolesInput struct {
	Actor    identity.User // the verified caller
	UserID   string        // the user to change
	Roles    []string
	ClientIP string
}

// SetUserRoles replaces a user's roles. Only an admin may do it (checked
// against the database, not only the token); the last admin cannot be
// demoted. A change revokes the user's refresh families and the access
// tokens issued from them, so that it takes effect at once rather than when
// the old tokens expire, including a token from a refresh that raced with
// it. It returns errs.Permission, errs.NotFound, ErrLastAdmin or
// errs.Invalid. The last admin is the last active one: a disabled admin
// cannot act.
func (s *Service) SetUserRoles(ctx context.Context, in SetRolesInput) (User, error) {
	roles, err := NormalizeRoles(in.Roles)
	if err != nil {
		return User{}, err
	}
	if !in.Actor.HasRole(identity.RoleAdmin) {
		return User{}, errs.New(errs.Permission, "permission denied")
	}
	if _, err := uuid.Parse(in.UserID); err != nil {
		return User{}, errs.New(errs.NotFound, "user not found")
	}
	now := s.now().UTC()
	var (
		out  User
		revs []Revocation
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		revs = nil
		// Lock every admin first, in a fixed order, so two admins demoting
		// each other at once are serialised and the second sees the first.
		admins, err := tx.LockAdmins(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(admins, in.Actor.ID) {
			return errs.New(errs.Permission, "permission denied")
		}
		// LockAdmins already holds the row if the user is an admin; either
		// way it is held from here on, as revokeUserSessions requires.
		u, err := tx.LockUser(ctx, in.UserID)
		if errs.KindOf(err) == errs.NotFound {
			return errs.Wrap(errs.NotFound, "user not found", err)
		} else if err != nil {
			return err
		}
		// Only active admins count: a disabled one cannot act as admin.
		if slices.Contains(admins, u.ID) && !slices.Contains(roles, identity.RoleAdmin) && len(admins) <= 1 {
			return ErrLastAdmin
		}
		if slices.Equal(u.Roles, roles) {
			out = u
			return nil
		}
		if out, err = tx.SetRoles(ctx, u.ID, roles, now); err != nil {
			return err
		}
		// Tokens carry roles, so every one the user holds is revoked.
		if revs, err = revokeUserSessions(ctx, tx, u.ID, now); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventRolesChanged, Actor: in.Actor.ID, Resource: UserResource(u.ID),
			ClientIP: in.ClientIP, Outcome: OutcomeSuccess, At: now, Detail: map[string]string{
				"from": strings.Join(u.Roles, ","), "to": strings.Join(roles, ",")}})
	})
	if err != nil {
		if errs.KindOf(err) == errs.Refused || errs.KindOf(err) == errs.Permission {
			s.ctr.Event(ctx, "roles_change", "refused")
		}
		return User{}, err
	}
	s.revs.Add(revs)
	s.ctr.Event(ctx, "roles_change", "ok")
	return out, nil
}

// ErrAdminEmailTaken is returned by EnsureAdmin when the admin email belongs
// to an existing account that is not an admin and whose password is not the
// admin password. Promoting it would hand the admin role to whoever
// registered that email first, e.g. an attacker who guessed the operator's
// address before the bootstrap ran.
var ErrAdminEmailTaken = errs.New(errs.Conflict,
	"the admin email belongs to an existing account whose password is not the admin password; refusing to promote it")

// EnsureAdmin makes sure a user with email exists and holds the admin role,
// creating it with pw if absent. It never changes an existing user's
// password, so running it at every start is harmless. An existing non-admin
// account is promoted only if pw is its password, which proves the operator
// controls it; otherwise EnsureAdmin returns ErrAdminEmailTaken and audits
// the refusal.
//
// pw must pass the password.Policy at every start, even when the admin
// exists already and pw is not used: an operator who set a common password
// hears of it at once, not when the database is next rebuilt. It returns
// the Policy's errs.Invalid error otherwise.
func (s *Service) EnsureAdmin(ctx context.Context, email, pw string) error {
	email = NormalizeEmail(email)
	if email == "" || !strings.Contains(email, "@") {
		return errs.New(errs.Invalid, "admin email is not an email address")
	}
	typed := pw
	pw, err := s.pol.Check(pw)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		found, err := s.promote(ctx, email, typed)
		if err != nil || found {
			return err
		}
		err = s.createAdmin(ctx, email, pw)
		if errs.KindOf(err) != errs.Conflict || attempt > 0 {
			return err
		}
		// Another replica created it between our look-up and insert: promote it.
	}
}

// promote adds the admin role to the user with email, if there is one and
// pw (as typed) is its password. The password is checked outside any transaction, so
// no row lock or connection is held while argon2id runs.
func (s *Service) promote(ctx context.Context, email, pw string) (bool, error) {
	var u User
	var hash string
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		u, hash, err = tx.UserByEmail(ctx, email)
		return err
	})
	if errs.KindOf(err) == errs.NotFound {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if u.IsAdmin() {
		return true, nil
	}
	norm, err := password.Normalize(pw)
	if err != nil {
		return true, err
	}
	ok, _, err := s.verifyPassword(ctx, s.hash.Verify, norm, pw, hash)
	if err != nil {
		return true, err
	}
	now := s.now().UTC()
	if !ok {
		s.ctr.Event(ctx, "admin_bootstrap", "refused")
		err := s.store.InTx(ctx, func(tx Tx) error {
			return tx.Audit(ctx, AuditEvent{Action: EventAdminBootstrap, Resource: UserResource(u.ID), Outcome: OutcomeDenied,
				Reason: "password_mismatch", At: now})
		})
		if err != nil {
			return true, err
		}
		return true, ErrAdminEmailTaken
	}
	return true, s.store.InTx(ctx, func(tx Tx) error {
		u, err := tx.LockUser(ctx, u.ID)
		if err != nil || u.IsAdmin() {
			return err
		}
		roles, _ := NormalizeRoles(append(slices.Clone(u.Roles), identity.RoleAdmin))
		if _, err := tx.SetRoles(ctx, u.ID, roles, now); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventAdminBootstrap, Resource: UserResource(u.ID), Outcome: OutcomeSuccess, Reason: "promoted", At: now})
	})
}

func (s *Service) createAdmin(ctx context.Context, email, pw string) error {
	hash, err := s.hash.Hash(ctx, pw)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	u := User{ID: uuid.NewString(), Email: email, DisplayName: "Administrator",
		Roles: []string{identity.RoleAdmin, identity.RoleUser}, Status: StatusActive, CreatedAt: now, UpdatedAt: now}
	return s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.CreateUser(ctx, u, hash); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventAdminBootstrap, Resource: UserResource(u.ID), Outcome: OutcomeSuccess, Reason: "created", At: now})
	})
}
