package domain

import (
	"context"
	"encoding/binary"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
)

// The user list's page sizes.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ErrSelfDisable refuses an admin's disable of their own account: an admin
// who wants out asks another, so the bank never loses its last active admin
// to a slip.
var ErrSelfDisable = errs.Reasoned(errs.Refused, "self_disable", "you cannot disable yourself")

// ListUsersInput is one page request of the user list.
type ListUsersInput struct {
	Actor     identity.User // the verified caller, an admin
	PageSize  int           // 0 means DefaultPageSize
	PageToken string        // "" for the first page
	Email     string        // "" for every user
}

// UserPage is one page of the user list.
type UserPage struct {
	Users         []User
	NextPageToken string // "" on the last page
}

// ListUsers returns a page of users, oldest first. Only an admin may list
// them (the RPC's rule says so; this checks the token again). The page
// token is bound to the caller and the email filter, so it is refused
// anywhere else. It returns errs.Permission or errs.Invalid.
func (s *Service) ListUsers(ctx context.Context, in ListUsersInput) (UserPage, error) {
	if !in.Actor.HasRole(identity.RoleAdmin) {
		return UserPage{}, errs.New(errs.Permission, "permission denied")
	}
	size := in.PageSize
	if size == 0 {
		size = DefaultPageSize
	}
	if size < 0 || size > MaxPageSize {
		return UserPage{}, errs.InvalidField("pageSize", "must be between 0 and 100")
	}
	email := NormalizeEmail(in.Email)
	scope := "auth.users.list|" + in.Actor.ID + "|" + email
	after, err := s.decodeUserCursor(scope, in.PageToken)
	if err != nil {
		return UserPage{}, err
	}
	var users []User
	err = s.store.InTx(ctx, func(tx Tx) error {
		var err error
		users, err = tx.ListUsers(ctx, after, email, size+1)
		return err
	})
	if err != nil {
		return UserPage{}, err
	}
	var page UserPage
	if len(users) > size {
		users = users[:size]
		last := users[size-1]
		page.NextPageToken = s.pages.Encode(scope, encodeUserCursor(UserCursor{CreatedAt: last.CreatedAt, ID: last.ID}))
	}
	page.Users = users
	return page, nil
}

// userCursorLen is the size of an encoded cursor: microseconds since the
// epoch (the database's precision) and the 16 bytes of the id.
const userCursorLen = 8 + 16

func encodeUserCursor(c UserCursor) []byte {
	b := make([]byte, userCursorLen)
	binary.BigEndian.PutUint64(b, uint64(c.CreatedAt.UnixMicro()))
	id := uuid.MustParse(c.ID) // ids come from the database, where they are uuid
	copy(b[8:], id[:])
	return b
}

// decodeUserCursor checks token against scope and unpacks its cursor; an
// empty token means the first page.
func (s *Service) decodeUserCursor(scope, token string) (*UserCursor, error) {
	if token == "" {
		return nil, nil
	}
	b, err := s.pages.Decode(scope, token)
	if err != nil {
		return nil, err
	}
	if len(b) != userCursorLen {
		return nil, pagetoken.ErrInvalid // only a token minted by another build
	}
	id, _ := uuid.FromBytes(b[8:]) // cannot fail: exactly 16 bytes
	return &UserCursor{CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b))).UTC(), ID: id.String()}, nil
}

// SetStatusInput is a disable or an enable.
type SetStatusInput struct {
	Actor    identity.User // the verified caller
	UserID   string        // the user to change
	Reason   string        // why, for the audit trail
	ClientIP string
}

// DisableUser disables a user: their logins then fail exactly as a wrong
// password does, and every refresh family and unexpired access token they
// hold is revoked in the same transaction, under the user's row lock (the
// package doc's lock order), so that no token issued before it returns,
// not even one from a refresh that raced with it, is accepted anywhere
// after a second. Only an active admin may do it (checked against the
// database, not only the token), and never on themselves (ErrSelfDisable),
// which also means an active admin always remains. Disabling a disabled
// user changes nothing. It returns errs.Permission, errs.NotFound or
// ErrSelfDisable.
func (s *Service) DisableUser(ctx context.Context, in SetStatusInput) (User, error) {
	return s.setStatus(ctx, in, StatusDisabled)
}

// EnableUser lets a disabled user log in again; their old sessions stay
// revoked. Only an active admin may do it. It returns errs.Permission or
// errs.NotFound.
func (s *Service) EnableUser(ctx context.Context, in SetStatusInput) (User, error) {
	return s.setStatus(ctx, in, StatusActive)
}

func (s *Service) setStatus(ctx context.Context, in SetStatusInput, status string) (User, error) {
	if !in.Actor.HasRole(identity.RoleAdmin) {
		return User{}, errs.New(errs.Permission, "permission denied")
	}
	if _, err := uuid.Parse(in.UserID); err != nil {
		return User{}, errs.New(errs.NotFound, "user not found")
	}
	event, outcome := EventUserEnabled, "enabled"
	if status == StatusDisabled {
		event, outcome = EventUserDisabled, "disabled"
	}
	now := s.now().UTC()
	if status == StatusDisabled && in.UserID == in.Actor.ID {
		s.ctr.Event(ctx, "user_status", "refused")
		err := s.store.InTx(ctx, func(tx Tx) error {
			return tx.Audit(ctx, AuditEvent{Action: event, Actor: in.Actor.ID, Resource: UserResource(in.UserID), ClientIP: in.ClientIP,
				Outcome: OutcomeDenied, Reason: "self_disable", Detail: map[string]string{"reason": in.Reason}, At: now})
		})
		if err != nil {
			return User{}, err
		}
		return User{}, ErrSelfDisable
	}
	var (
		out  User
		revs []Revocation
	)
	err := s.store.InTx(ctx, func(tx Tx) error {
		revs = nil
		// The admins first, as a role change locks them, so that a disable
		// and a demotion of the actor are serialised.
		admins, err := tx.LockAdmins(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(admins, in.Actor.ID) {
			return errs.New(errs.Permission, "permission denied")
		}
		u, err := tx.LockUser(ctx, in.UserID)
		if errs.KindOf(err) == errs.NotFound {
			return errs.Wrap(errs.NotFound, "user not found", err)
		} else if err != nil {
			return err
		}
		if u.Status == status {
			out = u
			return nil
		}
		if out, err = tx.SetStatus(ctx, u.ID, status, now); err != nil {
			return err
		}
		if status == StatusDisabled {
			if revs, err = revokeUserSessions(ctx, tx, u.ID, now); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, AuditEvent{Action: event, Actor: in.Actor.ID, Resource: UserResource(u.ID), ClientIP: in.ClientIP,
			Outcome: OutcomeSuccess, At: now, Detail: map[string]string{"reason": in.Reason}})
	})
	if err != nil {
		if errs.KindOf(err) == errs.Permission {
			s.ctr.Event(ctx, "user_status", "refused")
		}
		return User{}, err
	}
	s.revs.Add(revs)
	s.ctr.Event(ctx, "user_status", outcome)
	return out, nil
}
