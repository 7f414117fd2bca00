package identity_test

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/identity"
)

// maxAddrKeyLen is the longest key of a parsed address:
// "ip6:" and the longest /64 prefix, "ffff:ffff:ffff:ffff::/64".
const maxAddrKeyLen = len("ip6:ffff:ffff:ffff:ffff::/64")

// FuzzClientKey checks the key per-client limits count under. Any text gives
// a key without panicking; an address gives a short key of address
// characters only; every address of one IPv6 /64 (and both spellings of an
// IPv4 address) gives the same key, so a client cannot earn a fresh budget
// by changing the part of its address it controls; and addresses in
// different /64s never share a key, so one client cannot spend another's.
func FuzzClientKey(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1", "::ffff:192.0.2.1", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff",
		"fe80::1%eth0", "::", "::1", "0.0.0.0", "255.255.255.255", "2001:DB8::1",
		"", "not an ip", "192.0.2.1:443", "[2001:db8::1]", "01.2.3.4", "1.2.3.4\n", "ip6:x",
	} {
		f.Add(s, uint64(0x0123456789abcdef), "2001:db8:1:3::1")
	}
	f.Fuzz(func(t *testing.T, ip string, host uint64, other string) {
		key := identity.ClientKey(ip)
		a, err := netip.ParseAddr(ip)
		if err != nil {
			if key != "ip:"+ip {
				t.Fatalf("ClientKey(%q) = %q, want the text keyed as given", ip, key)
			}
			return
		}
		if len(key) > maxAddrKeyLen || strings.Trim(key, "0123456789abcdef.:/ip") != "" {
			t.Fatalf("ClientKey(%q) = %q, want at most %d characters of an address", ip, key, maxAddrKeyLen)
		}
		a = a.Unmap().WithZone("")
		if a.Is4() {
			if mapped := netip.AddrFrom16(a.As16()).String(); identity.ClientKey(mapped) != key {
				t.Fatalf("ClientKey(%q) = %q, ClientKey(%q) = %q; want one key for one IPv4 client", ip, key, mapped, identity.ClientKey(mapped))
			}
		} else {
			b := a.As16()
			binary.BigEndian.PutUint64(b[8:], host)
			same := netip.AddrFrom16(b).String()
			if got := identity.ClientKey(same); got != key {
				t.Fatalf("ClientKey(%q) = %q, ClientKey(%q) = %q; want one key per /64", ip, key, same, got)
			}
		}
		o, err := netip.ParseAddr(other)
		if err != nil {
			return
		}
		o = o.Unmap().WithZone("")
		sameClient := o.Is4() == a.Is4() && (a.Is4() && o == a || !a.Is4() && netip.PrefixFrom(a, 64).Contains(o))
		if (identity.ClientKey(other) == key) != sameClient {
			t.Fatalf("ClientKey(%q) = %q, ClientKey(%q) = %q; want equal keys exactly for the same client", ip, key, other, identity.ClientKey(other))
		}
	})
}
