package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

// Issue 15, point 5: "p99 ≤ 25 ms at half of saturation for transfers and
// reads; no history read slower than a transfer at the same load".
const (
	// halfLoad is the share of its own saturation each half phase offers.
	halfLoad = 0.5
	// latencyBar bounds the p99 of each kind alone at halfLoad.
	latencyBar = 25 * time.Millisecond
)

// Result kinds of the half-load phases of a round.
const (
	kindHalfTransfers = "half transfers"
	kindHalfReads     = "half reads"
	kindHalfHistory   = "half history"
	kindMixTransfers  = "half mix transfers"
	kindMixHistory    = "half mix history"
)

// halfKinds are the result kinds the half-load phases produce, in the order they run.
var halfKinds = []string{kindHalfTransfers, kindHalfReads, kindHalfHistory, kindMixTransfers, kindMixHistory}

// errNoSaturation says a saturation phase answered nothing, so there is no
// rate to take half of.
var errNoSaturation = errors.New("no saturation rate measured (no 2xx answers)")

// halfRate is the rate of a stream that sends the kinds whose saturation
// rates (measured in the same round) are given, in equal shares, and loads
// the stack to halfLoad. Load counts each kind's share of a capacity they
// share, the sum over kinds of offered ÷ saturation, so the rate is
// halfLoad·n ÷ Σ 1/sᵢ: half of s for one kind alone; for transfers
// saturating at 300/s mixed with history reads saturating at 600/s, 200/s,
// 100/s of each, a third of the one and a sixth of the other.
func halfRate(saturations ...float64) (float64, error) {
	if len(saturations) == 0 {
		return 0, errNoSaturation
	}
	var inverse float64
	for _, s := range saturations {
		if !(s > 0) { // written so that NaN fails too
			return 0, errNoSaturation
		}
		inverse += 1 / s
	}
	return min(halfLoad*float64(len(saturations))/inverse, load.MaxRate), nil
}

// halfMedians are one stack's medians over the rounds of its half-load
// phases, and what went wrong in them.
type halfMedians struct {
	Transfers, Reads, History time.Duration // p99 of each kind alone
	// The mixed phase: transfers and history reads in equal shares, at the same load.
	MixTransfersP50, MixTransfersP99 time.Duration
	MixHistoryP50, MixHistoryP99     time.Duration
	// Failed counts, over every round, the half-load arrivals that got no
	// 2xx answer (other statuses, transport errors, dropped): latencies of
	// the answers alone would flatter a stack that failed some.
	Failed int
}

// newHalfMedians takes stack st's half-load rows from results.
func newHalfMedians(results []result, st string) halfMedians {
	p50 := func(kind string) time.Duration {
		return time.Duration(medianOf(results, st, kind, func(r result) (float64, bool) { return float64(r.P50), true }))
	}
	p99 := func(kind string) time.Duration {
		return time.Duration(medianOf(results, st, kind, func(r result) (float64, bool) { return float64(r.P99), true }))
	}
	h := halfMedians{
		Transfers: p99(kindHalfTransfers), Reads: p99(kindHalfReads), History: p99(kindHalfHistory),
		MixTransfersP50: p50(kindMixTransfers), MixTransfersP99: p99(kindMixTransfers),
		MixHistoryP50: p50(kindMixHistory), MixHistoryP99: p99(kindMixHistory),
	}
	for _, r := range results {
		if r.Stack == st && slices.Contains(halfKinds, r.Kind) {
			h.Failed += r.NotOK + r.Dropped
		}
	}
	return h
}

// problems judges h against issue 15 point 5 and says what fails it;
// none means it passes. A p99 of zero is a phase that answered nothing.
func (h halfMedians) problems() []string {
	var out []string
	for _, k := range []struct {
		name string
		p99  time.Duration
	}{{"transfers", h.Transfers}, {"balance reads", h.Reads}, {"history reads", h.History}} {
		switch {
		case k.p99 <= 0:
			out = append(out, "no "+k.name+" answered at half saturation")
		case k.p99 > latencyBar:
			out = append(out, fmt.Sprintf("%s p99 %s > %s", k.name, ms(k.p99), ms(latencyBar)))
		}
	}
	switch {
	case h.MixTransfersP99 <= 0 || h.MixHistoryP99 <= 0:
		out = append(out, "the mixed phase answered no transfer or no history read")
	case h.MixHistoryP50 > h.MixTransfersP50 || h.MixHistoryP99 > h.MixTransfersP99:
		out = append(out, fmt.Sprintf("history reads slower than transfers at the same load (p50 %s vs %s, p99 %s vs %s)",
			ms(h.MixHistoryP50), ms(h.MixTransfersP50), ms(h.MixHistoryP99), ms(h.MixTransfersP99)))
	}
	if h.Failed > 0 {
		out = append(out, fmt.Sprintf("%d half-load arrivals not answered 2xx (other status, no answer, or dropped)", h.Failed))
	}
	return out
}

// verdict is the line printed under the medians for one stack.
func (h halfMedians) verdict() string {
	if p := h.problems(); len(p) > 0 {
		return "FAIL: " + strings.Join(p, "; ")
	}
	return fmt.Sprintf("PASS: p99 at half saturation ≤ %s (transfers %s, balance reads %s, history reads %s); history reads no slower than transfers at the same load",
		ms(latencyBar), ms(h.Transfers), ms(h.Reads), ms(h.History))
}

// writeHalf prints, per stack, the mixed phase's two kinds side by side and
// the verdict against issue 15 point 5.
func writeHalf(w io.Writer, s settings, results []result) {
	fmt.Fprintf(w, "\nat the same load (half saturation, transfers and history reads in equal shares), medians over %d rounds\n", s.Rounds)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stack\ttransfers/s\ttransfer p50\tp99\thistory/s\thistory p50\tp99\t")
	for _, st := range s.stackLabels() {
		h := newHalfMedians(results, st)
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%.1f\t%s\t%s\t\n", st, median(rates(results, st, kindMixTransfers)),
			ms(h.MixTransfersP50), ms(h.MixTransfersP99), median(rates(results, st, kindMixHistory)), ms(h.MixHistoryP50), ms(h.MixHistoryP99))
	}
	_ = tw.Flush()
	for _, st := range s.stackLabels() {
		fmt.Fprintf(w, "issue 15 point 5, %s: %s\n", st, newHalfMedians(results, st).verdict())
	}
}
