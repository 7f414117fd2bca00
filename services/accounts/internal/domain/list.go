package domain

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
)

// ReasonOtherOwner is the reason code of the denial behind ErrOtherOwner,
// for the counters and the audit trail.
const ReasonOtherOwner = "list_other_owner"

// Page sizes for List.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ListQuery asks for one page of accounts.
type ListQuery struct {
	OwnerID   string // whose accounts; "" means the caller's own
	PageSize  int    // 0 means DefaultPageSize
	PageToken string // "" for the first page, else the previous page's NextPageToken
}

// Page is one page of accounts, oldest first.
type Page struct {
	Accounts      []View
	NextPageToken string // "" on the last page
}

// List returns a page of the caller's accounts or, for a manager or admin,
// of OwnerID's. A plain user naming another owner gets ErrOtherOwner, which
// the caller reports as an authorization denial (counted and audited by the
// platform's one path, as the chain's own denials are). A page token works only for the caller and owner
// it was minted for: any other token, or one changed in any way, is an
// Invalid error.
func (s *Service) List(ctx context.Context, actor identity.User, q ListQuery) (Page, error) {
	self, ok := identity.CanonicalID(actor.ID)
	if !ok {
		return Page{}, errs.Wrap(errs.Internal, "", errors.New("actor id is not a UUID"))
	}
	owner := self
	if q.OwnerID != "" {
		if owner, ok = identity.CanonicalID(q.OwnerID); !ok {
			return Page{}, errs.InvalidField("ownerId", "must be a UUID")
		}
	}
	if owner != self && !actor.HasAnyRole(identity.RoleManager, identity.RoleAdmin) {
		return Page{}, ErrOtherOwner
	}
	size := q.PageSize
	if size == 0 {
		size = DefaultPageSize
	}
	if size < 0 || size > MaxPageSize {
		return Page{}, errs.InvalidField("pageSize", "must be between 0 and 100")
	}
	scope := listScope(self, owner)
	after, err := s.decodeCursor(scope, q.PageToken)
	if err != nil {
		return Page{}, err
	}
	accounts, err := s.store.List(ctx, owner, after, size+1)
	if err != nil {
		return Page{}, err
	}
	var page Page
	if len(accounts) > size {
		accounts = accounts[:size]
		last := accounts[size-1]
		page.NextPageToken = s.cfg.PageTokens.Encode(scope, encodeCursor(Cursor{CreatedAt: last.CreatedAt, ID: last.ID}))
	}
	if page.Accounts, err = s.withBalances(ctx, accounts); err != nil {
		return Page{}, err
	}
	return page, nil
}

// listScope binds a list token to who asked and whose accounts they asked
// for, so it cannot be replayed by another user or for another owner.
func listScope(actorID, ownerID string) string {
	return "accounts.list|" + actorID + "|" + ownerID
}

// cursorLen is the size of an encoded cursor: microseconds since the epoch
// and the 16 bytes of the id.
const cursorLen = 8 + 16

// encodeCursor packs c compactly; the page token codec authenticates it.
func encodeCursor(c Cursor) []byte {
	b := make([]byte, cursorLen)
	binary.BigEndian.PutUint64(b, uint64(c.CreatedAt.UnixMicro()))
	id := uuid.MustParse(c.ID) // ids come from the database, where they are uuid
	copy(b[8:], id[:])
	return b
}

// decodeCursor checks token against scope and unpacks its cursor; an empty
// token means the first page.
func (s *Service) decodeCursor(scope, token string) (*Cursor, error) {
	if token == "" {
		return nil, nil
	}
	b, err := s.cfg.PageTokens.Decode(scope, token)
	if err != nil {
		return nil, err
	}
	if len(b) != cursorLen {
		// Only a token minted by another build could get here.
		return nil, pagetoken.ErrInvalid
	}
	id, _ := uuid.FromBytes(b[8:]) // cannot fail: exactly 16 bytes
	return &Cursor{
		CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b))).UTC(),
		ID:        id.String(),
	}, nil
}
