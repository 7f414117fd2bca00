// Package identity carries verified principals on a context.
//
// Only the platform's own interceptors put values here: the mTLS layer sets the
// calling service from the verified certificate, and the token interceptor sets
// the user from a verified access token. Nothing read from request metadata
// ever reaches these functions unverified.
package identity

import (
	"context"
	"slices"
	"time"
)

// The roles a user can hold.
const (
	RoleUser    = "user"
	RoleManager = "manager"
	RoleAdmin   = "admin"
)

// User is an end user proven by a verified access token.
type User struct {
	ID        string    // the token's sub: a user UUID
	Roles     []string  // the token's roles claim
	TokenID   string    // the token's jti, for revocation
	ExpiresAt time.Time // the token's exp
}

// HasRole reports whether u holds role.
func (u User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// HasAnyRole reports whether u holds at least one of roles.
func (u User) HasAnyRole(roles ...string) bool {
	for _, r := range roles {
		if u.HasRole(r) {
			return true
		}
	}
	return false
}

type (
	userKey    struct{}
	serviceKey struct{}
	clientKey  struct{}
	tokenKey   struct{}
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

// WithToken returns a context carrying the raw, already verified access token,
// so that a service can forward it on calls it makes for the same user.
func WithToken(ctx context.Context, raw string) context.Context {
	return context.WithValue(ctx, tokenKey{}, raw)
}

// TokenFrom returns the raw verified access token, if any.
func TokenFrom(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(tokenKey{}).(string)
	return s, ok && s != ""
}
