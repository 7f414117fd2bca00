package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

// run is the whole program: settings, the lab, the rounds, the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, err := parseSettings(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if s.ProfileDir != "" {
		if err := os.MkdirAll(s.ProfileDir, 0o700); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "bench-e2e starts, on this machine, a throw-away PostgreSQL cluster and %d stack(s) of four processes, all on free loopback ports, and stops them at the end.\n", len(s.stackLabels()))
	l, err := startLab(ctx, s, root, stderr)
	if err != nil {
		return err
	}
	keep := s.Keep
	defer func() { l.close(keep) }()
	if err := l.initPgbench(ctx, s); err != nil {
		return err
	}
	var results []result
	for round := 1; round <= s.Rounds; round++ {
		rs, err := l.round(ctx, s, round, stderr)
		results = append(results, rs...)
		if err != nil {
			keep = true
			writeResults(stdout, results)
			return err
		}
	}
	writeResults(stdout, results)
	writeMedians(stdout, s, results)
	if s.Overload {
		sat := median(rates(results, "after", "transfers"))
		o, err := l.overload(ctx, s, l.stacks[0], sat, stderr)
		if err != nil {
			keep = true
			return err
		}
		o.write(stdout)
		if !o.ok() {
			keep = true
			return errors.New("overload: the stack did not shed gracefully or recover in time; see above")
		}
	}
	return nil
}

