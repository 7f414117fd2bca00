// Package e2e drives the whole bank through its public REST API over HTTPS,
// with a plain net/http client, against the real binaries started the way
// `make run` starts them: separate processes, mTLS between them, a fresh
// PostgreSQL database, and an in-test OTLP receiver collecting their spans.
package e2e

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/deploy/devstack"
	"github.com/bastion-bank/bastion/platform/postgres"
)

// bank is the stack under test, shared by every test of the package.
var bank *stack

type stack struct {
	base     string // https://host:port of the gateway
	client   *http.Client
	dir      string // the stack's .dev directory
	metrics  map[string]string
	services map[string]string // gRPC address of each service
	spans    *receiver
	admin    [2]string // email, password
	adminOTP string    // the bootstrap admin's TOTP secret (base32), which devstack enrolled
	ipSerial chan int
	dbURL    string // the bank database, as a superuser
	auditURL string // the bank database, as the audit reader, which may only read the audit tables
	addrs    devstack.Addrs
	caFile   string
	logDir   string
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if noTests() {
		// `make bench` runs every package with -run '^$': nothing here would
		// run, so start nothing (and check no audit chain a stack never wrote).
		return m.Run()
	}
	ctx := context.Background()
	s, cleanup, err := start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start the stack:", err)
		cleanup()
		return 1
	}
	bank = s
	code := m.Run()
	if err := auditChainsWhole(ctx, s.auditURL); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		failed, code = true, 1
	}
	if err := telemetryHoldsNoSecret(s); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		failed, code = true, 1
	}
	cleanup()
	return code
}

// noTests reports whether -test.run matches no test by construction: the
// pattern benchmarks and `go test -list` runs use.
func noTests() bool {
	f := flag.Lookup("test.run")
	return f != nil && f.Value.String() == "^$"
}

func start(ctx context.Context) (*stack, func(), error) {
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	dir, err := os.MkdirTemp("", "bastion-e2e-")
	if err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })

	adminURL := os.Getenv("BANK_TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db := "bastion_e2e_" + strings.ToLower(rand.Text()[:10])
	cleanups = append(cleanups, func() { deprovision(adminURL, db) })

	spans, err := startReceiver()
	if err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, spans.stop)

	ports, err := freePorts(8)
	if err != nil {
		return nil, cleanup, err
	}
	addrs := devstack.Addrs{
		Gateway: ports[0], Auth: ports[1], Accounts: ports[2], Transactions: ports[3],
		GatewayMetrics: ports[4], AuthMetrics: ports[5], AccountsMetrics: ports[6], TransactionsMetrics: ports[7],
	}
	admin := [2]string{"admin@e2e.bastion.local", rand.Text()}
	cfg := devstack.Config{
		Dir:         filepath.Join(dir, ".dev"),
		DatabaseURL: withDatabase(adminURL, db),
		Addrs:       addrs,
		AdminTOTP:   true,
		Env: map[string]string{
			"BANK_ADMIN_EMAIL":            admin[0],
			"BANK_ADMIN_PASSWORD":         admin[1],
			"BANK_TRUSTED_PROXIES":        "127.0.0.1/32", // each test acts from its own client IP via X-Forwarded-For
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + spans.addr,
			"OTEL_BSP_SCHEDULE_DELAY":     "100",
			"BANK_LOG_LEVEL":              "debug",
		},
	}
	prepared, err := devstack.Prepare(ctx, cfg)
	if err != nil {
		return nil, cleanup, err
	}
	bin := filepath.Join(dir, "bin")
	if err := devstack.Build(ctx, "../..", bin, raceEnabled); err != nil {
		return nil, cleanup, err
	}
	if err := devstack.Migrate(ctx, prepared, bin); err != nil {
		return nil, cleanup, err
	}
	st, err := devstack.Start(prepared, bin, filepath.Join(dir, "logs"), []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")})
	if err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, func() { st.Stop(20 * time.Second) })
	readyCtx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := st.WaitReady(readyCtx, addrs.Gateway, prepared.CAFile); err != nil {
		dumpLogs(filepath.Join(dir, "logs"))
		return nil, cleanup, err
	}
	cleanups = append(cleanups, func() {
		if failed {
			dumpLogs(filepath.Join(dir, "logs"))
		}
	})
	client, err := devstack.HTTPClient(prepared.CAFile)
	if err != nil {
		return nil, cleanup, err
	}
	adminOTP, err := os.ReadFile(filepath.Join(cfg.Dir, "secrets", devstack.AdminTOTPFile))
	if err != nil {
		return nil, cleanup, err
	}
	serial := make(chan int, 1)
	serial <- 1
	return &stack{
		base:   "https://" + addrs.Gateway,
		client: client,
		dir:    cfg.Dir,
		metrics: map[string]string{
			"gateway": "http://" + addrs.GatewayMetrics + "/metrics", "auth": "http://" + addrs.AuthMetrics + "/metrics",
			"accounts": "http://" + addrs.AccountsMetrics + "/metrics", "transactions": "http://" + addrs.TransactionsMetrics + "/metrics",
		},
		services: map[string]string{"auth": addrs.Auth, "accounts": addrs.Accounts, "transactions": addrs.Transactions},
		spans:    spans,
		admin:    admin,
		adminOTP: strings.TrimSpace(string(adminOTP)),
		ipSerial: serial,
		dbURL:    cfg.DatabaseURL,
		auditURL: prepared.AuditURL,
		addrs:    addrs,
		caFile:   prepared.CAFile,
		logDir:   filepath.Join(dir, "logs"),
	}, cleanup, nil
}

// failed is set by tests that fail, so the process logs are shown.
var failed bool

func dumpLogs(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(os.Stderr, "==== %s (last %d lines)\n%s\n", e.Name(), len(lines), strings.Join(lines, "\n"))
	}
}

func freePorts(n int) ([]string, error) {
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

func withDatabase(adminURL, db string) string {
	u := adminURL
	if i := strings.Index(u, "?"); i >= 0 {
		q := u[i:]
		u = u[:i]
		return u[:strings.LastIndex(u, "/")+1] + db + q
	}
	return u[:strings.LastIndex(u, "/")+1] + db
}

// deprovision drops the stack's database and its roles, which, unlike the
// database, belong to the whole server.
func deprovision(adminURL, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.Deprovision(ctx, adminURL, db); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: drop the database and its roles:", err)
	}
}

// nextIP hands each caller a distinct documentation-range client address
// (RFC 5737), sent as X-Forwarded-For through the trusted local proxy hop,
// so that per-IP limits of one test do not touch another.
func (s *stack) nextIP() string {
	n := <-s.ipSerial
	s.ipSerial <- n + 1
	return fmt.Sprintf("198.51.%d.%d", n/250, n%250+1)
}
