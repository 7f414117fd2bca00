package main

import (
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
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
	if s.Rounds != 3 || s.Clients != 16 || s.Scale != 10 || len(s.stackLabels()) != 1 || !s.Half {
		t.Errorf("defaults = %+v, want 3 rounds, 16 clients, scale 10, one stack, half-load phases", s)
	}
	// Saturation is measured at the gateway's admission bound with every
	// rate above what the stack serves, so no default rate caps what a
	// fast machine measures and no request is shed by the gateway.
	if s.Rate != offeredRate || s.ReadRate != offeredRate || s.HistoryRate != offeredRate || s.MaxInFlight != 128 {
		t.Errorf("defaults = %+v, want every rate %v and 128 in flight", s, offeredRate)
	}
	if s, err := parseSettings([]string{"benche2e", "-half=false"}, io.Discard); err != nil || s.Half {
		t.Errorf("-half=false: %v, Half %v; want the half-load phases off", err, s.Half)
	}
	s, err = parseSettings([]string{"benche2e", "-set", "BANK_LEDGER_QUEUE_MAX=128", "-set", "GOGC=400", "-set", "GODEBUG=gctrace=1"}, io.Discard)
	if err != nil || s.Set["BANK_LEDGER_QUEUE_MAX"] != "128" || s.Set["GOGC"] != "400" || s.Set["GODEBUG"] != "gctrace=1" {
		t.Errorf("-set: %v, %v; want the three settings", err, s.Set)
	}
	if s, err := parseSettings([]string{"benche2e", "-baseline-rev", "9853b03"}, io.Discard); err != nil || len(s.stackLabels()) != 2 {
		t.Errorf("-baseline-rev: %v, stacks %v, want after and before", err, s.stackLabels())
	}
	for _, args := range [][]string{
		{"-rounds", "0"}, {"-rounds", "11"}, {"-duration", "500ms"}, {"-duration", "3m"},
		{"-rate", "0"}, {"-read-rate", "90000"}, {"-history-rate", "0"}, {"-history-rate", "NaN"}, {"-users", "0"}, {"-max-in-flight", "5000"},
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

func TestHalfRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"one kind: half its saturation", []float64{400}, 200},
		{"two kinds alike: a quarter of each", []float64{400, 400}, 200},
		{"transfers 300/s with history 600/s: 100/s of each", []float64{300, 600}, 200},
		{"capped at the engine's bound", []float64{4 * load.MaxRate}, load.MaxRate},
	}
	for _, tt := range tests {
		got, err := halfRate(tt.in...)
		if err != nil || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: halfRate(%v) = %v, %v; want %v", tt.name, tt.in, got, err, tt.want)
		}
	}
	for _, bad := range [][]float64{nil, {0}, {-1}, {math.NaN()}, {300, 0}} {
		if got, err := halfRate(bad...); err == nil {
			t.Errorf("halfRate(%v) = %v, nil error; want a refusal (nothing to take half of)", bad, got)
		}
	}
}

func TestHalfVerdict(t *testing.T) {
	t.Parallel()
	good := func() halfMedians {
		return halfMedians{Transfers: 20 * time.Millisecond, Reads: 9 * time.Millisecond, History: latencyBar,
			MixTransfersP50: 6 * time.Millisecond, MixTransfersP99: 21 * time.Millisecond,
			MixHistoryP50: 6 * time.Millisecond, MixHistoryP99: 21 * time.Millisecond}
	}
	if p := good().problems(); len(p) != 0 || !strings.HasPrefix(good().verdict(), "PASS") {
		t.Fatalf("a stack within the bar, history as fast as transfers: problems %q, verdict %q; want PASS", p, good().verdict())
	}
	tests := map[string]func(*halfMedians){
		"slow transfers":                  func(h *halfMedians) { h.Transfers = latencyBar + time.Microsecond },
		"slow balance reads":              func(h *halfMedians) { h.Reads = 30 * time.Millisecond },
		"slow history reads":              func(h *halfMedians) { h.History = time.Second },
		"no history measured":             func(h *halfMedians) { h.History = 0 },
		"history p50 slower when mixed":   func(h *halfMedians) { h.MixHistoryP50 = 7 * time.Millisecond },
		"history p99 slower when mixed":   func(h *halfMedians) { h.MixHistoryP99 = 22 * time.Millisecond },
		"mixed phase answered no history": func(h *halfMedians) { h.MixHistoryP50, h.MixHistoryP99 = 0, 0 },
		"a half-load arrival failed":      func(h *halfMedians) { h.Failed = 1 },
	}
	for name, breakIt := range tests {
		h := good()
		breakIt(&h)
		if len(h.problems()) != 1 || !strings.HasPrefix(h.verdict(), "FAIL: ") {
			t.Errorf("%s: problems %q, verdict %q; want exactly one problem and FAIL", name, h.problems(), h.verdict())
		}
	}
}

