package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/bastion-bank/bastion/deploy/devstack"
	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
)

// cpuColumns are the processes whose CPU time per request is reported.
var cpuColumns = append(append([]string{}, devstack.Processes...), "postgres", "loadgen")

// result is one measured phase.
type result struct {
	Round   int
	Stack   string // "after", "before", or "" for pgbench
	Kind    string // "pgbench", "transfers", "reads", "history", or one of halfKinds
	OK      int    // 2xx answers (transactions for pgbench)
	NotOK   int    // other answers and transport errors
	Rate    float64
	P50     time.Duration
	P99     time.Duration
	Dropped int                      // arrivals not sent (past -max-in-flight); a mixed phase's all on its first kind
	Other   string                   // status codes other than 2xx, e.g. "503:12 err:3"
	CPU     map[string]time.Duration // per OK request, by process (cpuColumns)
	Load    string                   // load average when the phase began
	Ledger  *ledgerStats             // the group commit's batches during the phase, if any ran and the build exports them
}

// cpuNow samples the CPU time of every process of st (nil for pgbench:
// postgres and this process only).
func (l *lab) cpuNow(st *stack) map[string]time.Duration {
	m := map[string]time.Duration{}
	if st != nil {
		for name, pid := range st.pids {
			if t, err := readStat(pid); err == nil {
				m[name] = t.Own
			}
		}
	}
	if pid, err := postmasterPID(l.pgData); err == nil {
		if t, err := treeCPU(pid); err == nil {
			m["postgres"] = t
		}
	}
	if t, err := readStat(os.Getpid()); err == nil {
		m["loadgen"] = t.Own
	}
	return m
}

// perRequest divides the CPU each process spent between two samples by n.
func perRequest(before, after map[string]time.Duration, n int) map[string]time.Duration {
	out := map[string]time.Duration{}
	if n == 0 {
		return out
	}
	for k, a := range after {
		if b, ok := before[k]; ok {
			out[k] = (a - b) / time.Duration(n)
		}
	}
	return out
}

// pgbench initialises the pgbench database once.
func (l *lab) initPgbench(ctx context.Context, s settings) error {
	createdb := exec.CommandContext(ctx, pgTool("psql"), "-h", "127.0.0.1", "-p", l.pgPort, "-U", "postgres", "-d", "postgres",
		"-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE pgbench")
	if out, err := createdb.CombinedOutput(); err != nil {
		return fmt.Errorf("create the pgbench database: %w %s", err, out)
	}
	fmt.Fprintf(l.out, "pgbench: initialising scale %d in database pgbench of the throw-away cluster …\n", s.Scale)
	cmd := exec.CommandContext(ctx, pgTool("pgbench"), "-h", "127.0.0.1", "-p", l.pgPort, "-U", "postgres", "-i", "-q", "-s", strconv.Itoa(s.Scale), "pgbench")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w %s", err, out)
	}
	return nil
}

var (
	tpsLine     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	latencyLine = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	txLine      = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
)

// runPgbench runs the tpcb-like script for the phase's duration.
func (l *lab) runPgbench(ctx context.Context, s settings, round int) (result, error) {
	r := result{Round: round, Kind: "pgbench", Load: loadAverage()}
	before := l.cpuNow(nil)
	cmd := exec.CommandContext(ctx, pgTool("pgbench"), "-h", "127.0.0.1", "-p", l.pgPort, "-U", "postgres", "-b", "tpcb-like",
		"-c", strconv.Itoa(s.Clients), "-j", "2", "-T", strconv.Itoa(int(s.Duration.Seconds())), "pgbench")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("pgbench: %w %s", err, out)
	}
	after := l.cpuNow(nil)
	tps, lat, tx := tpsLine.FindSubmatch(out), latencyLine.FindSubmatch(out), txLine.FindSubmatch(out)
	if tps == nil || tx == nil {
		return r, fmt.Errorf("pgbench printed no tps line:\n%s", out)
	}
	r.Rate, _ = strconv.ParseFloat(string(tps[1]), 64)
	r.OK, _ = strconv.Atoi(string(tx[1]))
	if lat != nil {
		ms, _ := strconv.ParseFloat(string(lat[1]), 64)
		r.P50 = time.Duration(ms * float64(time.Millisecond)) // the mean: pgbench prints no percentile without a log
	}
	r.CPU = perRequest(before, after, r.OK)
	// pgbench's own client is this tool's child, not the tool itself.
	r.CPU["loadgen"] = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()) / time.Duration(max(r.OK, 1))
	return r, nil
}

// transfersOnly sends transfers only, from each user's funded account to
// their other one, each with a fresh Idempotency-Key.
type transfersOnly struct {
	prefix string
	users  []scenario.User
}

func (g transfersOnly) Next(i int) load.Request {
	u := g.users[i%len(g.users)]
	return bank.Transfer(u.Token, g.prefix+strconv.Itoa(i), bank.TransferBody{
		From: u.Accounts[0], To: u.Accounts[1], Amount: int64(1 + i%scenario.MaxTransferAmount),
		Currency: "EUR", Description: "bench-e2e",
	})
}

// readsOnly reads balances, alternating between each user's two accounts.
type readsOnly struct{ users []scenario.User }

func (g readsOnly) Next(i int) load.Request {
	u := g.users[i%len(g.users)]
	return bank.GetAccount(u.Token, u.Accounts[(i/len(g.users))%2])
}

