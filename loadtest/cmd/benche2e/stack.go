package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/deploy/devstack"
	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
	"github.com/bastion-bank/bastion/loadtest/internal/target"
)

const (
	readyTimeout = 2 * time.Minute
	setupTimeout = 5 * time.Minute
	stopTimeout  = 20 * time.Second
)

// lab is everything the tool starts: a temporary directory, a throw-away
// PostgreSQL cluster on a free port, and one or two stacks on that cluster,
// each in a database of its own.
type lab struct {
	dir    string
	pgURL  string // superuser URL of the cluster's maintenance database
	pgPort string
	pgData string
	stopPG func()
	stacks []*stack
	out    io.Writer
}

// stack is one running set of the four processes and the users set up on it.
type stack struct {
	label    string
	bin      string
	cfg      devstack.Config
	prepared *devstack.Prepared
	running  *devstack.Stack
	pids     map[string]int
	client   *http.Client
	base     *url.URL
	runID    string
	users    []scenario.User
	stopped  bool
}

// startLab builds what it must and starts everything s asks for.
func startLab(ctx context.Context, s settings, root string, out io.Writer) (*lab, error) {
	dir, err := os.MkdirTemp("", "bastion-bench-")
	if err != nil {
		return nil, err
	}
	l := &lab{dir: dir, out: out, stopPG: func() {}}
	if err := l.start(ctx, s, root); err != nil {
		l.close(true)
		return nil, err
	}
	return l, nil
}

func (l *lab) start(ctx context.Context, s settings, root string) error {
	// PostgreSQL refuses to run as root, so devstack runs it as "nobody",
	// which must be able to traverse dir to reach its data directory.
	if err := os.Chmod(l.dir, 0o711); err != nil {
		return err
	}
	labels := s.stackLabels()
	ports, err := freePorts(1 + 8*len(labels))
	if err != nil {
		return err
	}
	_, l.pgPort, _ = net.SplitHostPort(ports[0])
	l.pgURL = "postgres://postgres@" + ports[0] + "/postgres?sslmode=disable"
	bins := map[string]string{"after": s.Bin, "before": s.BaselineBin}
	for _, label := range labels {
		if bins[label] != "" {
			continue
		}
		bins[label] = filepath.Join(l.dir, "bin-"+label)
		src := root
		if label == "before" {
			src = filepath.Join(l.dir, "src-before")
			fmt.Fprintf(l.out, "Extracting %s into %s (git archive) …\n", s.BaselineRev, src)
			if err := extractRev(ctx, root, s.BaselineRev, src); err != nil {
				return err
			}
		}
		fmt.Fprintf(l.out, "Building the %q stack from %s into %s …\n", label, src, bins[label])
		if err := devstack.Build(ctx, src, bins[label], false); err != nil {
			return err
		}
	}
	for i, label := range labels {
		p := ports[1+8*i:]
		st := &stack{label: label, bin: bins[label], runID: label + "-" + rand.Text()[:6]}
		st.cfg = devstack.Config{
			Dir:         filepath.Join(l.dir, ".dev-"+label),
			DatabaseURL: "postgres://postgres@" + ports[0] + "/bench_" + label + "?sslmode=disable",
			Addrs: devstack.Addrs{Gateway: p[0], Auth: p[1], Accounts: p[2], Transactions: p[3],
				GatewayMetrics: p[4], AuthMetrics: p[5], AccountsMetrics: p[6], TransactionsMetrics: p[7]},
		}
		if i == 0 {
			if l.stopPG, err = devstack.EnsurePostgres(ctx, &st.cfg, l.out); err != nil {
				return err
			}
			l.pgData = filepath.Join(st.cfg.Dir, "pg")
		}
		l.stacks = append(l.stacks, st)
		if err := st.start(ctx, s, l.out); err != nil {
			return fmt.Errorf("stack %q: %w", label, err)
		}
	}
	return nil
}

// extractRev writes the tree of rev into dir without touching the
// repository's work tree, index or worktree list.
func extractRev(ctx context.Context, root, rev, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	var archiveErr, untarErr bytes.Buffer
	archive.Stderr, untar.Stdin, untar.Stderr = &archiveErr, pipe, &untarErr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return fmt.Errorf("git archive %s: %w %s", rev, err, archiveErr.Bytes())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("tar -x: %w %s", err, untarErr.Bytes())
	}
	return nil
}

