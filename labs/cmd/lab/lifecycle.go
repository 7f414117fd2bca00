package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/bastion-bank/bastion/labs"
	"github.com/bastion-bank/bastion/labs/internal/labkit"
)

// start makes the lab's worktree if it has none, then starts a detached
// `lab serve` that builds and runs the stack, and waits until it is ready.
func start(ctx context.Context, s settings, l labs.Lab, p paths, out io.Writer) error {
	if st, err := labkit.ReadState(p.state); err == nil && alive(st.PID) {
		return fmt.Errorf("lab %s is already running (gateway https://%s); make lab-stop LAB=%s first", l.ID, st.Gateway, l.ID)
	}
	if err := ensureWorktree(ctx, s.Root, l, p.worktree, out); err != nil {
		return err
	}
	if err := os.MkdirAll(p.run, 0o700); err != nil {
		return err
	}
	_ = os.Remove(p.state)
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-root", s.Root, "-database-url", s.AdminURL, "serve", l.ID)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this command and the terminal's Ctrl-C
	fmt.Fprintf(out, "Building lab %s from %s and starting its stack (a minute or two the first time) …\n", l.ID, rel(s.Root, p.worktree))
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Minute)
	for {
		select {
		case err := <-exited:
			tail, _ := os.ReadFile(p.log)
			return fmt.Errorf("the lab's stack did not start (%v):\n%s", err, lastLines(string(tail), 30))
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return errors.New("the lab's stack was not ready after 10 minutes; see " + rel(s.Root, p.log))
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return ctx.Err()
		case <-tick.C:
		}
		if st, err := labkit.ReadState(p.state); err == nil {
			_ = cmd.Process.Release()
			return banner(out, s.Root, l, p, st)
		}
	}
}

// serve builds the worktree, runs its stack and writes the state file when
// it is ready; it stops the stack on SIGTERM (lab stop).
func serve(ctx context.Context, s settings, l labs.Lab, p paths, out io.Writer) error {
	bin := filepath.Join(p.run, "bin")
	if err := buildPrograms(ctx, p.worktree, bin, []string{"auth", "transactions", "accounts", "gateway"}); err != nil {
		return err
	}
	r, err := startStack(ctx, stackOpts{lab: l.ID, src: p.worktree, bin: bin, dir: filepath.Join(p.run, "dev"), admin: s.AdminURL, db: p.db})
	if err != nil {
		return err
	}
	defer r.stop()
	if err := labkit.WriteState(p.state, r.state); err != nil {
		return err
	}
	fmt.Fprintln(out, "lab", l.ID, "ready at https://"+r.state.Gateway)
	select {
	case <-ctx.Done():
	case e := <-r.stack.Exits():
		fmt.Fprintf(out, "lab %s: %s exited (%v); stopping the stack, see %s\n", l.ID, e.Name, e.Err, r.state.LogDir)
	}
	_ = os.Remove(p.state)
	return nil
}

var bannerTmpl = template.Must(template.New("banner").Parse(`
Lab {{.Lab.ID}}: {{.Lab.Title}}   (OWASP {{.Lab.OWASP}})

  Every listener of this stack binds 127.0.0.1 only: nothing is reachable from another machine.

  Source    {{.Worktree}}   (main with labs/{{.Lab.Dir}}/break.patch applied: fix the control here)
  Gateway   https://{{.St.Gateway}}
  CA file   {{.CAFile}}
  Admin     {{.St.AdminEmail}} / {{.St.AdminPass}}   (staff MFA is off in labs)
  Metrics   http://{{index .St.Metrics "gateway"}}/metrics (gateway), http://{{index .St.Metrics "auth"}}/metrics (auth),
            http://{{index .St.Metrics "accounts"}}/metrics (accounts), http://{{index .St.Metrics "transactions"}}/metrics (transactions)
  Logs      {{.Logs}}/<process>.log
  Database  {{.DB}} on the local PostgreSQL (audit rows: <schema>.audit_events)

Next:
  make lab-exploit LAB={{.Lab.ID}}    run the attack: it prints EXPLOITED (the gap is open) or BLOCKED
  make lab-check LAB={{.Lab.ID}}      after your fix: rebuild, the attack must be BLOCKED and the control's tests pass
  make lab-stop LAB={{.Lab.ID}}       stop this stack (your worktree stays)
`))

func banner(out io.Writer, root string, l labs.Lab, p paths, st labkit.State) error {
	return bannerTmpl.Execute(out, map[string]any{
		"Lab": l, "St": st, "Worktree": rel(root, p.worktree), "CAFile": rel(root, st.CAFile),
		"Logs": rel(root, st.LogDir), "DB": p.db,
	})
}

