package target_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/target"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw         string
		allowRemote bool
		want        string // "" for a refusal
		notLoopback bool   // the refusal is the loopback guard's
	}{
		{"https://127.0.0.1:8443", false, "https://127.0.0.1:8443", false},
		{"https://127.0.0.1:8443/", false, "https://127.0.0.1:8443", false},
		{"https://127.255.0.9:8443", false, "https://127.255.0.9:8443", false},
		{"https://[::1]:8443", false, "https://[::1]:8443", false},
		{"https://[::ffff:127.0.0.1]:8443", false, "https://[::ffff:127.0.0.1]:8443", false},
		{"https://localhost:8443", false, "https://localhost:8443", false},
		{"https://LocalHost.:8443", false, "https://LocalHost.:8443", false},
		// Not loopback: refused without the ownership flag.
		{"https://example.com", false, "", true},
		{"https://10.0.0.1:8443", false, "", true},
		{"https://192.168.1.10", false, "", true},
		{"https://0.0.0.0:8443", false, "", true},
		{"https://[::]:8443", false, "", true},
		{"https://128.0.0.1", false, "", true},
		{"https://localhost.example.com", false, "", true}, // a name that merely starts like localhost
		{"https://127.0.0.1.nip.io", false, "", true},      // a name that resolves to loopback today
		{"https://2130706433", false, "", true},            // 127.0.0.1 as a decimal number is not a literal address
		{"https://0x7f000001", false, "", true},            // nor as hex
		{"https://[fe80::1%25lo]:8443", false, "", true},   // zoned addresses are refused
		{"https://[::1%25lo]:8443", false, "", true},       // even loopback with a zone
		{"https://example.com:8443", true, "https://example.com:8443", false},
		// Malformed or unsafe whatever the flag says.
		{"http://127.0.0.1:8443", false, "", false},
		{"http://example.com", true, "", false},
		{"ftp://127.0.0.1", false, "", false},
		{"127.0.0.1:8443", false, "", false},
		{"https://", false, "", false},
		{"https://:8443", false, "", false},
		{"https://user:pw@127.0.0.1:8443", false, "", false},
		{"https://127.0.0.1:8443/v1/accounts", false, "", false},
		{"https://127.0.0.1:8443/?x=1", false, "", false},
		{"https://127.0.0.1:8443/#frag", false, "", false},
		{"https://127.0.0.1:8443\n", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			u, err := target.Parse(tt.raw, tt.allowRemote)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Parse(%q, %v) = %v, want a refusal", tt.raw, tt.allowRemote, u)
				}
				if got := errors.Is(err, target.ErrNotLoopback); got != tt.notLoopback {
					t.Errorf("Parse(%q) error = %v, want ErrNotLoopback=%v", tt.raw, err, tt.notLoopback)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Errorf("Parse(%q, %v) = %v, %v, want %s", tt.raw, tt.allowRemote, u, err, tt.want)
			}
		})
	}
}

// nonLoopbackAddr returns an address of this machine that is not loopback,
// or "" when it has none.
func nonLoopbackAddr() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

// The dial-time check catches what the URL check cannot: a name that
// resolves somewhere else. Here the name is an address of this machine's
// own network interface, which the check must refuse as well.
func TestDialerChecksTheActualRemoteAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := &net.Dialer{Timeout: time.Second}

	conn, err := target.Dialer(d, false)(t.Context(), "tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatalf("dial loopback = %v, want a connection", err)
	}
	conn.Close()

	ip := nonLoopbackAddr()
	if ip == "" {
		t.Skip("no non-loopback interface address on this machine")
	}
	if conn, err := target.Dialer(d, false)(t.Context(), "tcp", net.JoinHostPort(ip, port)); !errors.Is(err, target.ErrNotLoopback) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("dial %s without the ownership flag = %v, want ErrNotLoopback", ip, err)
	}
	conn, err = target.Dialer(d, true)(t.Context(), "tcp", net.JoinHostPort(ip, port))
	if err != nil {
		t.Fatalf("dial %s with the ownership flag = %v, want a connection", ip, err)
	}
	conn.Close()
}

func TestIsLoopbackHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true, "LOCALHOST": true,
		"": false, "localhost.": true, "localhost..": false, "0.0.0.0": false, "::": false, "169.254.0.1": false,
		"::ffff:10.0.0.1": false, "localhost:80": false, "127.0.0.1 ": false,
	} {
		if got := target.IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
