package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bastion-bank/bastion/deploy/devstack"
)

// exitWatch receives every exit of the stack's processes, as devstack asks
// of a caller that ends processes on purpose: an exit the lab asked for is
// handed to it, any other is kept, and fails the campaign.
type exitWatch struct {
	mu         sync.Mutex
	expected   map[string]chan struct{}
	unexpected []devstack.Exit
	settled    bool // the campaign is over: what ends now is the stack being stopped
	done       chan struct{}
	stopped    chan struct{}
}

func watchExits(exits <-chan devstack.Exit) *exitWatch {
	w := &exitWatch{expected: map[string]chan struct{}{}, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(w.stopped)
		for {
			select {
			case e := <-exits:
				w.mu.Lock()
				if ch, ok := w.expected[e.Name]; ok {
					delete(w.expected, e.Name)
					close(ch)
				} else if !w.settled {
					w.unexpected = append(w.unexpected, e)
				}
				w.mu.Unlock()
			case <-w.done:
				return
			}
		}
	}()
	return w
}

// expect announces that name is about to be ended on purpose; the channel
// closes when it has.
func (w *exitWatch) expect(name string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	w.expected[name] = ch
	return ch
}

// Unexpected returns the exits nobody asked for, and stops counting: what
// ends from now on is the stack being stopped.
func (w *exitWatch) Unexpected() []devstack.Exit {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.settled = true
	return w.unexpected
}

// close stops receiving; call it after the stack has stopped.
func (w *exitWatch) close() {
	close(w.done)
	<-w.stopped
}

// redisServer is a Redis of the campaign's own, on loopback, keeping
// nothing on disk, so that it can be killed without touching a shared one.
type redisServer struct {
	addr, dir string
	mu        sync.Mutex
	cmd       *exec.Cmd
	ended     chan struct{}
}

func startRedis(ctx context.Context, dir, addr string) (*redisServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &redisServer{addr: addr, dir: dir}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	if _, err := waitListening(ctx, addr); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs redis-server again on the same address.
func (r *redisServer) start(ctx context.Context) error {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server is not installed: the campaign needs one of its own to take away from the gateway (on Debian: apt-get install redis-server)")
	}
	host, port, _ := strings.Cut(r.addr, ":")
	cmd := exec.Command(path, "--bind", host, "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	ended := make(chan struct{})
	go func() { _ = cmd.Wait(); close(ended) }()
	r.mu.Lock()
	r.cmd, r.ended = cmd, ended
	r.mu.Unlock()
	return nil
}

// stop sends sig and waits for the server to exit.
func (r *redisServer) stop(sig syscall.Signal) error {
	r.mu.Lock()
	cmd, ended := r.cmd, r.ended
	r.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-ended:
		return nil
	case <-time.After(exitTimeout):
		_ = cmd.Process.Kill()
		return fmt.Errorf("redis-server did not exit within %s of %s", exitTimeout, sig)
	}
}

// goBuild builds the packages into bin, from the repository at root.
func goBuild(ctx context.Context, root, bin string, pkgs ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bin + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", pkgs, err, out)
	}
	return nil
}

// verifiedRows reads "schema: ok, N rows" from the audit verifier's output.
var verifiedRows = regexp.MustCompile(`(?m)^(\w+): ok, (\d+) rows`)

// verifyChains runs the read-only audit verifier (deploy/cmd/auditverify)
// as the database's audit login over the three schemas, and returns its
// verdict in a few words: "ok" and the rows verified in auth, accounts and
// ledger, or the first problem it reported.
func (l *lab) verifyChains(ctx context.Context) (string, bool) {
	cmd := exec.CommandContext(ctx, filepath.Join(l.bin, "auditverify"), "env:CHAOS_AUDIT_URL", "auth", "accounts", "ledger")
	cmd.Env = []string{"CHAOS_AUDIT_URL=" + l.prepared.AuditURL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		first := strings.TrimSpace(string(out))
		for _, line := range strings.Split(first, "\n") {
			if strings.Contains(line, "BROKEN") || strings.Contains(line, "PENDING") || strings.Contains(line, "cannot") {
				first = line
				break
			}
		}
		return "FAILED: " + first, false
	}
	var counts []string
	for _, m := range verifiedRows.FindAllStringSubmatch(string(out), -1) {
		counts = append(counts, m[2])
	}
	return "ok " + strings.Join(counts, "/"), true
}