func TestHalfMedians(t *testing.T) {
	t.Parallel()
	var results []result
	for round, p99 := range []time.Duration{10, 30, 20} {
		p99 *= time.Millisecond
		results = append(results,
			result{Round: round + 1, Stack: "after", Kind: "transfers", P99: time.Second, NotOK: 7}, // saturation: not a half phase
			result{Round: round + 1, Stack: "after", Kind: kindHalfTransfers, P99: p99},
			result{Round: round + 1, Stack: "after", Kind: kindHalfReads, P99: p99 / 2},
			result{Round: round + 1, Stack: "after", Kind: kindHalfHistory, P99: p99 / 2, NotOK: 1},
			result{Round: round + 1, Stack: "after", Kind: kindMixTransfers, P50: p99 / 4, P99: p99, Dropped: 2},
			result{Round: round + 1, Stack: "after", Kind: kindMixHistory, P50: p99 / 5, P99: p99 / 2},
			result{Round: round + 1, Stack: "before", Kind: kindHalfTransfers, P99: time.Second, NotOK: 100},
		)
	}
	got := newHalfMedians(results, "after")
	want := halfMedians{Transfers: 20 * time.Millisecond, Reads: 10 * time.Millisecond, History: 10 * time.Millisecond,
		MixTransfersP50: 5 * time.Millisecond, MixTransfersP99: 20 * time.Millisecond,
		MixHistoryP50: 4 * time.Millisecond, MixHistoryP99: 10 * time.Millisecond, Failed: 9}
	if got != want {
		t.Errorf("newHalfMedians(after) = %+v, want %+v", got, want)
	}
}

func TestPhaseResult(t *testing.T) {
	t.Parallel()
	sum := report.Summary{Endpoints: []report.EndpointSummary{
		{Endpoint: bank.EndpointTransfer, Codes: map[int]int{200: 90, 503: 8, report.StatusTransportError: 2},
			Latency: report.Latency{P50: 5 * time.Millisecond, P99: 20 * time.Millisecond}},
		{Endpoint: bank.EndpointHistory, Codes: map[int]int{200: 50},
			Latency: report.Latency{P50: 3 * time.Millisecond, P99: 9 * time.Millisecond}},
	}}
	tests := []struct {
		endpoint string
		want     result
	}{
		{bank.EndpointTransfer, result{OK: 90, NotOK: 10, Rate: 45, P50: 5 * time.Millisecond, P99: 20 * time.Millisecond, Other: "err:2 503:8"}},
		{bank.EndpointHistory, result{OK: 50, Rate: 25, P50: 3 * time.Millisecond, P99: 9 * time.Millisecond}},
		{bank.EndpointGetAccount, result{}},
	}
	for _, tt := range tests {
		got := phaseResult(sum, tt.endpoint, 2*time.Second)
		if got.OK != tt.want.OK || got.NotOK != tt.want.NotOK || got.Rate != tt.want.Rate ||
			got.P50 != tt.want.P50 || got.P99 != tt.want.P99 || got.Other != tt.want.Other {
			t.Errorf("phaseResult(%s) = %+v, want %+v", tt.endpoint, got, tt.want)
		}
	}
}

func TestHalfGenerators(t *testing.T) {
	t.Parallel()
	users := []scenario.User{{Token: "t0", Accounts: []string{"a0", "b0"}}, {Token: "t1", Accounts: []string{"a1", "b1"}}}
	g := transfersAndHistory{transfers: transfersOnly{prefix: "p-mix-", users: users}, history: historyOnly{users: users}}
	keys := map[string]bool{}
	for i := range 8 {
		req := g.Next(i)
		want := bank.EndpointTransfer
		if i%2 == 1 {
			want = bank.EndpointHistory
		}
		if req.Endpoint != want {
			t.Errorf("Next(%d).Endpoint = %q, want %q", i, req.Endpoint, want)
		}
		if key := req.Header.Get("Idempotency-Key"); want == bank.EndpointTransfer {
			if key == "" || keys[key] {
				t.Errorf("Next(%d) Idempotency-Key %q: want a fresh one", i, key)
			}
			keys[key] = true
		}
		if req.Method == http.MethodGet && !strings.Contains(req.Path, "/transactions?pageSize=") {
			t.Errorf("Next(%d).Path = %q, want a first page of history", i, req.Path)
		}
	}
	// Both of each user's accounts are read, the funded one first.
	h := historyOnly{users: users}
	for i, want := range []string{"/v1/accounts/a0/", "/v1/accounts/a1/", "/v1/accounts/b0/", "/v1/accounts/b1/"} {
		if got := h.Next(i).Path; !strings.HasPrefix(got, want) {
			t.Errorf("historyOnly.Next(%d).Path = %q, want it under %s", i, got, want)
		}
	}
}

// TestWriteMediansHalf: with -half the medians carry the half-load p99s,
// the mixed phase side by side, and one verdict line per stack; without it,
// none of them.
func TestWriteMediansHalf(t *testing.T) {
	t.Parallel()
	results := []result{{Round: 1, Kind: "pgbench", Rate: 1000}}
	for _, kind := range append([]string{"transfers", "reads", "history"}, halfKinds...) {
		results = append(results, result{Round: 1, Stack: "after", Kind: kind, Rate: 100, OK: 100,
			P50: 4 * time.Millisecond, P99: 12 * time.Millisecond})
	}
	s := settings{Rounds: 1, Clients: 16, Scale: 10, Half: true}
	var b strings.Builder
	writeMedians(&b, s, results)
	for _, want := range []string{"½-saturation transfer p99", "history p99", "at the same load", "issue 15 point 5, after: PASS"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("writeMedians with -half lacks %q:\n%s", want, b.String())
		}
	}
	s.Half = false
	b.Reset()
	writeMedians(&b, s, results)
	if out := b.String(); strings.Contains(out, "issue 15 point 5") || strings.Contains(out, "½-saturation") {
		t.Errorf("writeMedians with -half=false reports the half-load phases:\n%s", out)
	}
}
