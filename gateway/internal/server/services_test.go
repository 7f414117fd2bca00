package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc"
)

// TestServicesTable: each entry of the one registration table is whole, and
// its address variable is the one docs/configuration.md documents for it,
// BANK_<NAME>_ADDR, so that a service added to the table is dialled at the
// address the dev runner gives it.
func TestServicesTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, s := range Services() {
		if s.Name == "" || seen[s.Name] {
			t.Errorf("service name %q is empty or repeated", s.Name)
		}
		seen[s.Name] = true
		if want := "BANK_" + strings.ToUpper(s.Name) + "_ADDR"; s.AddrVar != want {
			t.Errorf("%s: AddrVar = %q, want %q", s.Name, s.AddrVar, want)
		}
		if s.DefaultAddr == "" || s.Descriptor == nil || s.Register == nil {
			t.Errorf("%s: DefaultAddr %q, Descriptor %v, Register set %v; want all three", s.Name, s.DefaultAddr, s.Descriptor, s.Register != nil)
		}
	}
	if got := len(PublicServices()); got != len(seen) {
		t.Errorf("len(PublicServices()) = %d, want one per service (%d)", got, len(seen))
	}
}

// TestUpstreamsCheckNamesTheMissingService: the handler is not built while
// any service of the table has no connection, and the error says which.
func TestUpstreamsCheckNamesTheMissingService(t *testing.T) {
	t.Parallel()
	var conn grpc.ClientConnInterface = (*grpc.ClientConn)(nil)
	all := Upstreams{}
	for _, s := range Services() {
		all[s.Name] = conn
	}
	// A typed nil is still an interface value that is set: check looks only
	// at presence; the connections themselves are the caller's.
	if err := all.check(); err != nil {
		t.Errorf("check(every service) = %v, want nil", err)
	}
	for _, s := range Services() {
		up := Upstreams{}
		for k, v := range all {
			if k != s.Name {
				up[k] = v
			}
		}
		if err := up.check(); err == nil || !strings.Contains(err.Error(), s.Name) {
			t.Errorf("check(without %s) = %v, want an error naming it", s.Name, err)
		}
	}
}
