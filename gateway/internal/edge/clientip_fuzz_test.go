package edge_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
)

// FuzzClientIP checks the one place the gateway decides who a client is,
// with an X-Forwarded-For header the client fully controls. The answer is
// empty only for a socket address that does not parse, and is otherwise a
// canonical, zone-free address. From an untrusted peer it is always the peer.
// Behind trusted proxies it is the peer or a hop of the header, and every
// hop to its right must be a well-formed trusted proxy: no entry a client
// wrote to the left of the proxies' own is ever believed.
func FuzzClientIP(f *testing.F) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	seeds := []struct{ remote, xff string }{
		{"203.0.113.7:5555", "1.2.3.4"},
		{"10.1.1.1:443", "6.6.6.6, 198.51.100.9"},
		{"10.1.1.1:443", "198.51.100.9, 10.2.2.2,10.3.3.3"},
		{"10.1.1.1:443", "10.9.9.9"},
		{"10.1.1.1:443", "1.1.1.1, nonsense"},
		{"10.1.1.1:443", ""},
		{"[fd00::1]:443", "2001:db8::1, fd00::2"},
		{"[fd00::1%eth0]:443", "::ffff:10.0.0.1, fe80::1%eth0"},
		{"[::ffff:10.0.0.1]:443", " 192.0.2.1 ,, "},
		{"10.1.1.1", "192.0.2.1"},
		{"garbage", "192.0.2.1"},
		{"", ""},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.xff)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		var headers []string
		if xff != "" {
			headers = strings.Split(xff, "\n") // several X-Forwarded-For headers
		}
		got := edge.ClientIP(remote, headers, trusted)
		peer, ok := socketAddr(remote)
		if !ok {
			if got != "" {
				t.Fatalf("ClientIP(%q, %q) = %q, want \"\" for an unparsable peer", remote, headers, got)
			}
			return
		}
		client, err := netip.ParseAddr(got)
		if err != nil || client.String() != got || client.Zone() != "" || client.Is4In6() {
			t.Fatalf("ClientIP(%q, %q) = %q, want a canonical address without zone", remote, headers, got)
		}
		if !inAny(peer, trusted) {
			if client != peer {
				t.Fatalf("ClientIP(%q, %q) = %q, want the untrusted peer %s", remote, headers, got, peer)
			}
			return
		}
		if client == peer {
			return
		}
		hops := strings.Split(strings.Join(headers, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			if a = a.Unmap().WithZone(""); a == client {
				return // every hop to its right was a parsed, trusted proxy
			}
			if !inAny(a, trusted) {
				break
			}
		}
		t.Fatalf("ClientIP(%q, %q) = %q, which is not reached through trusted proxies only", remote, headers, got)
	})
}

// socketAddr parses a peer the way a listener reports it, with or without
// port, as the client's address.
func socketAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap().WithZone(""), err == nil
}

func inAny(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
