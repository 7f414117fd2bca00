package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// User is a registered user. It never carries a password hash.
type User struct {
	ID          string // a random UUID
	Email       string // lower case
	DisplayName string
	Roles       []string // sorted, from identity.RoleUser, RoleManager, RoleAdmin
	Status      string   // StatusActive or StatusDisabled
	MFAEnabled  bool     // logs in with a TOTP code as well
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// The statuses of a user.
const (
	StatusActive   = "ACTIVE"   // may log in and use its tokens
	StatusDisabled = "DISABLED" // an admin stopped it: no login, no token
)

// IsAdmin reports whether u holds the admin role.
func (u User) IsAdmin() bool { return slices.Contains(u.Roles, identity.RoleAdmin) }

// Disabled reports whether an admin has disabled u.
func (u User) Disabled() bool { return u.Status == StatusDisabled }

// NormalizeEmail returns the form an email is stored and matched in: trimmed
// and lower case, so that Alice@Example.com and alice@example.com are one
// account.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// emailKey is the login-counter key of an email: a hash, so that the counter
// table does not hold a second copy of every address anyone ever tried.
func emailKey(email string) string {
	sum := sha256.Sum256([]byte("login-email\x00" + NormalizeEmail(email)))
	return hex.EncodeToString(sum[:])
}

// accountClientKey is the login-counter key of an email tried from one
// client network (an identity.ClientKey, or "" when it is unknown): a hash
// too, for the same reason as emailKey.
func accountClientKey(email, client string) string {
	sum := sha256.Sum256([]byte("login-email-client\x00" + NormalizeEmail(email) + "\x00" + client))
	return hex.EncodeToString(sum[:])
}

// knownRoles are the roles a user may hold.
var knownRoles = []string{identity.RoleAdmin, identity.RoleManager, identity.RoleUser}

// NormalizeRoles checks that roles is a non-empty set of known roles and
// returns it sorted without duplicates.
func NormalizeRoles(roles []string) ([]string, error) {
	if len(roles) == 0 {
		return nil, errs.InvalidField("roles", "at least one role is required")
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !slices.Contains(knownRoles, r) {
			return nil, errs.InvalidField("roles", "unknown role")
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}