// round runs pgbench, then each stack's phases; the stacks take turns
// going first.
func (l *lab) round(ctx context.Context, s settings, round int, log io.Writer) ([]result, error) {
	var out []result
	r, err := l.runPgbench(ctx, s, round)
	if err != nil {
		return out, err
	}
	logResult(log, r)
	out = append(out, r)
	order := slices.Clone(l.stacks)
	if round%2 == 0 {
		slices.Reverse(order)
	}
	for _, st := range order {
		rs, err := l.stackPhases(ctx, s, st, round, log)
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// stackPhases runs st's saturation phases (transfers, balance reads, history
// reads, each alone) and then, with -half, each kind alone at half the rate
// it reached and transfers mixed with history reads at half load.
func (l *lab) stackPhases(ctx context.Context, s settings, st *stack, round int, log io.Writer) ([]result, error) {
	prefix := fmt.Sprintf("bench-%s-r%d-", st.runID, round)
	saturation := []struct {
		kind  string
		rate  float64
		gen   load.Generator
		at    string   // the endpoint
		procs []string // profiled with -profile
	}{
		{"transfers", s.Rate, transfersOnly{prefix: prefix, users: st.users}, bank.EndpointTransfer, []string{"gateway", "transactions"}},
		{"reads", s.ReadRate, readsOnly{users: st.users}, bank.EndpointGetAccount, []string{"gateway", "accounts"}},
		{"history", s.HistoryRate, historyOnly{users: st.users}, bank.EndpointHistory, []string{"gateway", "transactions"}},
	}
	var out []result
	measured := map[string]float64{}
	for _, p := range saturation {
		var profile func()
		if s.ProfileDir != "" && round == 1 && st.label == "after" {
			d := s.Duration - 2*time.Second
			profile = func() { profileCPU(ctx, st, s.ProfileDir, p.kind, d, p.procs, log) }
		}
		rs, err := l.runPhase(ctx, s, st, round, p.rate, p.gen, profile, phaseKind{p.kind, p.at})
		if err != nil {
			return out, err
		}
		logResults(log, rs)
		out = append(out, rs...)
		measured[p.kind] = rs[0].Rate
	}
	if !s.Half {
		return out, nil
	}
	rs, err := l.halfPhases(ctx, s, st, round, measured, log)
	return append(out, rs...), err
}

// halfPhases offers each kind alone halfLoad of the saturation rate the
// round measured for it, then transfers and history reads in equal shares
// at halfLoad of their mix (halfRate). Its transfers use keys of their own.
func (l *lab) halfPhases(ctx context.Context, s settings, st *stack, round int, measured map[string]float64, log io.Writer) ([]result, error) {
	prefix := fmt.Sprintf("bench-%s-r%d-", st.runID, round)
	mixed := transfersAndHistory{transfers: transfersOnly{prefix: prefix + "mix-", users: st.users}, history: historyOnly{users: st.users}}
	phases := []struct {
		of    []string // the saturation rates the phase's rate is taken from
		gen   load.Generator
		kinds []phaseKind
	}{
		{[]string{"transfers"}, transfersOnly{prefix: prefix + "half-", users: st.users}, []phaseKind{{kindHalfTransfers, bank.EndpointTransfer}}},
		{[]string{"reads"}, readsOnly{users: st.users}, []phaseKind{{kindHalfReads, bank.EndpointGetAccount}}},
		{[]string{"history"}, historyOnly{users: st.users}, []phaseKind{{kindHalfHistory, bank.EndpointHistory}}},
		{[]string{"transfers", "history"}, mixed, []phaseKind{{kindMixTransfers, bank.EndpointTransfer}, {kindMixHistory, bank.EndpointHistory}}},
	}
	var out []result
	for _, p := range phases {
		sat := make([]float64, len(p.of))
		for i, k := range p.of {
			sat[i] = measured[k]
		}
		rate, err := halfRate(sat...)
		if err != nil {
			return out, fmt.Errorf("round %d, %s stack, %s: %w", round, st.label, p.kinds[0].kind, err)
		}
		fmt.Fprintf(log, "round %d %s %s: offering %.1f/s (half load of the %s measured: %.1f/s)\n",
			round, st.label, p.kinds[0].kind, rate, strings.Join(p.of, " and "), sat)
		rs, err := l.runPhase(ctx, s, st, round, rate, p.gen, nil, p.kinds...)
		if err != nil {
			return out, err
		}
		logResults(log, rs)
		out = append(out, rs...)
	}
	return out, nil
}

func logResults(w io.Writer, rs []result) {
	for _, r := range rs {
		logResult(w, r)
	}
}

func logResult(w io.Writer, r result) {
	name := r.Kind
	if r.Stack != "" {
		name = r.Stack + " " + r.Kind
	}
	fmt.Fprintf(w, "round %d %-24s %8.1f/s  (load average %s)\n", r.Round, name, r.Rate, r.Load)
}

// writeResults prints every phase: rate, latencies, and the CPU time each
// process spent per request (µs).
func writeResults(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nround\tstack\tphase\tok/s\tok\tp50\tp99\tdropped\tother\t"+strings.Join(cpuColumns, " µs\t")+" µs\t"+
		"per commit\tcommit\tcommit p99\tbatch wait\twait p99\tload avg\t")
	for _, r := range results {
		p50, p99 := ms(r.P50), ms(r.P99)
		if r.Kind == "pgbench" {
			p50, p99 = "mean "+ms(r.P50), "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f\t%d\t%s\t%s\t%d\t%s\t", r.Round, dash(r.Stack), r.Kind, r.Rate, r.OK, p50, p99, r.Dropped, dash(r.Other))
		for _, c := range cpuColumns {
			if v, ok := r.CPU[c]; ok {
				fmt.Fprintf(tw, "%d\t", v.Microseconds())
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		if l := r.Ledger; l != nil {
			fmt.Fprintf(tw, "%.1f\t%s\t%s\t%s\t%s\t", l.PerCommit, ms(l.Commit), ms(l.CommitP99), ms(l.Wait), ms(l.WaitP99))
		} else {
			fmt.Fprint(tw, "-\t-\t-\t-\t-\t")
		}
		fmt.Fprintf(tw, "%s\t\n", r.Load)
	}
	_ = tw.Flush()
}

// writeMedians prints the medians over the rounds and the ratios the issue
// asks for, each ratio taken within a round and then the median of those;
// with -half, the p99s at half saturation, the mixed phase and the verdict
// against issue 15 point 5.
func writeMedians(w io.Writer, s settings, results []result) {
	pg := rates(results, "", "pgbench")
	fmt.Fprintf(w, "\nmedians over %d rounds (pgbench tpcb-like, %d clients, scale %d: %.0f tps)\n", s.Rounds, s.Clients, s.Scale, median(pg))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	head := "stack\ttransfers/s\t÷ pgbench\ttransfer p50\tp99\treads/s\treads ÷ transfers\tread p50\tp99\thistory/s\thistory p50\tp99\t" +
		"gateway+transactions µs/transfer\tgateway+accounts µs/read\tgateway+transactions µs/history\t"
	if s.Half {
		head += "½-saturation transfer p99\tread p99\thistory p99\t"
	}
	fmt.Fprintln(tw, head)
	p50 := func(r result) (float64, bool) { return float64(r.P50), true }
	p99 := func(r result) (float64, bool) { return float64(r.P99), true }
	cpu := func(procs ...string) func(result) (float64, bool) {
		return func(r result) (float64, bool) {
			var t time.Duration
			for _, p := range procs {
				t += r.CPU[p]
			}
			return float64(t.Microseconds()), true
		}
	}
	per := func(stack, kind string) func(result) (float64, bool) {
		return func(r result) (float64, bool) {
			if d := find(results, r.Round, stack, kind); d != nil && d.Rate > 0 {
				return r.Rate / d.Rate, true
			}
			return 0, false
		}
	}
	for _, st := range s.stackLabels() {
		m := func(kind string, f func(result) (float64, bool)) float64 { return medianOf(results, st, kind, f) }
		d := func(kind string, f func(result) (float64, bool)) string { return ms(time.Duration(m(kind, f))) }
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%s\t%s\t%.1f\t%.2f\t%s\t%s\t%.1f\t%s\t%s\t%.0f\t%.0f\t%.0f\t", st,
			median(rates(results, st, "transfers")), m("transfers", per("", "pgbench")), d("transfers", p50), d("transfers", p99),
			median(rates(results, st, "reads")), m("reads", per(st, "transfers")), d("reads", p50), d("reads", p99),
			median(rates(results, st, "history")), d("history", p50), d("history", p99),
			m("transfers", cpu("gateway", "transactions")), m("reads", cpu("gateway", "accounts")), m("history", cpu("gateway", "transactions")))
		if s.Half {
			fmt.Fprintf(tw, "%s\t%s\t%s\t", d(kindHalfTransfers, p99), d(kindHalfReads, p99), d(kindHalfHistory, p99))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	if s.Half {
		writeHalf(w, s, results)
	}
}

// medianOf is the median of f over stack's rows of kind, skipping the rows
// f has no value for.
func medianOf(results []result, stack, kind string, f func(result) (float64, bool)) float64 {
	var vs []float64
	for _, r := range results {
		if r.Stack != stack || r.Kind != kind {
			continue
		}
		if v, ok := f(r); ok {
			vs = append(vs, v)
		}
	}
	return median(vs)
}

func find(results []result, round int, stack, kind string) *result {
	for i := range results {
		if r := &results[i]; r.Round == round && r.Stack == stack && r.Kind == kind {
			return r
		}
	}
	return nil
}

func rates(results []result, stack, kind string) []float64 {
	var out []float64
	for _, r := range results {
		if r.Stack == stack && r.Kind == kind {
			out = append(out, r.Rate)
		}
	}
	return out
}

// median of vs (the mean of the middle two for an even count); 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// repoRoot is the directory holding go.work, from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run bench-e2e from inside the Bastion repository (no go.work found above the working directory)")
		}
		dir = parent
	}
}
