package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// EnsurePostgres checks that a server answers at cfg.DatabaseURL. If none
// does and initdb and pg_ctl can be found, it starts a throw-away cluster
// under cfg.Dir/pg on the URL's port (as the unprivileged user "nobody" when
// run as root, since PostgreSQL refuses to run as root) and says so.
// Otherwise it explains what to do.
//
// The returned stop shuts down the cluster EnsurePostgres started, keeping
// its data for the next run; it does nothing when a server was already
// answering. The runner calls it last, after the processes have stopped, so
// Ctrl-C leaves nothing running.
func EnsurePostgres(ctx context.Context, cfg *Config, out io.Writer) (stop func(), err error) {
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		return nil, errors.New("BANK_DATABASE_URL is not a valid URL")
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	nothing := func() {}
	if answers(net.JoinHostPort(host, port)) {
		return nothing, nil
	}
	initdb, pgctl := findPGTool("initdb"), findPGTool("pg_ctl")
	if initdb == "" || pgctl == "" || (host != "127.0.0.1" && host != "localhost") {
		return nil, fmt.Errorf("no PostgreSQL answers at %s:%s.\n"+
			"  Start one (on Debian: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start),\n"+
			"  or point BANK_DATABASE_URL at one (e.g. postgres://postgres@127.0.0.1:5432/bank?sslmode=disable)", host, port)
	}
	dir := filepath.Join(cfg.Dir, "pg")
	fmt.Fprintf(out, "No PostgreSQL answers at %s:%s: starting a throw-away cluster in %s\n", host, port, dir)
	cred, err := unprivileged(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		if err := pgCmd(ctx, cred, initdb, "-D", dir, "-U", "postgres", "-A", "trust", "--no-sync"); err != nil {
			return nil, fmt.Errorf("initdb: %w", err)
		}
	}
	if err := startCluster(ctx, cred, pgctl, dir, port); err != nil {
		return nil, err
	}
	stop = func() {
		if err := pgCmd(context.WithoutCancel(ctx), cred, pgctl, "-D", dir, "-m", "fast", "-w", "stop"); err != nil {
			fmt.Fprintf(out, "Could not stop the throw-away PostgreSQL: %v\n", err)
			return
		}
		fmt.Fprintf(out, "Throw-away PostgreSQL stopped (its data stays in %s for the next run).\n", dir)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !answers(net.JoinHostPort("127.0.0.1", port)) {
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("the throw-away PostgreSQL did not start; see " + filepath.Join(dir, "server.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintln(out, "Throw-away PostgreSQL is up; it stops with the stack.")
	return stop, nil
}

// startCluster starts the cluster in dir on port, listening on loopback
// only, and waits until it accepts connections.
func startCluster(ctx context.Context, cred *syscall.Credential, pgctl, dir, port string) error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %s -k %s", port, dir)
	if err := pgCmd(ctx, cred, pgctl, "-D", dir, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %w (see %s)", err, filepath.Join(dir, "server.log"))
	}
	return nil
}

// StopPostgres stops the throw-away cluster EnsurePostgres started for cfg,
// in pg_ctl's shutdown mode ("smart", "fast" or "immediate": the last is a
// crash, recovered from the WAL at the next start), and StartPostgres
// starts it again as EnsurePostgres did. They are for a fault campaign
// (deploy/cmd/chaos) on a cluster of its own, never a shared server.
func StopPostgres(ctx context.Context, cfg Config, mode string) error {
	cred, pgctl, dir, _, err := clusterOf(cfg)
	if err != nil {
		return err
	}
	if err := pgCmd(ctx, cred, pgctl, "-D", dir, "-m", mode, "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w", mode, err)
	}
	return nil
}

// StartPostgres starts the cluster StopPostgres stopped and returns once it
// accepts connections.
func StartPostgres(ctx context.Context, cfg Config) error {
	cred, pgctl, dir, port, err := clusterOf(cfg)
	if err != nil {
		return err
	}
	return startCluster(ctx, cred, pgctl, dir, port)
}

// clusterOf finds the throw-away cluster of cfg and what runs its tools.
func clusterOf(cfg Config) (cred *syscall.Credential, pgctl, dir, port string, err error) {
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil || u.Port() == "" {
		return nil, "", "", "", errors.New("BANK_DATABASE_URL names no port of a throw-away cluster")
	}
	dir = filepath.Join(cfg.Dir, "pg")
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		return nil, "", "", "", fmt.Errorf("no throw-away cluster in %s", dir)
	}
	if pgctl = findPGTool("pg_ctl"); pgctl == "" {
		return nil, "", "", "", errors.New("pg_ctl not found")
	}
	cred, err = unprivileged(dir)
	return cred, pgctl, dir, u.Port(), err
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// findPGTool looks on PATH, then in Debian's versioned directories.
func findPGTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	return ""
}

// unprivileged creates dir and, when running as root, hands it to "nobody"
// and returns credentials to run PostgreSQL's tools as that user.
func unprivileged(dir string) (*syscall.Credential, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, errors.New("running as root and there is no user 'nobody' to run PostgreSQL as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	// .dev itself is 0700; nobody needs to traverse it (and only it) to reach pg/.
	if st, err := os.Stat(filepath.Dir(dir)); err == nil {
		_ = os.Chmod(filepath.Dir(dir), st.Mode().Perm()|0o001)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if err := pgCmd(context.Background(), cred, "/usr/bin/test", "-w", dir); err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root, and the user 'nobody' cannot reach %s "+
			"(a parent directory is closed to other users): start a PostgreSQL server yourself instead", dir)
	}
	return cred, nil
}

func pgCmd(ctx context.Context, cred *syscall.Credential, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}
