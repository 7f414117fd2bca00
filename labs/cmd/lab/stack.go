package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bastion-bank/bastion/deploy/devstack"
	"github.com/bastion-bank/bastion/labs/internal/labkit"
	"github.com/bastion-bank/bastion/platform/postgres"
)

// mains are the packages of the stack's programs, relative to a source tree.
var mains = map[string]string{
	"auth":         "./services/auth/cmd/auth",
	"accounts":     "./services/accounts/cmd/accounts",
	"transactions": "./services/transactions/cmd/transactions",
	"gateway":      "./gateway/cmd/gateway",
}

// buildPrograms compiles the named programs of the source tree src into
// bin. Without DWARF tables (-s -w) they link in noticeably less time, and
// nobody attaches a debugger to a lab stack.
func buildPrograms(ctx context.Context, src, bin string, programs []string) error {
	if len(programs) == 0 {
		return nil
	}
	args := []string{"build", "-ldflags=-s -w", "-o", bin + string(filepath.Separator)}
	for _, p := range programs {
		args = append(args, mains[p])
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %w\n%s", src, err, out)
	}
	return nil
}

// stackOpts describe one lab stack.
type stackOpts struct {
	lab   string // the lab's number, or "main"
	src   string // the source tree it was built from (exploits read files there)
	bin   string // the directory holding the four programs, already built
	dir   string // the stack's own directory: PKI, secrets, logs
	admin string // a PostgreSQL superuser URL
	db    string // the database of the stack
}

// labEnv is the environment every lab stack runs with: staff MFA off (the
// workshop setting of docs/api.md, so that exploits need no authenticator),
// the gateway trusting X-Forwarded-For from loopback only (each exploit acts
// from a client network of its own), a lower login throttle, and a first
// admin.
func labEnv(adminEmail, adminPassword string) map[string]string {
	return map[string]string{
		"BANK_ADMIN_EMAIL":     adminEmail,
		"BANK_ADMIN_PASSWORD":  adminPassword,
		"BANK_STAFF_MFA":       "off",
		"BANK_TRUSTED_PROXIES": "127.0.0.1/32",
		// Lowered, as docs/api.md lets a workshop do, so that a spray
		// reaches the per-network rule (4 x this many accounts) within
		// the gateway's 20 logins a minute.
		"BANK_LOGIN_MAX_FAILURES": "3",
		// Two batches in flight at once, as two replicas of the ledger
		// would have (the shipped default is one per process): lab 13's
		// race needs two batches touching one account to meet.
		"BANK_LEDGER_COMMITTERS": "2",
	}
}

// running is a started stack.
type running struct {
	stack *devstack.Stack
	state labkit.State
}

// stop stops the stack's processes.
func (r *running) stop() { r.stack.Stop(20 * time.Second) }

// startStack provisions the database, migrates and starts the programs in
// o.bin on free loopback ports, and waits until the gateway is ready.
func startStack(ctx context.Context, o stackOpts) (*running, error) {
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	addrs := devstack.Addrs{Gateway: ports[0], Auth: ports[1], Accounts: ports[2], Transactions: ports[3],
		GatewayMetrics: ports[4], AuthMetrics: ports[5], AccountsMetrics: ports[6], TransactionsMetrics: ports[7]}
	dbURL, err := withDatabase(o.admin, o.db)
	if err != nil {
		return nil, err
	}
	adminEmail, adminPass := "admin@lab"+o.lab+".bastion.local", adminPassword(o.dir)
	cfg := devstack.Config{Dir: o.dir, DatabaseURL: dbURL, Addrs: addrs, Env: labEnv(adminEmail, adminPass)}
	prepared, err := devstack.Prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := devstack.Migrate(ctx, prepared, o.bin); err != nil {
		return nil, err
	}
	logDir, err := cfg.LogDir()
	if err != nil {
		return nil, err
	}
	st, err := devstack.Start(prepared, o.bin, logDir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")})
	if err != nil {
		return nil, err
	}
	readyCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := st.WaitReady(readyCtx, addrs.Gateway, prepared.CAFile); err != nil {
		st.Stop(10 * time.Second)
		return nil, err
	}
	return &running{stack: st, state: labkit.State{
		Lab: o.lab, Root: o.src, PID: os.Getpid(),
		Gateway: addrs.Gateway, Auth: addrs.Auth, Accounts: addrs.Accounts, Transactions: addrs.Transactions,
		Metrics: map[string]string{"gateway": addrs.GatewayMetrics, "auth": addrs.AuthMetrics,
			"accounts": addrs.AccountsMetrics, "transactions": addrs.TransactionsMetrics},
		CAFile: prepared.CAFile, PKIDir: filepath.Join(o.dir, "pki"), LogDir: logDir,
		AdminEmail: adminEmail, AdminPass: adminPass, DatabaseURL: dbURL,
	}}, nil
}

// adminPassword returns the lab admin's password, kept in dir so that a
// restarted lab (lab-check) keeps its admin.
func adminPassword(dir string) string {
	path := filepath.Join(dir, "lab-admin.password")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return string(b)
	}
	p := rand.Text()
	_ = os.MkdirAll(dir, 0o700)
	_ = os.WriteFile(path, []byte(p), 0o600)
	return p
}

// dropDatabase drops a lab's database and its roles.
func dropDatabase(adminURL, db string, out io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.Deprovision(ctx, adminURL, db); err != nil {
		fmt.Fprintf(out, "lab: drop database %s: %v\n", db, err)
	}
}

// withDatabase returns admin with its database replaced by db.
func withDatabase(admin, db string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("the database URL must be a postgres:// URL")
	}
	u.Path = "/" + db
	return u.String(), nil
}

// freePorts returns n distinct free TCP addresses on 127.0.0.1.
func freePorts(n int) ([]string, error) {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port)))
	}
	return out, nil
}
