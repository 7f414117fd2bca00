package main

import (
	"bufio"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
	"github.com/bastion-bank/bastion/platform/benchcpu"
)

// The load generator's own cost: the request loop of bench-e2e (its
// generators, load.Run, the HTTP/2 client it builds, the recorder) against
// a server that answers like the gateway. The server runs in a child
// process (this test binary started again with gatewayLikeEnv set), so the
// process's CPU time and the allocations counted are the generator's alone.
// cpu-ns/op is getrusage(RUSAGE_SELF) user + system time over the timed
// requests.
//
//	go test -run '^$' -bench BenchmarkLoadgen -benchmem -benchtime 3000x -count 6 -cpu 2 ./loadtest/cmd/benche2e/
const gatewayLikeEnv = "BENCHE2E_GATEWAY_LIKE_SERVER"

// loadgenRate is the arrival rate of the benchmark: about bench-e2e's
// saturation rate for transfers on the 2-core machine.
const loadgenRate = 2000

func TestMain(m *testing.M) {
	if dir := os.Getenv(gatewayLikeEnv); dir != "" {
		serveGatewayLike(dir)
		return
	}
	if addr := os.Getenv(echoEnv); addr != "" {
		echo(addr)
		return
	}
	os.Exit(m.Run())
}

// The shapes of the gateway's answers (docs/api.md), with its security headers.
const (
	transferAnswer = `{"transfer":{"id":"0b5c2f7e-6a0d-4f1e-9a43-3c1f5d8e2b71","kind":"TRANSFER",` +
		`"fromAccountId":"5f0e8a52-1c3b-4d7e-8f6a-9b2c4d1e3f50","toAccountId":"8d2a6c14-7e9f-4b3a-a5c1-2e4f6d8b0a93",` +
		`"amount":"17","currency":"EUR","description":"bench-e2e","status":"COMPLETED",` +
		`"initiatedBy":"3e7b9d21-4a6c-48f0-b2d5-7c9e1f3a5b60","createdAt":"2026-12-07T15:55:42.123456Z"}}`
	accountAnswer = `{"account":{"id":"5f0e8a52-1c3b-4d7e-8f6a-9b2c4d1e3f50","ownerId":"3e7b9d21-4a6c-48f0-b2d5-7c9e1f3a5b60",` +
		`"currency":"EUR","displayName":"Load 0","status":"ACTIVE","balance":{"currency":"EUR","amount":"999982"},` +
		`"availableBalance":{"currency":"EUR","amount":"999982"},"createdAt":"2026-12-07T15:55:40.654321Z"}}`
)

// serveGatewayLike serves HTTP/2 over TLS, writes its CA to dir/ca.pem and
// its URL to stdout, and stops when stdin closes.
func serveGatewayLike(dir string) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
			"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
			"Cross-Origin-Resource-Policy": "same-origin", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
			"Content-Type": "application/json"} {
			h[k] = []string{v}
		}
		if r.Method == http.MethodPost {
			_, _ = io.WriteString(w, transferAnswer)
			return
		}
		_, _ = io.WriteString(w, accountAnswer)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(srv.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startGatewayLike starts the child server and returns its URL and CA file.
func startGatewayLike(b *testing.B) (*url.URL, string) {
	b.Helper()
	dir := b.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), gatewayLikeEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("gateway-like server: %v", err)
	}
	u, err := url.Parse(strings.TrimSpace(line))
	if err != nil {
		b.Fatal(err)
	}
	return u, filepath.Join(dir, "ca.pem")
}

// benchUsers are users as bench-e2e's set-up makes them: uuid ids and
// tokens the length of the gateway's EdDSA access tokens.
func benchUsers(n int) []scenario.User {
	users := make([]scenario.User, n)
	for i := range users {
		users[i] = scenario.User{
			ID:       fmt.Sprintf("3e7b9d21-4a6c-48f0-b2d5-%012d", i),
			Token:    "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0." + strings.Repeat("eyJzdWIiOiIz", 30) + fmt.Sprintf(".sig%083d", i),
			Accounts: []string{fmt.Sprintf("5f0e8a52-1c3b-4d7e-8f6a-%012d", i), fmt.Sprintf("8d2a6c14-7e9f-4b3a-a5c1-%012d", i)},
		}
	}
	return users
}

func benchmarkLoadgen(b *testing.B, gen load.Generator) {
	base, caFile := startGatewayLike(b)
	client, err := newClient(caFile, 512)
	if err != nil {
		b.Fatal(err)
	}
	defer client.CloseIdleConnections()
	run := func(n int) report.Summary {
		period := time.Second / loadgenRate
		o := load.Options{Rate: loadgenRate, Duration: time.Duration(n)*period + period/2, MaxInFlight: 512}
		rec := report.NewRecorder()
		elapsed, err := load.Run(b.Context(), client, base, gen, o, rec)
		if err != nil {
			b.Fatal(err)
		}
		s := rec.Summarize(elapsed)
		if s.Total != n || s.Dropped != 0 || s.Unexpected != 0 || s.TransportErrors != 0 {
			b.Fatalf("%d requests: report %+v, want every one a 2xx", n, s)
		}
		return s
	}
	run(200) // connections up, as after bench-e2e's set-up
	b.ResetTimer()
	before := benchcpu.Time(b)
	run(b.N)
	benchcpu.Report(b, before)
	b.StopTimer()
}

func BenchmarkLoadgenTransfers(b *testing.B) {
	benchmarkLoadgen(b, transfersOnly{prefix: "bench-loadgen-", users: benchUsers(50)})
}

func BenchmarkLoadgenReads(b *testing.B) {
	benchmarkLoadgen(b, readsOnly{users: benchUsers(50)})
}
