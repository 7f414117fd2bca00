// Package identity carries verified principals on a context, and names who
// acted (Actor) for the audit trails.
//
// Only the platform's own interceptors put values here: the mTLS layer sets the
// calling service from the verified certificate, and the token interceptor sets
// the user from a verified access token. Nothing read from request metadata
// ever reaches these functions unverified.
package identity

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
)

// The roles a user can hold.
const (
	RoleUser    = "user"
	RoleManager = "manager"
	RoleAdmin   = "admin"
)

// The authentication methods an access token's amr claim can name (RFC 8176).
const (
	AMRPassword = "pwd" // the user's password
	AMROTP      = "otp" // a one-time code (TOTP, RFC 6238)
)

// User is an end user proven by a verified access token.
type User struct {
	ID        string    // the token's sub: a user UUID
	Roles     []string  // the token's roles claim
	AMR       []string  // the token's amr claim: how the login was proven
	TokenID   string    // the token's jti, for revocation
	ExpiresAt time.Time // the token's exp
}

// HasRole reports whether u holds role.
func (u User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// HasAMR reports whether u's token says the login used method (AMROTP ...).
func (u User) HasAMR(method string) bool { return slices.Contains(u.AMR, method) }

// HasAnyRole reports whether u holds at least one of roles.
func (u User) HasAnyRole(roles ...string) bool {
	for _, r := range roles {
		if u.HasRole(r) {
			return true
		}
	}
	return false
}

// Verifier verifies an end user's access token and returns the user it
// proves. platform/token.Verifier is the implementation; the edge and every
// gRPC server take one through this interface, so tests can hand them
// another.
type Verifier interface {
	Verify(ctx context.Context, raw string) (User, error)
}

type (
	userKey    struct{}
	serviceKey struct{}
	clientKey  struct{}
)

// WithUser returns a context carrying the verified user.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the verified user, if any.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// ErrNoUser is RequireUser's refusal: the same answer as a request without
// a token.
var ErrNoUser = errs.New(errs.Unauthenticated, "authentication required")

// RequireUser returns the verified user on ctx, or ErrNoUser if there is
// none or it has no id. The chain refuses a call whose rule needs a user
// before its handler runs; a handler calls this as its own guard, against a
// rule edited to public by mistake, and refuses rather than guess.
func RequireUser(ctx context.Context) (User, error) {
	u, ok := UserFrom(ctx)
	if !ok || u.ID == "" {
		return User{}, ErrNoUser
	}
	return u, nil
}

// CanonicalID returns id, if it is a UUID in the hyphenated 36-character
// form (either case, the only form the API accepts), in the lower-case form
// the databases store, and false if it is not: users, accounts and
// transfers are named by such ids, and normalising them before any lookup
// or rule means "A" and "a" never name two things, and the fakes, the
// Postgres stores and the owner checks all find the same row.
func CanonicalID(id string) (string, bool) {
	if len(id) != 36 {
		return "", false
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// WithService returns a context carrying the name of the calling service, as
// proven by its client certificate (e.g. "gateway").
func WithService(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, serviceKey{}, name)
}

// ServiceFrom returns the verified calling service's name, if any.
func ServiceFrom(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(serviceKey{}).(string)
	return s, ok && s != ""
}

// WithClientIP returns a context carrying the end client's IP address as
// established by the edge (never taken from a client-supplied header).
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientKey{}, ip)
}

// ClientIPFrom returns the end client's IP address, if known.
func ClientIPFrom(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(clientKey{}).(string)
	return s, ok && s != ""
}

// ClientKey returns the key under which per-client limits count the end
// client at address ip: the gateway's per-IP rate limits and the auth
// service's failed-login throttle both use it, so that the two always agree
// on who one client is.
//
// An IPv4 client (or an IPv4-mapped IPv6 one) is keyed by its address,
// "ip:192.0.2.1". An IPv6 client is keyed by its /64, "ip6:2001:db8:1:2::/64",
// the block a subscriber is normally given: keyed by full address, one host
// could rotate through 2^64 addresses and never run out of budget. A zone
// ("%eth0") is dropped. Anything that does not parse as an address is keyed
// as given, "ip:" followed by the text, so it still counts against itself.
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	if a = a.Unmap().WithZone(""); a.Is6() {
		return "ip6:" + netip.PrefixFrom(a, 64).Masked().String()
	}
	return "ip:" + a.String()
}

// Actor names who acted in ctx, for an audit trail: the verified user's id,
// else "service:" and the verified calling service, else "anonymous".
func Actor(ctx context.Context) string {
	if u, ok := UserFrom(ctx); ok && u.ID != "" {
		return u.ID
	}
	if svc, ok := ServiceFrom(ctx); ok {
		return "service:" + svc
	}
	return "anonymous"
}

// ActionDenied is the audit action of every authorization denial, in every
// service's trail: one name, so one query finds them all.
const ActionDenied = "authz.denied"

// Denial is an authorization denial resolved to who was refused what: what
// a service's audit trail records of it (platform/grpcserver.DenialRecorder
// hands it over).
type Denial struct {
	Action   string // always ActionDenied
	Actor    string // Actor of the refused call
	Reason   string // a stable code such as "not_owner" (platform/rbac)
	Method   string // the refused full method
	ClientIP string // the end client's address, when the gateway called
}
