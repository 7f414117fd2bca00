package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// mains are the package paths of the programs, relative to the repository root.
var mains = map[string]string{
	"auth":         "./services/auth/cmd/auth",
	"accounts":     "./services/accounts/cmd/accounts",
	"transactions": "./services/transactions/cmd/transactions",
	"gateway":      "./gateway/cmd/gateway",
}

// Build compiles every program of the stack into binDir.
func Build(ctx context.Context, repoRoot, binDir string, race bool) error {
	args := []string{"build", "-o", binDir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	for _, p := range Processes {
		args = append(args, mains[p])
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// Migrate runs the migrate command of each service built into binDir, with
// the schema owner's database URL Prepare made for it, in start order. The
// servers run as their runtime roles, which may not change a schema, so
// this comes first; the owners' passwords go to these commands only. A
// failure carries the command's output.
func Migrate(ctx context.Context, p *Prepared, binDir string) error {
	for _, name := range Processes {
		env, ok := p.Migrate[name]
		if !ok {
			continue
		}
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, name), "migrate")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s migrate: %w\n%s", name, err, out)
		}
	}
	return nil
}

// Exit reports a process that ended.
type Exit struct {
	Name string
	Err  error
}

// Stack is the running set of processes.
type Stack struct {
	LogDir string
	mu     sync.Mutex
	cmds   map[string]*exec.Cmd
	ended  map[string]chan struct{} // closed when the process in cmds has exited
	exits  chan Exit
	wg     sync.WaitGroup
	launch func(name string, logFlags int) (*exec.Cmd, chan struct{}, error) // what Start and Restart run
}

// Start launches every process with its environment; each one's output goes
// to LogDir/<name>.log. The processes get their own process group (so a
// terminal's Ctrl-C reaches only the runner, which stops them in order) and
// are killed if the runner dies.
func Start(p *Prepared, binDir, logDir string, baseEnv []string) (*Stack, error) {
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	s := &Stack{LogDir: logDir, cmds: map[string]*exec.Cmd{}, ended: map[string]chan struct{}{}, exits: make(chan Exit, len(Processes))}
	s.launch = func(name string, logFlags int) (*exec.Cmd, chan struct{}, error) {
		logf, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|logFlags, 0o600)
		if err != nil {
			return nil, nil, err
		}
		cmd := exec.Command(filepath.Join(binDir, name))
		cmd.Env = append(append([]string{}, baseEnv...), p.Env[name]...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, nil, fmt.Errorf("start %s: %w", name, err)
		}
		ended := make(chan struct{})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := cmd.Wait()
			logf.Close()
			close(ended)
			s.exits <- Exit{Name: name, Err: err}
		}()
		return cmd, ended, nil
	}
	for _, name := range Processes {
		cmd, ended, err := s.launch(name, os.O_TRUNC)
		if err != nil {
			s.Stop(time.Second)
			return nil, err
		}
		s.mu.Lock()
		s.cmds[name], s.ended[name] = cmd, ended
		s.mu.Unlock()
	}
	return s, nil
}

// Signal sends sig to the named process. Its end is reported on Exits like
// any other, so a caller that ends processes on purpose (the fault campaign,
// deploy/cmd/chaos) must keep receiving from Exits until Stop returns.
func (s *Stack) Signal(name string, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cmds[name]
	if c == nil || c.Process == nil {
		return fmt.Errorf("no process %q", name)
	}
	return c.Process.Signal(sig)
}

// Restart starts the named process again, after it has ended, with the
// environment Start gave it, appending to its log.
func (s *Stack) Restart(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.ended[name]: // a nil channel (no such process) never is
	default:
		return fmt.Errorf("%s is not a process of the stack that has ended", name)
	}
	cmd, ended, err := s.launch(name, os.O_APPEND)
	if err != nil {
		return err
	}
	s.cmds[name], s.ended[name] = cmd, ended
	return nil
}

// Exits reports processes that end, expectedly or not.
func (s *Stack) Exits() <-chan Exit { return s.exits }

// Stop sends SIGTERM to every process in reverse start order, waits up to
// timeout for them to drain, then kills what is left.
func (s *Stack) Stop(timeout time.Duration) {
	s.mu.Lock()
	for i := len(Processes) - 1; i >= 0; i-- {
		if c := s.cmds[Processes[i]]; c != nil && c.Process != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.mu.Lock()
		for _, c := range s.cmds {
			if c.Process != nil {
				_ = c.Process.Kill()
			}
		}
		s.mu.Unlock()
		<-done
	}
}

// WaitReady polls the gateway's /readyz over HTTPS, trusting only the dev CA,
// until it answers 200 or ctx ends. A process that exits meanwhile fails it.
func (s *Stack) WaitReady(ctx context.Context, gatewayAddr, caFile string) error {
	client, err := HTTPClient(caFile)
	if err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+gatewayAddr+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("the stack did not become ready in time; see the logs in " + s.LogDir)
		case e := <-s.exits:
			s.exits <- e
			return fmt.Errorf("%s exited during start-up (%v); see %s", e.Name, e.Err, filepath.Join(s.LogDir, e.Name+".log"))
		case <-tick.C:
		}
	}
}

// HTTPClient returns a client that trusts only the dev CA.
func HTTPClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, nil
}
