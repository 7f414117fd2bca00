package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/bank/banktest"
	"github.com/bastion-bank/bastion/loadtest/internal/target"
)

// startFake starts the HTTP test double and writes its certificate as the CA file.
func startFake(t *testing.T, opts banktest.Options) (*banktest.Server, string) {
	t.Helper()
	srv := banktest.New(opts)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

// bankload runs the program as `main` would, with the admin's credentials in
// the environment only.
func bankload(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	env := map[string]string{"BANK_ADMIN_EMAIL": banktest.AdminEmail, "BANK_ADMIN_PASSWORD": banktest.AdminPassword}
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"bankload"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

type jsonReport struct {
	Scenario        string
	Total           int
	Dropped         int
	TransportErrors int
	Unexpected      int
	Endpoints       []struct {
		Endpoint string
		Count    int
		Codes    map[string]int
	}
}

func TestTransfersSpeakTheContract(t *testing.T) {
	t.Parallel()
	srv, ca := startFake(t, banktest.Options{})
	// 2 users × 10 requests each per cycle; 40 requests are two whole cycles.
	const rate, window = 100, 400 * time.Millisecond
	out, errOut, err := bankload(t, "-target", srv.URL, "-ca", ca, "-scenario", "transfers", "-rate", "100", "-duration", window.String(), "-users", "2", "-json")
	if err != nil {
		t.Fatalf("bankload transfers: %v\n%s", err, errOut)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-json output is not JSON: %v\n%s", err, out)
	}
	if want := int(rate * window.Seconds()); rep.Total != want || rep.Unexpected != 0 || rep.Dropped != 0 {
		t.Errorf("report = %+v, want %d requests, all expected", rep, want)
	}

	keys := map[string]bool{}
	var transfers int
	var first, last time.Time
	for _, c := range srv.Calls() {
		public := c.Route == "POST /v1/auth/register" || c.Route == "POST /v1/auth/login"
		if !public && !strings.HasPrefix(c.Authorization, "Bearer ") {
			t.Errorf("%s %s sent without a bearer token", c.Method, c.Route)
		}
		if c.Method == http.MethodPost && c.ContentType != "application/json" {
			t.Errorf("%s sent with Content-Type %q", c.Route, c.ContentType)
		}
		if c.Method == http.MethodGet && c.BodyLen != 0 {
			t.Errorf("GET %s sent a body", c.Route)
		}
		if c.Route == "POST /v1/transfers" || c.Route == "POST /v1/accounts/{id}/deposits" {
			if c.IdempotencyKey == "" || keys[c.IdempotencyKey] {
				t.Errorf("%s Idempotency-Key %q: missing or reused", c.Route, c.IdempotencyKey)
			}
			keys[c.IdempotencyKey] = true
		}
		if c.Route == "POST /v1/transfers" {
			transfers++
			if first.IsZero() {
				first = c.At
			}
			last = c.At
		}
		if c.Status != http.StatusOK {
			t.Errorf("%s %s answered %d", c.Method, c.Route, c.Status)
		}
	}
	if transfers != rep.Total*7/10 {
		t.Errorf("server saw %d transfers, want 70%% of %d", transfers, rep.Total)
	}
	// An open model spreads the arrivals over the window instead of sending
	// them at once. A loaded machine (CI runs every package at once) can
	// delay sends by seconds, so the upper bound only catches a runaway.
	if spread := last.Sub(first); spread < window/2 || spread > window+15*time.Second {
		t.Errorf("transfers arrived over %v, want them spread over the %v window", spread, window)
	}
}

func TestLoginStormReportsByIntent(t *testing.T) {
	t.Parallel()
	srv, ca := startFake(t, banktest.Options{})
	out, errOut, err := bankload(t, "-target", srv.URL, "-ca", ca, "-scenario", "login", "-rate", "80", "-duration", "500ms", "-users", "3")
	if err != nil {
		t.Fatalf("bankload login: %v\n%s", err, errOut)
	}
	for _, want := range []string{"(right password)", "(wrong password)", "(unknown email)", "p50", "p99", "401:"} {
		if !strings.Contains(out, want) {
			t.Errorf("login report lacks %q:\n%s", want, out)
		}
	}
}

func TestAttackPassesOnlyWhenEveryProbeIsRefused(t *testing.T) {
	t.Parallel()
	t.Run("correct server", func(t *testing.T) {
		t.Parallel()
		srv, ca := startFake(t, banktest.Options{})
		out, errOut, err := bankload(t, "-target", srv.URL, "-ca", ca, "-scenario", "attack", "-rate", "52", "-duration", "500ms")
		if err != nil {
			t.Fatalf("bankload attack on a correct server: %v\n%s\n%s", err, out, errOut)
		}
	})
	t.Run("server with BOLA", func(t *testing.T) {
		t.Parallel()
		srv, ca := startFake(t, banktest.Options{AllowBOLA: true})
		out, _, err := bankload(t, "-target", srv.URL, "-ca", ca, "-scenario", "attack", "-rate", "52", "-duration", "500ms")
		if err == nil || !strings.Contains(err.Error(), "not refused") {
			t.Errorf("bankload attack on a BOLA-vulnerable server = %v, want a failure naming the unrefused attacks\n%s", err, out)
		}
	})
}

func TestRefusesTargetsItCannotTellYouOwn(t *testing.T) {
	t.Parallel()
	srv, ca := startFake(t, banktest.Options{})
	for _, tgt := range []string{"https://example.com", "https://10.1.2.3:8443", "https://localhost.evil.example:8443", "https://[2001:db8::1]:8443"} {
		_, _, err := bankload(t, "-target", tgt, "-ca", ca, "-scenario", "attack", "-duration", "1s")
		if !errors.Is(err, target.ErrNotLoopback) {
			t.Errorf("bankload -target %s = %v, want ErrNotLoopback", tgt, err)
		}
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("server saw %d calls, want none", n)
	}
}

func TestRefusesUnboundedOrMalformedRuns(t *testing.T) {
	t.Parallel()
	srv, ca := startFake(t, banktest.Options{})
	base := []string{"-target", srv.URL, "-ca", ca, "-scenario", "login"}
	for _, extra := range [][]string{
		{"-duration", "11m"},
		{"-duration", "0s"},
		{"-duration", "-1s"},
		{"-rate", "0"},
		{"-rate", "NaN"},
		{"-rate", "1e9"},
		{"-users", "0"},
		{"-users", "100000"},
		{"-setup-timeout", "2h"},
		{"-timeout", "1h"},
		{"-max-in-flight", "-3"},
		{"-scenario", "everything"},
		{"stray-argument"},
	} {
		if _, _, err := bankload(t, append(append([]string{}, base...), extra...)...); err == nil {
			t.Errorf("bankload %v succeeded, want a refusal", extra)
		}
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("server saw %d calls, want none", n)
	}
}

// Against a server that never answers a transfer, the run still ends by
// itself: each request has a deadline and the run has one.
func TestStopsByItselfAgainstAHangingServer(t *testing.T) {
	t.Parallel()
	srv, ca := startFake(t, banktest.Options{TransferDelay: time.Hour})
	start := time.Now()
	// -timeout bounds the set-up's calls too: long enough for a TLS
	// handshake and a login on a loaded CI machine, far shorter than the
	// hour the server would hold a transfer.
	out, errOut, err := bankload(t, "-target", srv.URL, "-ca", ca, "-scenario", "transfers", "-rate", "20", "-duration", "300ms", "-users", "1", "-timeout", "2s")
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("bankload against a hanging server took %v, want it bounded by -duration and -timeout", took)
	}
	if err != nil {
		t.Fatalf("bankload: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "err:") {
		t.Errorf("report does not show the timed-out transfers as transport errors:\n%s", out)
	}
}

func TestTrustsOnlyTheGivenCA(t *testing.T) {
	t.Parallel()
	srv, _ := startFake(t, banktest.Options{})
	otherCA := selfSignedCA(t)
	_, _, err := bankload(t, "-target", srv.URL, "-ca", otherCA, "-scenario", "login", "-duration", "1s", "-setup-timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("bankload with another server's CA = %v, want a certificate error", err)
	}
	if _, _, err := bankload(t, "-target", srv.URL, "-ca", filepath.Join(t.TempDir(), "missing.pem")); err == nil || !strings.Contains(err.Error(), "make run") {
		t.Errorf("bankload with a missing CA file = %v, want a hint to run `make run`", err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	if _, _, err := bankload(t, "-target", srv.URL, "-ca", notPEM); err == nil {
		t.Error("bankload with a CA file holding no certificate succeeded")
	}
}

// selfSignedCA writes a CA certificate that did not sign the fake's
// certificate (every httptest server shares one, so another fake will not do).
func selfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHelpIsNotAnError(t *testing.T) {
	t.Parallel()
	_, stderr, err := bankload(t, "-h")
	if err != nil || !strings.Contains(stderr, "-i-own-this-target") {
		t.Errorf("bankload -h = %v, usage %q", err, stderr)
	}
}

func TestCancelledRunStillReports(t *testing.T) {
	t.Parallel()
	srv, ca := startFake(t, banktest.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	getenv := func(k string) string {
		return map[string]string{"BANK_ADMIN_EMAIL": banktest.AdminEmail, "BANK_ADMIN_PASSWORD": banktest.AdminPassword}[k]
	}
	// Cancel once the load has started and the server has answered a few
	// of its requests, so that the report is partial rather than empty.
	go func() {
		defer cancel()
		sent := -1 // the server's count of calls when the load started
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if sent < 0 && strings.Contains(stderr.String(), "sending") {
				sent = len(srv.Calls())
			}
			if sent >= 0 && len(srv.Calls()) >= sent+3 {
				return
			}
		}
		t.Errorf("the load did not start within 30 s: %s", stderr.String())
	}()
	err := run(ctx, []string{"bankload", "-target", srv.URL, "-ca", ca, "-scenario", "login", "-users", "1", "-rate", "20", "-duration", "1m"}, getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(stdout.String(), "scenario login") {
		t.Errorf("cancelled run = %v with report %q, want an error and a partial report", err, stdout.String())
	}
}

func TestThrottledNoteNamesTheKnob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		by   map[string]int
		want string
	}{
		{"gateway per-IP auth limit", map[string]int{"auth": 40, "hash-pool-busy": 3}, "BANK_RATE_LIMIT_*"},
		{"gateway transfers limit", map[string]int{"transfers": 9}, `"transfers" limit`},
		{"failed-login throttle", map[string]int{"login-throttled": 12, "auth": 1}, "BANK_LOGIN_MAX_FAILURES"},
		{"hash pool shedding is not a limit to raise", map[string]int{"hash-pool-busy": 70, "auth": 3}, "no setting raises it"},
		{"ties go to the first name", map[string]int{"user": 5, "hash-pool-busy": 5}, "no setting raises it"},
		{"no problem type", map[string]int{"unknown": 5}, "see the problem types"},
		{"nothing recorded", nil, "see the problem types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := throttledNote(tt.by)
			if !strings.Contains(got, tt.want) {
				t.Errorf("throttledNote(%v) = %q, want it to mention %q", tt.by, got, tt.want)
			}
			if strings.Contains(tt.want, "no setting") && strings.Contains(got, "BANK_RATE_LIMIT") {
				t.Errorf("throttledNote(%v) = %q: raising the gateway limits does not help a saturated hash pool", tt.by, got)
			}
		})
	}
}

// TestTransfersWithAnAdminWhoseMFAIsOn: the admin's login completes with
// the one-time code given, and without one the set-up says what to pass.
func TestTransfersWithAnAdminWhoseMFAIsOn(t *testing.T) {
	t.Parallel()
	srv, ca := startFake(t, banktest.Options{AdminOTP: "246810"})
	args := []string{"-target", srv.URL, "-ca", ca, "-scenario", "transfers", "-rate", "20", "-duration", "100ms", "-users", "1", "-json"}
	if _, errOut, err := bankload(t, args...); err == nil || !strings.Contains(err.Error()+errOut, "-admin-otp") {
		t.Errorf("bankload without a code = %v\n%s; want an error naming -admin-otp", err, errOut)
	}
	if _, errOut, err := bankload(t, append(args, "-admin-otp", "246810")...); err != nil {
		t.Fatalf("bankload with the code: %v\n%s", err, errOut)
	}
	var mfa int
	for _, c := range srv.Calls() {
		if c.Route == "POST /v1/auth/login/mfa" && c.Status == 200 {
			mfa++
		}
	}
	if mfa != 1 {
		t.Errorf("server saw %d successful MFA logins, want 1", mfa)
	}
}
