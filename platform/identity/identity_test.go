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
	// A plain string under a look-alike key must not be mistaken for a principal.
	type userKey struct{}
	if _, ok := identity.UserFrom(context.WithValue(ctx, userKey{}, identity.User{ID: "x"})); ok {
		t.Error("UserFrom accepted a value under a foreign key")
	}
	ctx = identity.WithUser(ctx, identity.User{ID: "u1", Roles: []string{identity.RoleUser, identity.RoleManager}})
	ctx = identity.WithService(ctx, "gateway")
	ctx = identity.WithClientIP(ctx, "192.0.2.1")
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
	if _, ok := identity.ServiceFrom(identity.WithService(context.Background(), "")); ok {
		t.Error("an empty service name counts as a service")
	}
}

// TestClientKey: every address of one IPv6 /64 is one client, each IPv4
// address is its own, and no two spellings of one address count apart.
func TestClientKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ip, want string
	}{
		{"ipv4", "192.0.2.1", "ip:192.0.2.1"},
		{"ipv4 neighbour is another client", "192.0.2.2", "ip:192.0.2.2"},
		{"ipv4 loopback", "127.0.0.1", "ip:127.0.0.1"},
		{"ipv4-mapped ipv6 is the ipv4 client", "::ffff:192.0.2.1", "ip:192.0.2.1"},
		{"ipv6", "2001:db8:1:2::1", "ip6:2001:db8:1:2::/64"},
		{"ipv6 same /64, other host", "2001:db8:1:2:ffff:ffff:ffff:fffe", "ip6:2001:db8:1:2::/64"},
		{"ipv6 uncompressed upper case", "2001:0DB8:0001:0002:0000:0000:0000:0009", "ip6:2001:db8:1:2::/64"},
		{"ipv6 next /64 is another client", "2001:db8:1:3::1", "ip6:2001:db8:1:3::/64"},
		{"ipv6 with zone", "fe80::1%eth0", "ip6:fe80::/64"},
		{"ipv6 loopback", "::1", "ip6:::/64"},
		{"not an address", "unknown", "ip:unknown"},
		{"empty", "", "ip:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := identity.ClientKey(tc.ip); got != tc.want {
				t.Errorf("ClientKey(%q) = %q, want %q", tc.ip, got, tc.want)
			}
		})
	}
}

// TestActor: the audit trails name the verified user, else the calling
// service, else no one; a user without an id is no user.
func TestActor(t *testing.T) {
	t.Parallel()
	bg := context.Background()
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"user", identity.WithUser(identity.WithService(bg, "gateway"), identity.User{ID: "u1"}), "u1"},
		{"service", identity.WithService(bg, "intruder"), "service:intruder"},
		{"user without an id", identity.WithUser(identity.WithService(bg, "gateway"), identity.User{Roles: []string{"admin"}}), "service:gateway"},
		{"nobody", bg, "anonymous"},
	}
	for _, tt := range tests {
		if got := identity.Actor(tt.ctx); got != tt.want {
			t.Errorf("Actor(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestCanonicalID: an id in either case is the same id, in the database's
// lower-case form; anything but the hyphenated 36-character form is no id.
func TestCanonicalID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"1A1A1A1A-1111-4111-8111-111111111111", "1a1a1a1a-1111-4111-8111-111111111111", true},
		{"1a1a1a1a-1111-4111-8111-111111111111", "1a1a1a1a-1111-4111-8111-111111111111", true},
		{"1a1a1a1a111141118111111111111111", "", false},
		{"{1a1a1a1a-1111-4111-8111-111111111111}", "", false},
		{"urn:uuid:1a1a1a1a-1111-4111-8111-1111", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got, ok := identity.CanonicalID(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("CanonicalID(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestRequireUser: a handler's own guard refuses a context with no user,
// or a user with no id, as a request without a token is refused.
func TestRequireUser(t *testing.T) {
	t.Parallel()
	bg := context.Background()
	if u, err := identity.RequireUser(identity.WithUser(bg, identity.User{ID: "u1"})); err != nil || u.ID != "u1" {
		t.Errorf("RequireUser(u1) = %+v, %v, want u1", u, err)
	}
	for name, ctx := range map[string]context.Context{"no user": bg, "no id": identity.WithUser(bg, identity.User{Roles: []string{"admin"}})} {
		if _, err := identity.RequireUser(ctx); err != identity.ErrNoUser {
			t.Errorf("RequireUser(%s) = %v, want ErrNoUser", name, err)
		}
	}
}
