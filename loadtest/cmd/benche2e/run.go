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

// round runs pgbench, then each stack's transfers and reads; the stacks
// take turns going first.
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
		var profile func()
		if s.ProfileDir != "" && round == 1 && st.label == "after" {
			d := s.Duration - 2*time.Second
			profile = func() { profileCPU(ctx, st, s.ProfileDir, "transfers", d, []string{"gateway", "transactions"}, log) }
		}
		prefix := fmt.Sprintf("bench-%s-r%d-", st.runID, round)
		r, err := l.runPhase(ctx, s, st, round, "transfers", s.Rate, transfersOnly{prefix: prefix, users: st.users}, profile)
		if err != nil {
			return out, err
		}
		logResult(log, r)
		out = append(out, r)
		profile = nil
		if s.ProfileDir != "" && round == 1 && st.label == "after" {
			d := s.Duration - 2*time.Second
			profile = func() { profileCPU(ctx, st, s.ProfileDir, "reads", d, []string{"gateway", "accounts"}, log) }
		}
		if r, err = l.runPhase(ctx, s, st, round, "reads", s.ReadRate, readsOnly{users: st.users}, profile); err != nil {
			return out, err
		}
		logResult(log, r)
		out = append(out, r)
	}
	return out, nil
}

func logResult(w io.Writer, r result) {
	name := r.Kind
	if r.Stack != "" {
		name = r.Stack + " " + r.Kind
	}
	fmt.Fprintf(w, "round %d %-16s %8.1f/s  (load average %s)\n", r.Round, name, r.Rate, r.Load)
}

// writeResults prints every phase: rate, latencies, and the CPU time each
// process spent per request (µs).
func writeResults(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nround\tstack\tphase\tok/s\tok\tp50\tp99\tdropped\tother\t"+strings.Join(cpuColumns, " µs\t")+" µs\tload avg\t")
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
		fmt.Fprintf(tw, "%s\t\n", r.Load)
	}
	_ = tw.Flush()
}

// writeMedians prints the medians over the rounds and the ratios the issue
// asks for, each ratio taken within a round and then the median of those.
func writeMedians(w io.Writer, s settings, results []result) {
	pg := rates(results, "", "pgbench")
	fmt.Fprintf(w, "\nmedians over %d rounds (pgbench tpcb-like, %d clients, scale %d: %.0f tps)\n", s.Rounds, s.Clients, s.Scale, median(pg))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stack\ttransfers/s\t÷ pgbench\ttransfer p50\tp99\treads/s\treads ÷ transfers\tread p50\tp99\tgateway+transactions µs/transfer\tgateway+accounts µs/read\t")
	for _, st := range s.stackLabels() {
		tr, rd := rates(results, st, "transfers"), rates(results, st, "reads")
		var ratio, readRatio, trCPU, rdCPU []float64
		var trP50, trP99, rdP50, rdP99 []float64
		for _, r := range results {
			if r.Stack != st {
				continue
			}
			switch r.Kind {
			case "transfers":
				if p := find(results, r.Round, "", "pgbench"); p != nil && p.Rate > 0 {
					ratio = append(ratio, r.Rate/p.Rate)
				}
				trCPU = append(trCPU, float64((r.CPU["gateway"] + r.CPU["transactions"]).Microseconds()))
				trP50, trP99 = append(trP50, float64(r.P50)), append(trP99, float64(r.P99))
			case "reads":
				if t := find(results, r.Round, st, "transfers"); t != nil && t.Rate > 0 {
					readRatio = append(readRatio, r.Rate/t.Rate)
				}
				rdCPU = append(rdCPU, float64((r.CPU["gateway"] + r.CPU["accounts"]).Microseconds()))
				rdP50, rdP99 = append(rdP50, float64(r.P50)), append(rdP99, float64(r.P99))
			}
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%s\t%s\t%.1f\t%.2f\t%s\t%s\t%.0f\t%.0f\t\n", st, median(tr), median(ratio),
			ms(time.Duration(median(trP50))), ms(time.Duration(median(trP99))), median(rd), median(readRatio),
			ms(time.Duration(median(rdP50))), ms(time.Duration(median(rdP99))), median(trCPU), median(rdCPU))
	}
	_ = tw.Flush()
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
