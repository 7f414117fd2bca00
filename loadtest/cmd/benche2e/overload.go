package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
)

// Overload thresholds (issue 15): service is back within recoveryBudget of
// the arrivals stopping, judged by recoveryStreak consecutive probe
// transfers each answered 2xx within recoveryLatency.
const (
	recoveryBudget  = 5 * time.Second
	recoveryLatency = 100 * time.Millisecond
	recoveryStreak  = 3
	recoveryGiveUp  = 30 * time.Second
	// servedP99 bounds the latency of what the stack chose to serve while
	// overloaded: a stack that queues instead of shedding serves everything
	// late (seconds, up to the client's timeout) rather than most on time.
	servedP99        = time.Second
	probeEvery       = 100 * time.Millisecond
	healthEvery      = 200 * time.Millisecond
	healthTimeout    = 2 * time.Second
	overloadMultiple = 3
)

// overloadResult is what the overload phase saw.
type overloadResult struct {
	Offered, Saturation float64
	Summary             report.Summary
	Shed                int64 // 429 and 503 answers
	ShedNoRetryAfter    int64 // of those, without a Retry-After header
	Other5xx            int64 // 5xx other than 503
	Health              map[string]*probeStats
	Recovery            time.Duration
	Recovered           bool
}

type probeStats struct {
	Sent, Failed int
	Max          time.Duration
}

// countingTransport counts the shedding answers and whether they say when
// to come back.
type countingTransport struct {
	next                        http.RoundTripper
	shed, shedNoRetry, other5xx atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		c.shed.Add(1)
		if _, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil {
			c.shedNoRetry.Add(1)
		}
	case resp.StatusCode >= 500:
		c.other5xx.Add(1)
	}
	return resp, nil
}

// overload offers st overloadMultiple × saturation transfers per second for
// the phase's duration while probing its health endpoints, then measures
// how long after the arrivals stop transfers are served promptly again.
func (l *lab) overload(ctx context.Context, s settings, st *stack, saturation float64, log io.Writer) (*overloadResult, error) {
	o := &overloadResult{Saturation: saturation, Offered: min(overloadMultiple*saturation, load.MaxRate), Health: map[string]*probeStats{}}
	if saturation <= 0 {
		return nil, fmt.Errorf("no saturation measured to overload")
	}
	fmt.Fprintf(log, "overload: offering %.0f transfers/s (%.1f× the measured %.0f/s) for %s …\n", o.Offered, o.Offered/saturation, saturation, s.Duration)
	ct := &countingTransport{next: st.client.Transport}
	client := &http.Client{Transport: ct, Timeout: st.client.Timeout, CheckRedirect: st.client.CheckRedirect}
	probe, err := newClient(st.prepared.CAFile, 4)
	if err != nil {
		return nil, err
	}
	defer probe.CloseIdleConnections()

	start := time.Now()
	windowEnd := start.Add(s.Duration)
	loadDone := make(chan struct{})
	var wg sync.WaitGroup
	for _, path := range []string{"/healthz", "/readyz"} {
		ps := &probeStats{}
		o.Health[path] = ps
		wg.Go(func() { probeHealth(ctx, probe, st, path, loadDone, ps) })
	}
	recovered := make(chan time.Duration, 1)
	wg.Go(func() {
		d, ok := probeRecovery(ctx, probe, st, windowEnd)
		if ok {
			recovered <- d
		}
	})
	rec := report.NewRecorder()
	gen := transfersOnly{prefix: "bench-" + st.runID + "-overload-", users: st.users}
	elapsed, runErr := load.Run(ctx, client, st.base, gen, load.Options{Rate: o.Offered, Duration: s.Duration, MaxInFlight: max(s.MaxInFlight, overloadInFlight)}, rec)
	close(loadDone)
	wg.Wait()
	if runErr != nil {
		return nil, runErr
	}
	o.Summary = rec.Summarize(elapsed)
	o.Shed, o.ShedNoRetryAfter, o.Other5xx = ct.shed.Load(), ct.shedNoRetry.Load(), ct.other5xx.Load()
	select {
	case d := <-recovered:
		o.Recovery, o.Recovered = d, true
	default:
	}
	return o, nil
}

