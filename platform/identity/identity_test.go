package identity_test

import (
	"context"
	"testing"

	"github.com/bastion-bank/bastion/platform/identity"
)

func TestContextCarriesOnlyWhatWasSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, ok := identity.UserFrom(ctx); ok {
		t.Error("UserFrom(empty) found a user")
	}
	if _, ok := identity.ServiceFrom(ctx); ok {
		t.Error("ServiceFrom(empty) found a service")
	}
	if _, ok := identity.ClientIPFrom(ctx); ok {
		t.Error("ClientIPFrom(empty) found an IP")
	}
	if _, ok := identity.TokenFrom(ctx); ok {
		t.Error("TokenFrom(empty) found a token")
	}
	// A plain string under a look-alike key must not be mistaken for a principal.
	type userKey struct{}
	if _, ok := identity.UserFrom(context.WithValue(ctx, userKey{}, identity.User{ID: "x"})); ok {
		t.Error("UserFrom accepted a value under a foreign key")
	}
	ctx = identity.WithUser(ctx, identity.User{ID: "u1", Roles: []string{identity.RoleUser, identity.RoleManager}})
	ctx = identity.WithService(ctx, "gateway")
	ctx = identity.WithClientIP(ctx, "192.0.2.1")
	ctx = identity.WithToken(ctx, "tok")
	u, _ := identity.UserFrom(ctx)
	if !u.HasRole(identity.RoleManager) || u.HasRole(identity.RoleAdmin) || !u.HasAnyRole(identity.RoleAdmin, identity.RoleUser) || u.HasAnyRole() {
		t.Errorf("roles of %+v", u)
	}
	if s, _ := identity.ServiceFrom(ctx); s != "gateway" {
		t.Errorf("ServiceFrom = %q", s)
	}
	if ip, _ := identity.ClientIPFrom(ctx); ip != "192.0.2.1" {
		t.Errorf("ClientIPFrom = %q", ip)
	}
	if tok, _ := identity.TokenFrom(ctx); tok != "tok" {
		t.Errorf("TokenFrom = %q", tok)
	}
	if _, ok := identity.ServiceFrom(identity.WithService(context.Background(), "")); ok {
		t.Error("an empty service name counts as a service")
	}
}
