package server_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/gateway/internal/server"
	"github.com/bastion-bank/bastion/platform/grpctest"
)

func TestHTTPVersionsBothWork(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	user := h.env.Token(t, ownerID, "user")
	for _, tc := range []struct {
		name   string
		client *http.Client
		proto  int
	}{{"HTTP/1.1", h.h1, 1}, {"HTTP/2", h.h2, 2}} {
		resp := h.do(t, tc.client, request{method: "GET", path: "/v1/users/me", token: user})
		if resp.status != 200 || resp.proto != tc.proto {
			t.Errorf("%s GET /v1/users/me = %d over HTTP/%d, want 200 over HTTP/%d", tc.name, resp.status, resp.proto, tc.proto)
		}
	}
}

func TestPlainHTTPIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp, err := http.Get("http://" + h.addr + "/healthz")
	if err != nil {
		return // the connection was refused outright: fine
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK || strings.Contains(string(body), `"ok"`) {
		t.Errorf("plain HTTP GET /healthz = %d %s, want no service", resp.StatusCode, body)
	}
}

func TestTLSVersionsAndSuites(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"TLS 1.1 is refused", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.0 is refused", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		{"TLS 1.2 with a CBC suite is refused", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 with an AEAD suite works", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.3 works", &tls.Config{MinVersion: tls.VersionTLS13}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.RootCAs = h.caPool
			conn, err := tls.Dial("tcp", h.addr, tc.cfg)
			if err == nil {
				conn.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("handshake error = %v, want success %v", err, tc.ok)
			}
		})
	}
	conn, err := tls.Dial("tcp", h.addr, &tls.Config{RootCAs: h.caPool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("default client negotiated %x, want TLS 1.3 preferred", v)
	}
}

// rawTLS opens an HTTP/1.1 TLS connection for hand-written requests.
func (h *harness) rawTLS(t *testing.T) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", h.addr, &tls.Config{RootCAs: h.caPool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestHugeBodyIsRefusedUnread declares a 1 MiB body, sends 1 KiB of it, and
// must get 413 anyway: the gateway decided without waiting for the rest.
func TestHugeBodyIsRefusedUnread(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	conn := h.rawTLS(t)
	head := "POST /v1/auth/login HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
	if _, err := io.WriteString(conn, head+strings.Repeat("a", 1024)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response to a 1 MiB declaration after 1 KiB: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.StatusCode)
	}
	if !resp.Close {
		t.Errorf("response keeps the connection open; it should close instead of draining 1 MiB")
	}

	// The same over HTTP/2, with the whole body on offer.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", h.base+"/v1/auth/login", strings.NewReader(strings.Repeat("a", 1<<20)))
	req.Header.Set("Content-Type", "application/json")
	r2, err := h.h2.Do(req)
	if err != nil {
		t.Fatalf("HTTP/2 1 MiB POST: %v", err)
	}
	body, err := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusRequestEntityTooLarge || err != nil || !strings.Contains(string(body), `"PAYLOAD_TOO_LARGE"`) {
		t.Errorf("HTTP/2 413 = %d with body %q (read error %v), want the whole problem", r2.StatusCode, body, err)
	}
	// Only that stream is refused: the connection, and any other stream on
	// it, carries on (a GOAWAY here cuts off responses in flight).
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, _ = http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", h.base+"/healthz", nil)
	r3, err := h.h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if !reused || r3.ProtoMajor != 2 {
		t.Errorf("request after an HTTP/2 413: reused connection %v over HTTP/%d, want the same HTTP/2 connection", reused, r3.ProtoMajor)
	}
}

// TestSlowClientsAreCutOff: a client that never finishes its headers (or
// never starts TLS) loses its connection at the read-header timeout.
func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	const limit = 300 * time.Millisecond
	h := newHarness(t, func(o *options) {
		o.timeouts = server.DefaultTimeouts(o.upstreamTimeout)
		o.timeouts.ReadHeader = limit
		o.timeouts.Read = 2 * limit
	})
	t.Run("slowloris headers", func(t *testing.T) {
		t.Parallel()
		conn := h.rawTLS(t)
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		assertClosedWithin(t, conn, 3*time.Second)
	})
	t.Run("silent TCP connection", func(t *testing.T) {
		t.Parallel()
		conn, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		assertClosedWithin(t, conn, 3*time.Second)
	})
}

func assertClosedWithin(t *testing.T, conn net.Conn, d time.Duration) {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(d))
	buf := make([]byte, 512)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue // e.g. a 408 the server writes before closing
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v", d)
		}
		if el := time.Since(start); el > d {
			t.Errorf("closed after %v, want within %v", el, d)
		}
		return
	}
}

// TestStoppedUpstreamIs503 covers a refused port and a silent one: each gets
// a 503 problem within the upstream deadline, and /readyz turns 503.
func TestStoppedUpstreamIs503(t *testing.T) {
	t.Parallel()
	refused := grpctest.FreeAddr(t)
	silent := silentListener(t)
	for _, tc := range []struct{ name, addr string }{{"refused", refused}, {"silent", silent}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const deadline = 700 * time.Millisecond
			h := newHarness(t, func(o *options) { o.accountsAddr = tc.addr; o.upstreamTimeout = deadline })
			start := time.Now()
			resp := h.do(t, h.h2, request{method: "GET", path: "/v1/accounts/" + ownedAccount, token: h.env.Token(t, ownerID, "user")})
			elapsed := time.Since(start)
			if resp.status != http.StatusServiceUnavailable {
				t.Fatalf("GET account with accounts %s = %d, want 503 (%s)", tc.name, resp.status, resp.body)
			}
			p := resp.problem(t)
			if strings.Contains(string(resp.body), tc.addr) || strings.Contains(string(resp.body), "connection") {
				t.Errorf("503 body %s reveals the upstream", resp.body)
			}
			if p.Code != "UNAVAILABLE" || elapsed > deadline+time.Second {
				t.Errorf("503 code %q after %v, want UNAVAILABLE within %v", p.Code, elapsed, deadline)
			}
			if r := h.do(t, h.h2, request{method: "GET", path: "/readyz"}); r.status != http.StatusServiceUnavailable || strings.Contains(string(r.body), "accounts") {
				t.Errorf("/readyz = %d %s, want a bare 503", r.status, r.body)
			}
			if r := h.do(t, h.h2, request{method: "GET", path: "/v1/users/me", token: h.env.Token(t, ownerID, "user")}); r.status != 200 {
				t.Errorf("auth route = %d while accounts is down, want 200", r.status)
			}
		})
	}
}

// silentListener accepts connections and never says a word.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestNetHTTPRefusesBeforeTheGateway pins the refusals Go's server makes
// while parsing a request, before any gateway handler runs: headers over
// MaxHeaderBytes (431) and a malformed header line (400). They are
// net/http's plain text, not problem+json (docs/security-controls.md says
// why that stays), and they must stay refusals.
func TestNetHTTPRefusesBeforeTheGateway(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		name   string
		head   string
		status int
	}{
		{"headers too large", "X-Big: " + strings.Repeat("a", 40<<10) + "\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"malformed header line", "Not a header\r\n", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := h.rawTLS(t)
			if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: gateway\r\n"+tc.head+"\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("X-Request-Id") != "" {
				t.Errorf("status = %d (X-Request-Id %q), want %d from net/http, before the edge", resp.StatusCode, resp.Header.Get("X-Request-Id"), tc.status)
			}
		})
	}
}
