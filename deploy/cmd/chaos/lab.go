package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bastion-bank/bastion/deploy/chaos"
	"github.com/bastion-bank/bastion/deploy/devstack"
)

// Timeouts of the lab's own steps: a process that does not exit this long
// after its signal, or does not listen this long after its start, fails
// the campaign rather than hanging it.
const (
	exitTimeout   = 60 * time.Second
	listenTimeout = 60 * time.Second
	readyTimeout  = 120 * time.Second
)

// lab is the campaign's own stack: a temporary directory holding the dev
// PKI, keys, logs and a throw-away PostgreSQL cluster, a Redis of its own,
// and the four processes, every one on a free port.
type lab struct {
	dir      string
	cfg      devstack.Config
	prepared *devstack.Prepared
	stack    *devstack.Stack
	bin      string
	redis    *redisServer
	stopPG   func()
	exits    *exitWatch
	admin    [2]string // email, password
	out      io.Writer
}

// startLab builds and starts the stack from the repository at root.
func startLab(ctx context.Context, root string, baseEnv []string, out io.Writer) (*lab, error) {
	dir, err := os.MkdirTemp("", "bastion-chaos-")
	if err != nil {
		return nil, err
	}
	l := &lab{dir: dir, bin: filepath.Join(dir, "bin"), out: out, stopPG: func() {}}
	if err := l.start(ctx, root, baseEnv); err != nil {
		l.close(true)
		return nil, err
	}
	return l, nil
}

// start fills the lab in and starts everything.
func (l *lab) start(ctx context.Context, root string, baseEnv []string) error {
	dir, out := l.dir, l.out
	// PostgreSQL refuses to run as root, so devstack runs it as "nobody",
	// which must be able to reach dir/.dev/pg (traverse, not read).
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	ports, err := freePorts(10)
	if err != nil {
		return err
	}
	if l.redis, err = startRedis(ctx, filepath.Join(dir, "redis"), ports[9]); err != nil {
		return err
	}
	l.admin = [2]string{"admin@chaos.bastion.local", rand.Text()}
	l.cfg = devstack.Config{
		Dir:         filepath.Join(dir, ".dev"),
		DatabaseURL: "postgres://postgres@" + ports[8] + "/bank?sslmode=disable",
		Addrs: devstack.Addrs{Gateway: ports[0], Auth: ports[1], Accounts: ports[2], Transactions: ports[3],
			GatewayMetrics: ports[4], AuthMetrics: ports[5], AccountsMetrics: ports[6], TransactionsMetrics: ports[7]},
		Env: campaignEnv(l.admin, l.redis.addr),
	}
	if l.stopPG, err = devstack.EnsurePostgres(ctx, &l.cfg, out); err != nil {
		return err
	}
	if l.prepared, err = devstack.Prepare(ctx, l.cfg); err != nil {
		return err
	}
	fmt.Fprintln(out, "Building the stack and the audit verifier …")
	if err := devstack.Build(ctx, root, l.bin, false); err != nil {
		return err
	}
	if err := goBuild(ctx, root, l.bin, "./deploy/cmd/auditverify"); err != nil {
		return err
	}
	if err := devstack.Migrate(ctx, l.prepared, l.bin); err != nil {
		return err
	}
	logDir, err := l.cfg.LogDir()
	if err != nil {
		return err
	}
	if l.stack, err = devstack.Start(l.prepared, l.bin, logDir, baseEnv); err != nil {
		return err
	}
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := l.stack.WaitReady(readyCtx, l.cfg.Addrs.Gateway, l.prepared.CAFile); err != nil {
		return err
	}
	l.exits = watchExits(l.stack.Exits())
	return nil
}

// campaignEnv is every process's extra environment: the first admin, who
// makes the deposits with a password alone (staff MFA off, as in a
// workshop: the campaign tests faults, not the second factor), the edge
// limits raised far above what the stream sends (nor the limiter), tokens
// that outlive the campaign, and the gateway's Redis.
func campaignEnv(admin [2]string, redisAddr string) map[string]string {
	const high = "1000000"
	return map[string]string{
		"BANK_ADMIN_EMAIL":            admin[0],
		"BANK_ADMIN_PASSWORD":         admin[1],
		"BANK_STAFF_MFA":              "off",
		"BANK_RATE_LIMIT_AUTH":        high,
		"BANK_RATE_LIMIT_USER":        high,
		"BANK_RATE_LIMIT_TRANSFERS":   high,
		"BANK_RATE_LIMIT_FAILED_AUTH": high,
		"BANK_RATE_LIMIT_PUBLIC":      high,
		"BANK_ACCESS_TOKEN_TTL":       "1h",
		"BANK_REDIS_URL":              "redis://" + redisAddr + "/0",
	}
}

// Break makes f happen and returns once it has: the process has exited,
// the database has stopped.
func (l *lab) Break(ctx context.Context, f chaos.Fault) error {
	sig := syscall.SIGKILL
	if f.Action == chaos.Term {
		sig = syscall.SIGTERM
	}
	switch f.Target {
	case chaos.Postgres:
		return devstack.StopPostgres(ctx, l.cfg, map[chaos.Action]string{chaos.StopFast: "fast", chaos.StopImmediate: "immediate"}[f.Action])
	case chaos.Redis:
		return l.redis.stop(sig)
	}
	exited := l.exits.expect(f.Target)
	if err := l.stack.Signal(f.Target, sig); err != nil {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(exitTimeout):
		return fmt.Errorf("%s did not exit within %s of %s", f.Target, exitTimeout, sig)
	}
}

// Restore undoes f and returns when what it broke listens again.
func (l *lab) Restore(ctx context.Context, f chaos.Fault) (time.Time, error) {
	switch f.Target {
	case chaos.Postgres:
		if err := devstack.StartPostgres(ctx, l.cfg); err != nil {
			return time.Time{}, err
		}
		return time.Now(), nil // pg_ctl start -w returns once it accepts connections
	case chaos.Redis:
		if err := l.redis.start(ctx); err != nil {
			return time.Time{}, err
		}
		return waitListening(ctx, l.redis.addr)
	}
	if err := l.stack.Restart(f.Target); err != nil {
		return time.Time{}, err
	}
	return waitListening(ctx, l.addr(f.Target))
}

// addr is where a process of the stack listens.
func (l *lab) addr(process string) string {
	a := l.cfg.Addrs
	return map[string]string{"gateway": a.Gateway, "auth": a.Auth, "accounts": a.Accounts, "transactions": a.Transactions}[process]
}

// close stops everything the lab started and, unless keep, removes its
// directory.
func (l *lab) close(keep bool) {
	if l.stack != nil {
		l.stack.Stop(20 * time.Second)
	}
	if l.exits != nil {
		l.exits.close()
	}
	if l.redis != nil {
		_ = l.redis.stop(syscall.SIGTERM)
	}
	l.stopPG()
	if keep {
		fmt.Fprintln(l.out, "The campaign's stack (logs, database cluster) is kept in", l.dir)
		return
	}
	if err := os.RemoveAll(l.dir); err == nil {
		fmt.Fprintln(l.out, "Removed the campaign's stack, its cluster included:", l.dir)
	}
}

// waitListening polls addr until it accepts a TCP connection and returns
// when it first did.
func waitListening(ctx context.Context, addr string) (time.Time, error) {
	deadline := time.Now().Add(listenTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("nothing listens at %s %s after the restart", addr, listenTimeout)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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