// historyOnly reads the first page of history, alternating between each
// user's two accounts (the funded one's outgoing entries, the other's
// incoming ones).
type historyOnly struct{ users []scenario.User }

func (g historyOnly) Next(i int) load.Request {
	u := g.users[i%len(g.users)]
	return bank.History(u.Token, u.Accounts[(i/len(g.users))%2], scenario.HistoryPageSize)
}

// transfersAndHistory alternates a transfer and a history read, so both
// kinds see the same load at the same time.
type transfersAndHistory struct {
	transfers transfersOnly
	history   historyOnly
}

func (g transfersAndHistory) Next(i int) load.Request {
	if i%2 == 0 {
		return g.transfers.Next(i / 2)
	}
	return g.history.Next(i / 2)
}

// phaseKind names the result kind of the answers to one endpoint.
type phaseKind struct{ kind, endpoint string }

// runPhase offers st the stream of gen at rate for the phase's duration and
// measures it, one result per kind in the order given; profile, if set, is
// called while it runs. CPU per request is reported for a phase of one kind
// only: a mixed phase's CPU time cannot be split between its kinds.
func (l *lab) runPhase(ctx context.Context, s settings, st *stack, round int, rate float64, gen load.Generator, profile func(), kinds ...phaseKind) ([]result, error) {
	loadAvg := loadAverage()
	opts := load.Options{Rate: rate, Duration: s.Duration, MaxInFlight: s.MaxInFlight}
	rec := report.NewRecorder()
	if profile != nil {
		go profile()
	}
	// The ledger's metrics are scraped outside the CPU samples, so serving
	// them is not charged to the phase.
	ledgerBefore := ledgerNow(ctx, st)
	before := l.cpuNow(st)
	elapsed, err := load.Run(ctx, st.client, st.base, gen, opts, rec)
	after := l.cpuNow(st)
	ledgerAfter := ledgerNow(ctx, st)
	if err != nil {
		return nil, err
	}
	sum := rec.Summarize(elapsed)
	out := make([]result, len(kinds))
	for i, k := range kinds {
		out[i] = phaseResult(sum, k.endpoint, elapsed)
		out[i].Round, out[i].Stack, out[i].Kind, out[i].Load = round, st.label, k.kind, loadAvg
	}
	if len(out) > 0 {
		out[0].Dropped = sum.Dropped
		if ls, ok := ledgerDelta(ledgerBefore, ledgerAfter); ok {
			out[0].Ledger = &ls
		}
	}
	if len(out) == 1 {
		out[0].CPU = perRequest(before, after, out[0].OK)
	}
	return out, nil
}

// phaseResult is what sum says of the answers to endpoint: counts, rate and
// latencies.
func phaseResult(sum report.Summary, endpoint string, elapsed time.Duration) result {
	var r result
	for _, e := range sum.Endpoints {
		if e.Endpoint != endpoint {
			continue
		}
		for code, n := range e.Codes {
			if code >= 200 && code < 300 {
				r.OK += n
			} else {
				r.NotOK += n
			}
		}
		r.P50, r.P99 = e.Latency.P50, e.Latency.P99
		r.Other = nonOK(e.Codes)
	}
	if elapsed > 0 {
		r.Rate = float64(r.OK) / elapsed.Seconds()
	}
	return r
}

// nonOK formats the non-2xx entries of codes.
func nonOK(codes map[int]int) string {
	rest := map[int]int{}
	for c, n := range codes {
		if c < 200 || c > 299 {
			rest[c] = n
		}
	}
	return report.FormatCodes(rest)
}

// profileCPU fetches a CPU profile of each named process of st for d, and
// then its allocation profile (cumulative since the process started), and
// writes them to dir/<stack>-<process>-<kind>.pprof and …-allocs.pprof.
func profileCPU(ctx context.Context, st *stack, dir, kind string, d time.Duration, procs []string, out io.Writer) {
	metrics := map[string]string{"gateway": st.cfg.Addrs.GatewayMetrics, "auth": st.cfg.Addrs.AuthMetrics,
		"accounts": st.cfg.Addrs.AccountsMetrics, "transactions": st.cfg.Addrs.TransactionsMetrics}
	client := &http.Client{Timeout: d + 30*time.Second}
	done := make(chan struct{}, len(procs))
	for _, p := range procs {
		go func() {
			defer func() { done <- struct{}{} }()
			base := "http://" + metrics[p] + "/debug/pprof/"
			name := filepath.Join(dir, st.label+"-"+p+"-"+kind)
			if fetchProfile(ctx, client, fmt.Sprintf("%sprofile?seconds=%d", base, int(d.Seconds())), name+".pprof", out) {
				fetchProfile(ctx, client, base+"allocs", name+"-allocs.pprof", out)
			}
		}()
	}
	for range procs {
		<-done
	}
}

// fetchProfile GETs url into path and reports whether it did.
func fetchProfile(ctx context.Context, client *http.Client, url, path string, out io.Writer) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(out, "profile %s: %v\n", url, err)
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(out, "profile %s: status %d (is BANK_PPROF read by this build?)\n", url, resp.StatusCode)
		return false
	}
	f, err := os.Create(path)
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(out, "profile %s: %v\n", url, err)
		return false
	}
	fmt.Fprintf(out, "profile written to %s\n", path)
	return true
}

// pgTool finds a PostgreSQL client program on PATH or in Debian's versioned directories.
func pgTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	return name
}
