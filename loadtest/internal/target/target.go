// Package target decides which servers bankload may be pointed at.
//
// bankload sends thousands of requests a second, and its attack scenario
// sends exactly the traffic an intrusion detection system is built to flag:
// forged tokens, probes of other users' accounts, oversized bodies, bursts
// over rate limits. Pointed at a system its operator does not own, that is a
// denial-of-service or an intrusion attempt, not a test. So by default it
// only talks to the loopback interface (where `make run` listens), and
// anything else needs the operator to say, with -i-own-this-target, that
// they own the target or hold written permission to test it.
//
// The check runs twice: on the URL before anything is sent, and on every
// connection's actual remote address, so a host name cannot slip past the
// first check by resolving to somewhere else (DNS rebinding, /etc/hosts).
package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// ErrNotLoopback is returned for a target outside the loopback interface
// when the operator has not claimed ownership of it.
var ErrNotLoopback = errors.New("target is not a loopback address; bankload refuses to load or attack a host it cannot tell you own " +
	"(pass -i-own-this-target only for a system you own or are authorised in writing to test)")

// Parse checks raw as a bankload target: an https URL with a host and no
// path beyond "/", no user info, and, unless allowRemote, a loopback host.
func Parse(raw string, allowRemote bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target %q is not a URL", raw)
	}
	switch {
	case u.Scheme != "https":
		return nil, fmt.Errorf("target %q must be https: the gateway serves no plaintext", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("target %q has no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("target %q must not carry credentials", raw)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("target %q must be scheme://host[:port] only", raw)
	}
	if !allowRemote && !IsLoopbackHost(u.Hostname()) {
		return nil, ErrNotLoopback
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// IsLoopbackHost reports whether host is "localhost" or a literal address
// in 127.0.0.0/8 or ::1. Other names are refused even if they resolve to
// loopback today, since what they resolve to can change.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return false
	}
	return addr.Unmap().IsLoopback()
}

// Dialer returns a DialContext for http.Transport that connects with d and,
// unless allowRemote, closes any connection whose remote address is not
// loopback before a byte is written to it.
func Dialer(d *net.Dialer, allowRemote bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil || allowRemote {
			return conn, err
		}
		ap, perr := netip.ParseAddrPort(conn.RemoteAddr().String())
		if perr != nil || !ap.Addr().Unmap().IsLoopback() {
			conn.Close()
			return nil, fmt.Errorf("connected to %s: %w", conn.RemoteAddr(), ErrNotLoopback)
		}
		return conn, nil
	}
}
