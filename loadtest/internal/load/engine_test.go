package load_test

import (
	"context"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
)

// seqGen records the indices it was asked for.
type seqGen struct {
	mu   sync.Mutex
	seen []int
}

func (g *seqGen) Next(i int) load.Request {
	g.mu.Lock()
	g.seen = append(g.seen, i)
	g.mu.Unlock()
	return load.Request{Endpoint: "GET /ping", Method: http.MethodGet, Path: "/ping"}
}

func newServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *url.URL) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return srv, u
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    load.Options
		ok   bool
	}{
		{"typical", load.Options{Rate: 50, Duration: 30 * time.Second}, true},
		{"at the bounds", load.Options{Rate: load.MaxRate, Duration: load.MaxDuration, MaxInFlight: load.MaxInFlight, Grace: load.DrainGrace}, true},
		{"zero rate", load.Options{Rate: 0, Duration: time.Second}, false},
		{"negative rate", load.Options{Rate: -1, Duration: time.Second}, false},
		{"NaN rate", load.Options{Rate: math.NaN(), Duration: time.Second}, false},
		{"infinite rate", load.Options{Rate: math.Inf(1), Duration: time.Second}, false},
		{"rate over the cap", load.Options{Rate: load.MaxRate + 1, Duration: time.Second}, false},
		{"zero duration", load.Options{Rate: 10}, false},
		{"negative duration", load.Options{Rate: 10, Duration: -time.Second}, false},
		{"over ten minutes", load.Options{Rate: 10, Duration: load.MaxDuration + time.Nanosecond}, false},
		{"a year", load.Options{Rate: 1, Duration: 365 * 24 * time.Hour}, false},
		{"less than one request", load.Options{Rate: 1, Duration: 500 * time.Millisecond}, false},
		{"negative in flight", load.Options{Rate: 10, Duration: time.Second, MaxInFlight: -1}, false},
		{"in flight over the cap", load.Options{Rate: 10, Duration: time.Second, MaxInFlight: load.MaxInFlight + 1}, false},
		{"grace over the cap", load.Options{Rate: 10, Duration: time.Second, Grace: time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.o.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tt.o, err, tt.ok)
			}
		})
	}
}

func TestRequestsAndDueAt(t *testing.T) {
	t.Parallel()
	o := load.Options{Rate: 40, Duration: 2500 * time.Millisecond}
	if got, want := o.Requests(), 100; got != want {
		t.Errorf("Requests() = %d, want rate × duration = %d", got, want)
	}
	if got := o.DueAt(40); got != time.Second {
		t.Errorf("DueAt(rate) = %v, want 1s", got)
	}
	slow := load.Options{Rate: 3, Duration: load.MaxDuration}
	for i := 1; i < slow.Requests(); i++ {
		if slow.DueAt(i) <= slow.DueAt(i-1) {
			t.Fatalf("DueAt(%d) = %v, not after DueAt(%d) = %v", i, slow.DueAt(i), i-1, slow.DueAt(i-1))
		}
	}
	if last := slow.DueAt(slow.Requests() - 1); last >= slow.Duration {
		t.Errorf("last arrival due at %v, want inside the %v window", last, slow.Duration)
	}
}

func TestRunSendsExactlyTheDueRequestsInOrder(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	gen := &seqGen{}
	o := load.Options{Rate: 200, Duration: 250 * time.Millisecond}
	rec := report.NewRecorder()
	elapsed, err := load.Run(t.Context(), srv.Client(), base, gen, o, rec)
	if err != nil {
		t.Fatalf("Run() error = %v", err)
	}
	if got := hits.Load(); got != int64(o.Requests()) {
		t.Errorf("server saw %d requests, want %d", got, o.Requests())
	}
	for i, n := range gen.seen {
		if i != n {
			t.Fatalf("Next called with %v, want 0, 1, 2 … in order", gen.seen)
		}
	}
	// Pacing shows in the lower bound; the upper one is the engine's own
	// bound (window + grace), not a timing goal, which a busy machine would
	// miss: the tests of this repository run beside other work.
	if elapsed < o.DueAt(o.Requests()-1) || elapsed > o.Duration+load.DrainGrace {
		t.Errorf("Run took %v, want at least %v (arrivals are paced, not sent at once) and at most window + grace", elapsed, o.DueAt(o.Requests()-1))
	}
	if s := rec.Summarize(elapsed); s.Total != o.Requests() || s.Endpoints[0].Codes[200] != o.Requests() {
		t.Errorf("report = %+v, want %d × 200", s, o.Requests())
	}
}

