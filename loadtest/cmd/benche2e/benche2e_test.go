package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/report"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	// A command name holding spaces and a ')' must not shift the fields.
	line := "4242 (we ird) (name)) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 125 7 3 20 0 4 0 1000 1000000 200\n"
	got, err := parseStat([]byte(line))
	if err != nil {
		t.Fatalf("parseStat(%q): %v", line, err)
	}
	want := procTimes{PPID: 17, Own: 3750 * time.Millisecond, Children: 100 * time.Millisecond}
	if got != want {
		t.Errorf("parseStat(%q) = %+v, want %+v", line, got, want)
	}
	for _, bad := range []string{"", "1 (x) S 2 3", "1 (x) S z 1 1 0 -1 0 0 0 0 0 1 1 0 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = nil error, want one", bad)
		}
	}
}

// TestOwnCPUGrows reads this process's own /proc entry: the CPU time it
// reports must grow while the process works.
func TestOwnCPUGrows(t *testing.T) {
	t.Parallel()
	before, err := readStat(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for x := 0; ; x++ {
		now, err := readStat(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now.Own > before.Own {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("own CPU time stayed at %s for 10 s of work", before.Own)
		}
		for i := range 1_000_000 {
			x ^= i
		}
	}
}

func TestMedianAndPerRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	before := map[string]time.Duration{"gateway": time.Second, "postgres": 2 * time.Second}
	after := map[string]time.Duration{"gateway": 3 * time.Second, "postgres": 3 * time.Second, "new": time.Second}
	got := perRequest(before, after, 1000)
	if got["gateway"] != 2*time.Millisecond || got["postgres"] != time.Millisecond || len(got) != 2 {
		t.Errorf("perRequest = %v, want gateway 2ms, postgres 1ms and nothing else", got)
	}
	if got := perRequest(before, after, 0); len(got) != 0 {
		t.Errorf("perRequest with no requests = %v, want empty", got)
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	s, err := parseSettings([]string{"benche2e"}, io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if s.Rounds != 3 || s.Clients != 16 || s.Scale != 10 || len(s.stackLabels()) != 1 {
		t.Errorf("defaults = %+v, want 3 rounds, 16 clients, scale 10, one stack", s)
	}
	s, err = parseSettings([]string{"benche2e", "-set", "BANK_LEDGER_QUEUE_MAX=128", "-set", "GOGC=400"}, io.Discard)
	if err != nil || s.Set["BANK_LEDGER_QUEUE_MAX"] != "128" || s.Set["GOGC"] != "400" {
		t.Errorf("-set: %v, %v; want both settings", err, s.Set)
	}
	if s, err := parseSettings([]string{"benche2e", "-baseline-rev", "9853b03"}, io.Discard); err != nil || len(s.stackLabels()) != 2 {
		t.Errorf("-baseline-rev: %v, stacks %v, want after and before", err, s.stackLabels())
	}
	for _, args := range [][]string{
		{"-rounds", "0"}, {"-rounds", "11"}, {"-duration", "500ms"}, {"-duration", "3m"},
		{"-rate", "0"}, {"-read-rate", "9000"}, {"-users", "0"}, {"-max-in-flight", "5000"},
		{"-clients", "0"}, {"-scale", "0"}, {"-baseline-bin", "x", "-baseline-rev", "y"}, {"extra"},
		{"-set", "PATH=/tmp"}, {"-set", "BANK_X"}, {"-set", "LD_PRELOAD=x.so"},
	} {
		if _, err := parseSettings(append([]string{"benche2e"}, args...), io.Discard); err == nil {
			t.Errorf("parseSettings(%q) = nil error, want a refusal", args)
		}
	}
}

func TestOverloadVerdict(t *testing.T) {
	t.Parallel()
	good := func() *overloadResult {
		return &overloadResult{Recovered: true, Recovery: time.Second,
			Health:  map[string]*probeStats{"/healthz": {Sent: 10}},
			Summary: report.Summary{Endpoints: []report.EndpointSummary{{Latency: report.Latency{P99: 300 * time.Millisecond}}}}}
	}
	if !good().ok() {
		t.Fatalf("a stack that shed, stayed healthy and recovered in 1 s failed the verdict")
	}
	bad := map[string]func(*overloadResult){
		"slow recovery":          func(o *overloadResult) { o.Recovery = 6 * time.Second },
		"no recovery":            func(o *overloadResult) { o.Recovered = false },
		"shed without a hint":    func(o *overloadResult) { o.ShedNoRetryAfter = 1 },
		"a 500":                  func(o *overloadResult) { o.Other5xx = 1 },
		"a timeout":              func(o *overloadResult) { o.Summary.TransportErrors = 1 },
		"health check failed":    func(o *overloadResult) { o.Health["/healthz"].Failed = 1 },
		"queued instead of shed": func(o *overloadResult) { o.Summary.Endpoints[0].Latency.P99 = 2 * time.Second },
	}
	for name, breakIt := range bad {
		o := good()
		breakIt(o)
		if o.ok() {
			t.Errorf("%s: verdict ok, want a failure", name)
		}
		var b strings.Builder
		o.write(&b)
		if !strings.Contains(b.String(), "FAIL") {
			t.Errorf("%s: report lacks FAIL:\n%s", name, b.String())
		}
	}
}

// TestFindsItselfAndItsTree: the process running this test is found by its
// executable, and its tree's CPU time counts at least its own.
func TestFindsItselfAndItsTree(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if pid, err := findByExe(exe); err != nil || pid != os.Getpid() {
		t.Errorf("findByExe(%s) = %d, %v; want this process, %d", exe, pid, err, os.Getpid())
	}
	own, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := treeCPU(os.Getpid())
	if err != nil || tree < own.Own {
		t.Errorf("treeCPU(self) = %s, %v; want at least the process's own %s", tree, err, own.Own)
	}
	if _, err := findByExe("/nonexistent/binary"); err == nil {
		t.Errorf("findByExe(/nonexistent/binary) = nil error, want one")
	}
}