// start prepares the stack's database and processes, starts them, waits
// for the gateway's /readyz and sets up the users of the measurement.
func (st *stack) start(ctx context.Context, s settings, out io.Writer) error {
	admin := [2]string{"admin@bench.bastion.local", rand.Text()}
	st.cfg.Env = stackEnv(admin, s.ProfileDir != "" && st.label == "after")
	var extra []string
	for k, v := range s.Set {
		if strings.HasPrefix(k, "BANK_") {
			st.cfg.Env[k] = v
		} else {
			extra = append(extra, k+"="+v)
		}
	}
	var err error
	if st.prepared, err = devstack.Prepare(ctx, st.cfg); err != nil {
		return err
	}
	if err := devstack.Migrate(ctx, st.prepared, st.bin); err != nil {
		return err
	}
	logDir, err := st.cfg.LogDir()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Starting the %q stack: gateway https://%s, metrics %s/%s/%s/%s, logs in %s\n", st.label, st.cfg.Addrs.Gateway,
		st.cfg.Addrs.GatewayMetrics, st.cfg.Addrs.AuthMetrics, st.cfg.Addrs.AccountsMetrics, st.cfg.Addrs.TransactionsMetrics, logDir)
	if st.running, err = devstack.Start(st.prepared, st.bin, logDir, append(baseEnv(), extra...)); err != nil {
		return err
	}
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := st.running.WaitReady(readyCtx, st.cfg.Addrs.Gateway, st.prepared.CAFile); err != nil {
		return err
	}
	st.pids = map[string]int{}
	for _, name := range devstack.Processes {
		if st.pids[name], err = findByExe(filepath.Join(st.bin, name)); err != nil {
			return err
		}
	}
	if st.client, err = newClient(st.prepared.CAFile, s.MaxInFlight); err != nil {
		return err
	}
	st.base = &url.URL{Scheme: "https", Host: st.cfg.Addrs.Gateway}
	setupCtx, cancelSetup := context.WithTimeout(ctx, setupTimeout)
	defer cancelSetup()
	gen, err := scenario.SetupTransfers(setupCtx, scenario.Env{
		Client: &bank.Client{HTTP: st.client, Base: st.base, Retries: 5, MaxWait: 30 * time.Second},
		RunID:  st.runID, Users: s.Users, AdminEmail: admin[0], AdminPassword: admin[1], Log: out,
	})
	if err != nil {
		return fmt.Errorf("set-up: %w", err)
	}
	st.users = gen.(*scenario.Transfers).Users
	return nil
}

// stackEnv is every process's extra environment: the first admin, who
// makes the seed deposits with a password alone (staff MFA off: the
// measurement is of the transfer path, not of the second factor), edge
// limits far above what the stream sends (the limiter is not what is
// measured), tokens that outlive the measurement, and, if asked, the
// profiling endpoints. Everything else is as shipped, the access log at
// level info included: its cost is part of the path.
func stackEnv(admin [2]string, pprof bool) map[string]string {
	const high = "1000000"
	env := map[string]string{
		"BANK_ADMIN_EMAIL":            admin[0],
		"BANK_ADMIN_PASSWORD":         admin[1],
		"BANK_STAFF_MFA":              "off",
		"BANK_RATE_LIMIT_AUTH":        high,
		"BANK_RATE_LIMIT_USER":        high,
		"BANK_RATE_LIMIT_TRANSFERS":   high,
		"BANK_RATE_LIMIT_FAILED_AUTH": high,
		"BANK_RATE_LIMIT_PUBLIC":      high,
		"BANK_ACCESS_TOKEN_TTL":       "1h",
	}
	if pprof {
		env["BANK_PPROF"] = "1"
	}
	return env
}

// baseEnv is what the processes inherit from the tool's own environment:
// enough to run, and no BANK_* or OTEL_* setting of the caller's, so the
// stack measured is the one described here.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "GOMAXPROCS", "GODEBUG", "GOGC", "GOMEMLIMIT"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// stop ends the stack's processes.
func (st *stack) stop() {
	if st.running != nil && !st.stopped {
		st.running.Stop(stopTimeout)
		st.stopped = true
	}
	if st.client != nil {
		st.client.CloseIdleConnections()
	}
}

// close stops everything the lab started and, unless keep, removes its directory.
func (l *lab) close(keep bool) {
	for _, st := range l.stacks {
		st.stop()
	}
	l.stopPG()
	if keep {
		fmt.Fprintln(l.out, "Kept the measurement's directory (logs, database cluster):", l.dir)
		return
	}
	if err := os.RemoveAll(l.dir); err == nil {
		fmt.Fprintln(l.out, "Removed the measurement's directory, its cluster included:", l.dir)
	}
}

// newClient trusts only the stack's CA, dials only loopback, uses no proxy
// and follows no redirect, like bankload's.
func newClient(caFile string, inFlight int) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(caFile + " holds no PEM certificate")
	}
	// Each simulated user gets connections of their own, as a real
	// client has (target.PerCaller says what one shared connection would
	// cost the gateway instead).
	tr := target.NewPerCaller(pool, false, inFlight)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

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
