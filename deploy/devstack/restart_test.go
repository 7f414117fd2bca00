package devstack

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestartAfterAKill: a process killed on purpose is reported on Exits,
// starts again with its own environment, appends to its log, and Stop still
// stops everything; a running process is not started twice.
func TestRestartAfterAKill(t *testing.T) {
	t.Parallel()
	bin, logs := t.TempDir(), t.TempDir()
	p := &Prepared{Env: map[string][]string{}}
	for _, name := range Processes {
		script := "#!/bin/sh\necho \"$NAME up\"\nexec sleep 60\n"
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		p.Env[name] = []string{"NAME=" + name}
	}
	s, err := Start(p, bin, logs, []string{"PATH=" + os.Getenv("PATH")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restart("accounts"); err == nil {
		t.Error("Restart(accounts) while it runs succeeded, want an error")
	}
	time.Sleep(200 * time.Millisecond) // let the script write its first line
	if err := s.Signal("accounts", syscall.SIGKILL); err != nil {
		t.Fatalf("Signal(accounts, SIGKILL) = %v", err)
	}
	select {
	case e := <-s.Exits():
		if e.Name != "accounts" {
			t.Fatalf("Exits() = %s, want accounts", e.Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit reported for the killed process")
	}
	if err := s.Restart("accounts"); err != nil {
		t.Fatalf("Restart(accounts) after the kill = %v", err)
	}
	if err := s.Restart("vault"); err == nil {
		t.Error("Restart(vault) succeeded for a process the stack does not have")
	}
	go func() {
		for range s.Exits() { // Stop's exits, drained as Signal asks
		}
	}()
	time.Sleep(200 * time.Millisecond)
	s.Stop(5 * time.Second)
	b, err := os.ReadFile(filepath.Join(logs, "accounts.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "accounts up"); got != 2 {
		t.Errorf("accounts.log has %d start lines, want 2 (appended, not truncated):\n%s", got, b)
	}
}