// A 429 is recorded with the problem its body names, so the report can say
// whether the gateway's limits or a service refused.
func TestRunRecordsWhoThrottled(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusTooManyRequests)
		if n.Add(1)%2 == 0 {
			_, _ = io.WriteString(w, `{"type":"urn:bastion:problem:hash-pool-busy","status":429}`)
		} else {
			_, _ = io.WriteString(w, `{"type":"urn:bastion:problem:auth","status":429}`)
		}
	})
	o := load.Options{Rate: 100, Duration: 100 * time.Millisecond}
	rec := report.NewRecorder()
	elapsed, err := load.Run(t.Context(), srv.Client(), base, &seqGen{}, o, rec)
	if err != nil {
		t.Fatalf("Run() error = %v", err)
	}
	s := rec.Summarize(elapsed)
	if s.Throttled != o.Requests() || s.ThrottledBy["auth"]+s.ThrottledBy["hash-pool-busy"] != o.Requests() || s.ThrottledBy["auth"] == 0 || s.ThrottledBy["hash-pool-busy"] == 0 {
		t.Errorf("report throttled %d by %v, want all %d split between auth and hash-pool-busy", s.Throttled, s.ThrottledBy, o.Requests())
	}
}

// An open model keeps sending at the arrival rate however slow the server
// is; a closed loop would wait for each answer and hide the slowness.
func TestRunDoesNotSlowDownWithTheServer(t *testing.T) {
	t.Parallel()
	const serverDelay = 300 * time.Millisecond
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(serverDelay) })
	o := load.Options{Rate: 100, Duration: 300 * time.Millisecond}
	rec := report.NewRecorder()
	elapsed, err := load.Run(t.Context(), srv.Client(), base, &seqGen{}, o, rec)
	if err != nil {
		t.Fatalf("Run() error = %v", err)
	}
	if closedLoop := time.Duration(o.Requests()) * serverDelay; elapsed > closedLoop/3 {
		t.Errorf("Run took %v for %d requests at %v each, want far less than a closed loop's %v", elapsed, o.Requests(), serverDelay, closedLoop)
	}
	if s := rec.Summarize(elapsed); s.Endpoints[0].Latency.P50 < serverDelay {
		t.Errorf("p50 = %v, want at least the server's %v", s.Endpoints[0].Latency.P50, serverDelay)
	}
}

func TestRunDropsArrivalsBeyondMaxInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var hits atomic.Int64
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1); <-release })
	o := load.Options{Rate: 100, Duration: 200 * time.Millisecond, MaxInFlight: 3}
	rec := report.NewRecorder()
	done := make(chan time.Duration)
	go func() {
		elapsed, _ := load.Run(t.Context(), srv.Client(), base, &seqGen{}, o, rec)
		done <- elapsed
	}()
	// Every arrival beyond the three in flight is dropped as it comes; once
	// all of them are, the schedule is over and no fourth can still start.
	for deadline := time.Now().Add(10 * time.Second); rec.Summarize(0).Dropped < o.Requests()-3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("dropped %d arrivals in 10 s, want %d", rec.Summarize(0).Dropped, o.Requests()-3)
		}
	}
	// The three admitted requests may still be on their way (a TLS
	// handshake each) when the last drop is counted: wait for them.
	for deadline := time.Now().Add(10 * time.Second); hits.Load() < 3 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	if got := hits.Load(); got != 3 {
		t.Errorf("server saw %d requests in flight, want MaxInFlight = 3", got)
	}
	close(release)
	s := rec.Summarize(<-done)
	if s.Dropped != o.Requests()-3 || s.Total != 3 {
		t.Errorf("report dropped %d sent %d, want %d dropped and 3 sent", s.Dropped, s.Total, o.Requests()-3)
	}
}

func TestRunIsBoundedWhenTheServerHangs(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(hang) })
	client := srv.Client() // no client timeout: only the run's own bound can end it
	o := load.Options{Rate: 50, Duration: 100 * time.Millisecond, Grace: 200 * time.Millisecond}
	rec := report.NewRecorder()
	start := time.Now()
	_, err := load.Run(t.Context(), client, base, &seqGen{}, o, rec)
	if took := time.Since(start); took > o.Duration+o.Grace+time.Second {
		t.Errorf("Run against a hanging server took %v, want at most about %v", took, o.Duration+o.Grace)
	}
	if err == nil {
		t.Error("Run against a hanging server returned no error, want the deadline")
	}
	if s := rec.Summarize(time.Second); s.TransportErrors != o.Requests() {
		t.Errorf("transport errors = %d, want all %d requests cut off", s.TransportErrors, o.Requests())
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	o := load.Options{Rate: 20, Duration: time.Minute}
	rec := report.NewRecorder()
	start := time.Now()
	_, err := load.Run(ctx, srv.Client(), base, &seqGen{}, o, rec)
	if time.Since(start) > 2*time.Second || err == nil {
		t.Errorf("Run after cancel took %v with error %v, want a prompt stop with an error", time.Since(start), err)
	}
	if s := rec.Summarize(time.Second); s.Total >= o.Requests() || s.Total == 0 {
		t.Errorf("cancelled run sent %d of %d, want some but not all", s.Total, o.Requests())
	}
}

