package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/report"
)

// Bounds on a run. A load generator pointed at a bank must not be able to
// run away: ten minutes is plenty to see a steady state, and the rate cap
// keeps one mistyped flag from becoming a denial of service. The cap is
// 20,000 arrivals/s so that bench-e2e can offer three times what a quiet
// 2-core machine serves (3,500–3,750 transfers/s) in its overload phase;
// arrivals past MaxInFlight are dropped, not sent.
const (
	MaxDuration     = 10 * time.Minute
	MaxRate         = 20000.0
	MaxInFlight     = 1000
	DefaultInFlight = 256
	// DrainGrace is how long requests still in flight when the arrival
	// window closes may take before they are cancelled.
	DrainGrace = 10 * time.Second
)

// Generator produces the stream of a scenario.
type Generator interface {
	// Next returns the i-th request (i from 0). The engine calls it from a
	// single goroutine, in order, so implementations need no locking.
	Next(i int) Request
}

// Options shape a run.
type Options struct {
	Rate        float64       // arrivals per second
	Duration    time.Duration // length of the arrival window
	MaxInFlight int           // requests outstanding at once; beyond it arrivals are dropped (0: DefaultInFlight)
	Grace       time.Duration // how long stragglers may run after the window (0: DrainGrace)
}

// Validate refuses options outside the bounds above.
func (o Options) Validate() error {
	var problems []error
	if !(o.Rate > 0 && o.Rate <= MaxRate) { // written so that NaN fails too
		problems = append(problems, fmt.Errorf("rate %.2f/s must be in (0, %.0f]", o.Rate, MaxRate))
	}
	if o.Duration <= 0 || o.Duration > MaxDuration {
		problems = append(problems, fmt.Errorf("duration %s must be in (0, %s]", o.Duration, MaxDuration))
	}
	if o.Grace < 0 || o.Grace > DrainGrace {
		problems = append(problems, fmt.Errorf("grace %s must be in [0, %s]", o.Grace, DrainGrace))
	}
	if o.MaxInFlight < 0 || o.MaxInFlight > MaxInFlight {
		problems = append(problems, fmt.Errorf("max in flight %d must be in [0, %d]", o.MaxInFlight, MaxInFlight))
	}
	if len(problems) == 0 && o.Requests() < 1 {
		problems = append(problems, errors.New("rate × duration is less than one request"))
	}
	return errors.Join(problems...)
}

// Requests is the number of arrivals in the window: rate × duration, rounded down.
func (o Options) Requests() int {
	return int(o.Rate * o.Duration.Seconds())
}

// DueAt returns when arrival i is due, counted from the start of the run.
// It is computed from i rather than accumulated, so rounding never drifts.
func (o Options) DueAt(i int) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / o.Rate)
}

// Run sends Requests() requests from gen at the constant rate, each in its
// own goroutine, records every outcome in rec, and returns once all have
// finished, the time from the first arrival to the last completion. It never
// runs longer than Duration + Grace: whatever is still in flight then
// is cancelled and recorded as a transport error.
func Run(ctx context.Context, client *http.Client, base *url.URL, gen Generator, o Options, rec *report.Recorder) (time.Duration, error) {
	if err := o.Validate(); err != nil {
		return 0, err
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultInFlight
	}
	if o.Grace == 0 {
		o.Grace = DrainGrace
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration+o.Grace)
	defer cancel()
	slots := make(chan struct{}, o.MaxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := range o.Requests() {
		if !waitUntil(ctx, timer, start.Add(o.DueAt(i))) {
			break
		}
		req := gen.Next(i)
		select {
		case slots <- struct{}{}:
		default:
			rec.Drop()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			rec.Record(measure(ctx, client, base, req))
		})
	}
	wg.Wait()
	return time.Since(start), ctx.Err()
}

// waitUntil sleeps until t and reports whether the run may go on.
func waitUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// measure sends one request and times it until the body was read.
func measure(ctx context.Context, client *http.Client, base *url.URL, req Request) report.Outcome {
	t0 := time.Now()
	o := report.Outcome{Endpoint: req.Endpoint, Expect: req.Expect}
	resp, err := do(ctx, client, base, req)
	if err == nil {
		var problem string
		if problem, err = drain(resp); err == nil {
			o.Status, o.Problem = resp.StatusCode, problem
		}
	}
	o.Latency = time.Since(t0)
	return o
}

// drain reads resp's body to its end, closes it, and returns the problem a
// 429 names. Only a 429's body is kept; any other goes to io.Discard, which
// reads into pooled buffers, so an answer costs no buffer of its own.
func drain(resp *http.Response) (problem string, err error) {
	defer resp.Body.Close()
	if resp.StatusCode == report.StatusThrottled {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
		if err != nil {
			return "", err
		}
		problem = report.ProblemName(b)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return problem, err
}