// probeHealth GETs path every healthEvery until done, each with its own
// deadline, and counts what did not answer 200 in time.
func probeHealth(ctx context.Context, c *http.Client, st *stack, path string, done <-chan struct{}, ps *probeStats) {
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, healthTimeout)
		t0 := time.Now()
		resp, err := load.Send(pctx, c, st.base, load.Request{Endpoint: path, Method: http.MethodGet, Path: path})
		cancel()
		ps.Sent++
		ps.Max = max(ps.Max, time.Since(t0))
		if err != nil || resp.Status != http.StatusOK {
			ps.Failed++
		}
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probeRecovery waits for the end of the arrival window, then sends a probe
// transfer every probeEvery, and returns how long after the window the
// first of recoveryStreak consecutive prompt 2xx answers was sent.
func probeRecovery(ctx context.Context, c *http.Client, st *stack, windowEnd time.Time) (time.Duration, bool) {
	timer := time.NewTimer(time.Until(windowEnd))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return 0, false
	case <-timer.C:
	}
	gen := transfersOnly{prefix: "bench-" + st.runID + "-recovery-", users: st.users}
	streak, first := 0, time.Time{}
	for i := 0; time.Since(windowEnd) < recoveryGiveUp; i++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		t0 := time.Now()
		resp, err := load.Send(pctx, c, st.base, gen.Next(i))
		cancel()
		if err == nil && resp.Status >= 200 && resp.Status < 300 && time.Since(t0) <= recoveryLatency {
			if streak == 0 {
				first = t0
			}
			if streak++; streak == recoveryStreak {
				return max(first.Sub(windowEnd), 0), true
			}
		} else {
			streak = 0
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(max(probeEvery-time.Since(t0), 0)):
		}
	}
	return 0, false
}

// ok says whether the stack met issue 15's bar for graceful overload.
func (o *overloadResult) ok() bool {
	healthy := true
	for _, ps := range o.Health {
		healthy = healthy && ps.Failed == 0
	}
	return o.Recovered && o.Recovery <= recoveryBudget && o.ShedNoRetryAfter == 0 && o.Other5xx == 0 &&
		o.Summary.TransportErrors == 0 && healthy && o.servedP99() <= servedP99
}

// servedP99 is the p99 latency of the transfers answered, whatever the status.
func (o *overloadResult) servedP99() time.Duration {
	var p99 time.Duration
	for _, e := range o.Summary.Endpoints {
		p99 = max(p99, e.Latency.P99)
	}
	return p99
}

func (o *overloadResult) write(w io.Writer) {
	fmt.Fprintf(w, "\noverload: %.0f transfers/s offered (%.1f× the measured saturation of %.0f/s; %d× unless capped at the engine's %.0f/s) for the phase's duration\n", o.Offered, o.Offered/o.Saturation, o.Saturation, overloadMultiple, load.MaxRate)
	for _, e := range o.Summary.Endpoints {
		fmt.Fprintf(w, "  %s: %d answered (%s), p50 %s, p99 %s, max %s; %d arrivals dropped by the generator (past -max-in-flight)\n",
			e.Endpoint, e.Count, report.FormatCodes(e.Codes), ms(e.Latency.P50), ms(e.Latency.P99), ms(e.Latency.Max), o.Summary.Dropped)
	}
	fmt.Fprintf(w, "  shed (429/503): %d, of which without a Retry-After: %d; other 5xx: %d; no answer within the client's 10 s (timeouts, resets): %d\n",
		o.Shed, o.ShedNoRetryAfter, o.Other5xx, o.Summary.TransportErrors)
	for _, path := range slices.Sorted(maps.Keys(o.Health)) {
		ps := o.Health[path]
		fmt.Fprintf(w, "  %s during the overload: %d probes, %d not 200 within %s, slowest %s\n", path, ps.Sent, ps.Failed, healthTimeout, ms(ps.Max))
	}
	if o.Recovered {
		fmt.Fprintf(w, "  recovered %s after the arrivals stopped (%d probe transfers in a row answered 2xx within %s); budget %s\n",
			o.Recovery.Round(time.Millisecond), recoveryStreak, recoveryLatency, recoveryBudget)
	} else {
		fmt.Fprintf(w, "  NOT recovered within %s of the arrivals stopping\n", recoveryGiveUp)
	}
	verdict := "PASS"
	if !o.ok() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "  %s: excess shed with 429/503 + Retry-After rather than queued (answers' p99 %s, bound %s), health answered, recovered within %s, nothing timed out\n",
		verdict, ms(o.servedP99()), ms(servedP99), recoveryBudget)
}