func TestRunRefusesInvalidOptions(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	_, err := load.Run(t.Context(), srv.Client(), base, &seqGen{}, load.Options{Rate: 10, Duration: time.Hour}, report.NewRecorder())
	if err == nil || hits.Load() != 0 {
		t.Errorf("Run(1 hour) = %v after %d requests, want a refusal before any request", err, hits.Load())
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, query, ua, ct, body string
	}
	got := make(chan seen, 1)
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.UserAgent(), r.Header.Get("Content-Type"), string(b)}
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "short and stout")
	})
	req := load.Request{Method: http.MethodPost, Path: "/v1/x?pageSize=5", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"a":1}`)}
	resp, err := load.Send(t.Context(), srv.Client(), base, req)
	if err != nil {
		t.Fatalf("Send() error = %v", err)
	}
	want := seen{"POST", "/v1/x", "pageSize=5", load.UserAgent, "application/json", `{"a":1}`}
	if s := <-got; s != want {
		t.Errorf("server saw %+v, want %+v", s, want)
	}
	if resp.Status != http.StatusTeapot || string(resp.Body) != "short and stout" || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("Send() = %d %q %v", resp.Status, resp.Body, resp.Header)
	}
}

// A generator's path must not be able to aim a request at another host.
func TestSendRefusesPathsThatLeaveTheTarget(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	for _, path := range []string{"https://evil.example/x", "//evil.example/x", "relative/path", "", "http://127.0.0.1:1/x", "//user@evil.example/",
		"///evil.example/x", "@evil.example/x", ":1/x", ".evil.example/x", "/%zz", "/x\x00", " /x", "\\evil.example/x"} {
		if _, err := load.Send(t.Context(), srv.Client(), base, load.Request{Method: http.MethodGet, Path: path}); err == nil {
			t.Errorf("Send(path %q) succeeded, want a refusal", path)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("server saw %d requests, want none", hits.Load())
	}
}

// A path that only looks like it names a host still goes to the target.
func TestSendKeepsLookalikePathsOnTheTarget(t *testing.T) {
	t.Parallel()
	paths := make(chan string, 4)
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) { paths <- r.Host + " " + r.URL.RequestURI() })
	for _, path := range []string{"/x@evil.example/y", "/evil.example:443/", "/a//b", "/?next=//evil.example"} {
		if _, err := load.Send(t.Context(), srv.Client(), base, load.Request{Method: http.MethodGet, Path: path}); err != nil {
			t.Fatalf("Send(path %q) = %v", path, err)
		}
		if got, want := <-paths, base.Host+" "+path; got != want {
			t.Errorf("Send(path %q): server saw %q, want %q", path, got, want)
		}
	}
}

// Send may send a caller's header without copying it, but never writes to
// it: generators can hand the same header to requests in flight together.
func TestSendLeavesTheCallersHeaderAlone(t *testing.T) {
	t.Parallel()
	uas := make(chan string, 3)
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) { uas <- r.UserAgent() })
	without := http.Header{"Accept": {"application/json"}}
	with := http.Header{"User-Agent": {"custom/1"}}
	for _, h := range []http.Header{without, with, nil} {
		if _, err := load.Send(t.Context(), srv.Client(), base, load.Request{Method: http.MethodGet, Path: "/", Header: h}); err != nil {
			t.Fatalf("Send() error = %v", err)
		}
	}
	if got := [3]string{<-uas, <-uas, <-uas}; got != [3]string{load.UserAgent, "custom/1", load.UserAgent} {
		t.Errorf("User-Agents seen = %q, want the default, the caller's, the default", got)
	}
	if len(without) != 1 || len(with) != 1 || with.Get("User-Agent") != "custom/1" {
		t.Errorf("caller's headers after Send: %v and %v, want them unchanged", without, with)
	}
}

// A response whose body breaks off is not an answer: the run counts it as a
// transport error, with no status and no latency, as when no header came.
func TestRunCountsABodyCutShortAsATransportError(t *testing.T) {
	t.Parallel()
	srv, base := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"account":`)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	o := load.Options{Rate: 50, Duration: 100 * time.Millisecond}
	rec := report.NewRecorder()
	elapsed, err := load.Run(t.Context(), srv.Client(), base, &seqGen{}, o, rec)
	if err != nil {
		t.Fatalf("Run() error = %v", err)
	}
	if s := rec.Summarize(elapsed); s.TransportErrors != o.Requests() || s.Endpoints[0].Codes[200] != 0 || s.Endpoints[0].Latency.Max != 0 {
		t.Errorf("report %+v, want all %d cut-short answers counted as transport errors", s, o.Requests())
	}
}
