package domain_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// TestIPThrottleCountsOneClientPerNetwork: the failed-login throttle counts
// a client the way the gateway's per-IP rate limit does (identity.ClientKey):
// every address of an IPv6 /64 is one client, so a host cannot spray
// passwords from fresh addresses of its own network, while each IPv4 address
// is its own client. In the addresses, {a} and {b} stand for a network
// fresh to each case (two groups of an IPv6 /64, or two bytes of an IPv4
// address), so that parallel cases never share a counter.
func TestIPThrottleCountsOneClientPerNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		spray     []string // four failed logins, from these addresses
		then      string   // the right password, from here
		throttled bool
	}{
		{"ipv6 rotating through its /64",
			[]string{"2001:db8:{a}:{b}::1", "2001:db8:{a}:{b}::2", "2001:db8:{a}:{b}:1::3", "2001:db8:{a}:{b}:ffff:ffff:ffff:4"},
			"2001:db8:{a}:{b}:dead:beef:0:5", true},
		{"ipv6 spelled out in full",
			[]string{"2001:db8:{a}:{b}::1", "2001:db8:{a}:{b}::1", "2001:db8:{a}:{b}::1", "2001:db8:{a}:{b}::1"},
			"2001:0DB8:0{a}:0{b}:0000:0000:0000:0009", true},
		{"ipv6 the next /64",
			[]string{"2001:db8:{a}:{b}::1", "2001:db8:{a}:{b}::2", "2001:db8:{a}:{b}::3", "2001:db8:{a}:{b}::4"},
			"2001:db8:{a}:{b}0::1", false},
		{"ipv4 one address",
			[]string{"10.{a}.{b}.7", "10.{a}.{b}.7", "10.{a}.{b}.7", "10.{a}.{b}.7"},
			"10.{a}.{b}.7", true},
		{"ipv4 mapped into ipv6 is the same client",
			[]string{"10.{a}.{b}.7", "10.{a}.{b}.7", "::ffff:10.{a}.{b}.7", "10.{a}.{b}.7"},
			"::ffff:10.{a}.{b}.7", true},
		{"ipv4 the neighbour",
			[]string{"10.{a}.{b}.7", "10.{a}.{b}.7", "10.{a}.{b}.7", "10.{a}.{b}.7"},
			"10.{a}.{b}.8", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, domain.Config{MaxFailures: 2, IPMaxFailures: 4})
			u, pw := f.register(t)
			at := freshNetwork(strings.HasPrefix(tc.name, "ipv6"))
			for i, ip := range tc.spray {
				in := domain.LoginInput{Email: "spray-" + uuid.NewString() + "@example.com", Password: "Summer2030!!", ClientIP: at(ip)}
				if _, err := f.svc.Login(ctx, in); !errors.Is(err, domain.ErrInvalidCredentials) {
					t.Fatalf("spray %d from %s = %v, want invalid credentials", i, in.ClientIP, err)
				}
			}
			_, err := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: at(tc.then)})
			if got := errs.KindOf(err) == errs.RateLimited; got != tc.throttled {
				t.Errorf("Login(right password, from %s) = %v; throttled %v, want %v", at(tc.then), err, got, tc.throttled)
			}
		})
	}
}

// freshNetwork returns a function that fills in {a} and {b} with a random
// network: hex groups below 0x1000 for IPv6 (so that "{b}0" is still a
// group), bytes for IPv4.
func freshNetwork(v6 bool) func(string) string {
	var a, b string
	if v6 {
		a, b = fmt.Sprintf("%x", 1+rand.IntN(0xfff)), fmt.Sprintf("%x", 1+rand.IntN(0xfff))
	} else {
		a, b = fmt.Sprint(rand.IntN(256)), fmt.Sprint(rand.IntN(256))
	}
	return strings.NewReplacer("{a}", a, "{b}", b).Replace
}