// stopLab ends the lab's serving runner, which stops the stack, and waits.
func stopLab(p paths, out io.Writer) error {
	st, err := labkit.ReadState(p.state)
	if err != nil || !alive(st.PID) {
		_ = os.Remove(p.state)
		fmt.Fprintln(out, "The lab is not running.")
		return nil
	}
	if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for alive(st.PID) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the lab's runner (pid %d) is still running after 60 s", st.PID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = os.Remove(p.state)
	fmt.Fprintln(out, "Stopped lab", st.Lab+".")
	return nil
}

// alive reports whether a process with this pid exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(after, "Z")
}

// reset stops the lab, removes its worktree (and the attendee's edits) and
// drops its database.
func reset(ctx context.Context, s settings, l labs.Lab, p paths, out io.Writer) error {
	if err := stopLab(p, out); err != nil {
		return err
	}
	if _, err := os.Stat(p.worktree); err == nil {
		if err := git(ctx, s.Root, "worktree", "remove", "--force", p.worktree); err != nil {
			return err
		}
	}
	_ = git(ctx, s.Root, "worktree", "prune")
	dropDatabase(s.AdminURL, p.db, out)
	if err := os.RemoveAll(p.run); err != nil {
		return err
	}
	fmt.Fprintf(out, "Lab %s is reset: make lab-start LAB=%s begins again from main + break.patch.\n", l.ID, l.ID)
	return nil
}

// exploit builds the lab's exploit and runs it against the stack that
// statePath describes, copying its output to out; it returns the verdict
// line.
func exploit(ctx context.Context, root string, l labs.Lab, statePath string, out io.Writer) (string, error) {
	bin, err := buildExploit(ctx, root, filepath.Join(root, ".labs", "bin"), l)
	if err != nil {
		return "", err
	}
	return runExploit(ctx, bin, statePath, out)
}

// buildExploit builds the lab's exploit from the source tree src into dir.
func buildExploit(ctx context.Context, src, dir string, l labs.Lab) (string, error) {
	bin := filepath.Join(dir, "exploit-"+l.ID)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./labs/"+l.Dir()+"/exploit")
	build.Dir = src
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the exploit: %w\n%s", err, b)
	}
	return bin, nil
}

// runExploit runs a built exploit against the stack statePath describes.
func runExploit(ctx context.Context, bin, statePath string, out io.Writer) (string, error) {
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-state", statePath)
	cmd.Stdout, cmd.Stderr = &buf, out
	err := cmd.Run()
	_, _ = out.Write(buf.Bytes())
	if err != nil {
		return "", fmt.Errorf("the exploit could not run: %w", err)
	}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "EXPLOITED") || strings.HasPrefix(line, "BLOCKED") {
			return line, nil
		}
	}
	return "", errors.New("the exploit printed no verdict")
}

// check rebuilds and restarts the lab from the attendee's worktree, runs
// the exploit, which must be BLOCKED, and the control's own tests, which
// must pass.
func check(ctx context.Context, s settings, l labs.Lab, p paths, out io.Writer) error {
	if err := stopLab(p, io.Discard); err != nil {
		return err
	}
	// The fix is checked on a database of its own making: one that ran the
	// break's migrations would refuse a build whose fix deleted them ("a
	// migration this build does not know"), and would keep what they
	// dropped whatever the fix does.
	dropDatabase(s.AdminURL, p.db, io.Discard)
	if err := start(ctx, s, l, p, io.Discard); err != nil {
		return err
	}
	fmt.Fprintf(out, "Rebuilt lab %s from %s and restarted it.\n\n== the exploit\n", l.ID, rel(s.Root, p.worktree))
	verdict, err := exploit(ctx, s.Root, l, p.state, out)
	if err != nil {
		return err
	}
	testsOK := true
	if len(l.Tests) > 0 {
		args := append([]string{"test", "-race", "-count=1"}, l.Tests...)
		if l.TestRun != "" {
			args = append(args, "-run", l.TestRun)
		}
		fmt.Fprintf(out, "\n== the control's tests: go %s (in %s)\n", strings.Join(args, " "), rel(s.Root, p.worktree))
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = p.worktree, out, out
		testsOK = cmd.Run() == nil
	}
	if l.Slug == "stuffing-alert" {
		fmt.Fprintf(out, "\n== the alert rules: promtool check rules\n")
		cmd := exec.CommandContext(ctx, "promtool", "check", "rules", filepath.Join(p.worktree, "deploy", "alerts", "bastion.rules.yml"))
		cmd.Stdout, cmd.Stderr = out, out
		testsOK = cmd.Run() == nil
	}
	blocked := strings.HasPrefix(verdict, "BLOCKED")
	fmt.Fprintf(out, "\nexploit %s, tests %s\n", map[bool]string{true: "BLOCKED", false: "still EXPLOITED"}[blocked], map[bool]string{true: "pass", false: "FAIL"}[testsOK])
	if !blocked || !testsOK {
		return errors.New("not fixed yet")
	}
	fmt.Fprintf(out, "Lab %s is fixed. Compare with the trainer's solution, then make lab-stop LAB=%s.\n", l.ID, l.ID)
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
