package edge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
)

// answerDeadline bounds how long a test waits for an answer the admission
// control must give on its own. It is no performance goal: a request that
// is queued without bound would never be answered at all, since the
// requests holding the slots are released only by the test.
const answerDeadline = 10 * time.Second

// backend stands in for everything behind the edge. /hold requests enter
// (announced on entered) and stay until the test releases them or their
// client goes; /panic panics with the value in panicWith; every other path
// answers 200 at once. inFlight and peak count the requests inside.
type backend struct {
	entered   chan struct{}
	release   chan struct{}
	panicWith any
	inFlight  atomic.Int64
	peak      atomic.Int64
}

func newBackend() *backend {
	return &backend{entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
	}
	switch r.URL.Path {
	case "/hold":
		b.entered <- struct{}{}
		select {
		case <-b.release:
		case <-r.Context().Done():
			return
		}
	case "/panic":
		panic(b.panicWith)
	}
	w.WriteHeader(http.StatusOK)
}

// countingCounters records the rate-limit reasons it is told.
type countingCounters struct {
	mu      sync.Mutex
	limited map[string]int
}

func (c *countingCounters) TokenRejected(context.Context, string)    {}
func (c *countingCounters) AuthzDenied(context.Context, string)      {}
func (c *countingCounters) ValidationFailed(context.Context, string) {}
func (c *countingCounters) RateLimited(_ context.Context, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limited == nil {
		c.limited = map[string]int{}
	}
	c.limited[reason]++
}

func (c *countingCounters) count(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limited[reason]
}

// admissionRig is one edge with a small bound in front of a backend.
type admissionRig struct {
	t        *testing.T
	h        http.Handler
	back     *backend
	counters *countingCounters
	held     sync.WaitGroup
}

func newAdmissionRig(t *testing.T, size int, wait time.Duration) *admissionRig {
	back := newBackend()
	counters := &countingCounters{}
	h := edge.Middleware(edge.Config{Counters: counters, Admission: edge.Admission{MaxInFlight: size, Wait: wait}}, back)
	rig := &admissionRig{t: t, h: h, back: back, counters: counters}
	t.Cleanup(rig.held.Wait)
	return rig
}

// do serves one request and returns its answer.
func (rig *admissionRig) do(ctx context.Context, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	rig.h.ServeHTTP(rec, r)
	return rec
}

// async serves one request in its own goroutine; the answer arrives on the
// channel.
func (rig *admissionRig) async(ctx context.Context, path string) <-chan *httptest.ResponseRecorder {
	out := make(chan *httptest.ResponseRecorder, 1)
	rig.held.Add(1)
	go func() {
		defer rig.held.Done()
		out <- rig.do(ctx, path)
	}()
	return out
}

// hold fills n slots with /hold requests that stay until releaseAll.
func (rig *admissionRig) hold(n int) []<-chan *httptest.ResponseRecorder {
	rig.t.Helper()
	var answers []<-chan *httptest.ResponseRecorder
	for range n {
		answers = append(answers, rig.async(context.Background(), "/hold"))
		rig.waitEntered()
	}
	return answers
}

func (rig *admissionRig) waitEntered() {
	rig.t.Helper()
	select {
	case <-rig.back.entered:
	case <-time.After(answerDeadline):
		rig.t.Fatal("a request with a free slot never reached the backend")
	}
}

// releaseOne lets one held request (any of them) finish.
func (rig *admissionRig) releaseOne() { rig.back.release <- struct{}{} }

// releaseAll lets every request in held finish and checks each answered 200.
func (rig *admissionRig) releaseAll(held []<-chan *httptest.ResponseRecorder) {
	rig.t.Helper()
	for range held {
		rig.releaseOne()
	}
	for _, ch := range held {
		if rec := await(rig.t, ch, "a held request"); rec.Code != http.StatusOK {
			rig.t.Errorf("held request answered %d, want 200", rec.Code)
		}
	}
}

func await(t *testing.T, ch <-chan *httptest.ResponseRecorder, what string) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case rec := <-ch:
		return rec
	case <-time.After(answerDeadline):
		t.Fatalf("%s: no answer: the request is queued without bound", what)
		return nil
	}
}

// awaitAny waits for the first of chs to answer, checks it is a 200, and
// returns the others.
func awaitAny(t *testing.T, chs []<-chan *httptest.ResponseRecorder) []<-chan *httptest.ResponseRecorder {
	t.Helper()
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(time.After(answerDeadline))}}
	for _, ch := range chs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	i, v, _ := reflect.Select(cases)
	if i == 0 {
		t.Fatal("no released request answered")
	}
	if rec := v.Interface().(*httptest.ResponseRecorder); rec.Code != http.StatusOK {
		t.Errorf("released request answered %d, want 200", rec.Code)
	}
	return append(chs[:i-1:i-1], chs[i:]...)
}

func assertShed(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	p := assertProblem(t, rec, http.StatusServiceUnavailable)
	if p.Code != "UNAVAILABLE" || p.Type != "urn:bastion:problem:overloaded" {
		t.Errorf("problem = %+v, want code UNAVAILABLE and type urn:bastion:problem:overloaded", p)
	}
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if strings.Contains(p.Detail, "capacity") {
		t.Errorf("detail %q shows the internal message; want the generic one", p.Detail)
	}
}

// TestAdmission holds every slot with requests the backend keeps, then
// checks what happens to the next request, with no sleep anywhere: the held
// requests end only when the test releases them.
func TestAdmission(t *testing.T) {
	t.Parallel()
	const size = 2
	tests := []struct {
		name string
		wait time.Duration
		run  func(t *testing.T, rig *admissionRig)
	}{
		{"beyond the bound: 503 with Retry-After after the wait, counted", 20 * time.Millisecond, func(t *testing.T, rig *admissionRig) {
			held := rig.hold(size)
			start := time.Now()
			rec := await(t, rig.async(context.Background(), "/v1/accounts"), "a request past the bound")
			if waited := time.Since(start); waited < 20*time.Millisecond {
				t.Errorf("shed after %s, before the %s wait for a slot", waited, 20*time.Millisecond)
			}
			assertShed(t, rec)
			if n := rig.counters.count(edge.ReasonOverloaded); n != 1 {
				t.Errorf("rate-limited %q counted %d times, want 1", edge.ReasonOverloaded, n)
			}
			if n := rig.back.peak.Load(); n != size {
				t.Errorf("backend saw %d requests at once, want the bound %d", n, size)
			}
			rig.releaseAll(held)
		}},
		{"a slot freed before the next request lets it in", 20 * time.Millisecond, func(t *testing.T, rig *admissionRig) {
			held := rig.hold(size)
			rig.releaseOne()
			held = awaitAny(t, held) // the bound is full but for that one slot
			next := rig.async(context.Background(), "/hold")
			rig.waitEntered()
			rig.releaseAll(append(held, next))
			if n := rig.counters.count(edge.ReasonOverloaded); n != 0 {
				t.Errorf("%d requests shed, want none", n)
			}
		}},
		{"a slot freed while the next request waits lets it in", time.Hour, func(t *testing.T, rig *admissionRig) {
			held := rig.hold(size)
			next := rig.async(context.Background(), "/hold")
			rig.releaseOne() // frees a slot, whether next is already waiting or not yet
			rig.waitEntered()
			rig.releaseOne()
			rig.releaseOne()
			for _, ch := range append(held, next) {
				if rec := await(t, ch, "a request"); rec.Code != http.StatusOK {
					t.Errorf("answered %d, want 200", rec.Code)
				}
			}
			if n := rig.counters.count(edge.ReasonOverloaded); n != 0 {
				t.Errorf("%d requests shed, want none", n)
			}
		}},
		{"health and readiness answer while every slot is taken", time.Hour, func(t *testing.T, rig *admissionRig) {
			held := rig.hold(size)
			for _, path := range []string{"/healthz", "/readyz"} {
				if rec := await(t, rig.async(context.Background(), path), path); rec.Code != http.StatusOK {
					t.Errorf("%s answered %d while overloaded, want 200", path, rec.Code)
				}
			}
			rig.releaseAll(held)
		}},
		{"a client that leaves while waiting takes no slot", time.Hour, func(t *testing.T, rig *admissionRig) {
			held := rig.hold(size)
			ctx, cancel := context.WithCancel(context.Background())
			gone := rig.async(ctx, "/hold")
			cancel()
			if rec := await(t, gone, "a request whose client left"); rec.Code != http.StatusServiceUnavailable {
				t.Errorf("a request whose client left while waiting answered %d, want 503", rec.Code)
			}
			rig.releaseAll(held)
			// Both slots must be free again: two new requests enter together.
			rig.releaseAll(rig.hold(size))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newAdmissionRig(t, size, tc.wait))
		})
	}
}

// TestAdmissionFreesSlots ends an admitted request every way one can end
// and checks that its slot comes back: a bound of one, so a leaked slot
// would make the next request a 503.
func TestAdmissionFreesSlots(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		end  func(t *testing.T, rig *admissionRig)
	}{
		{"answered", func(t *testing.T, rig *admissionRig) {
			if rec := rig.do(context.Background(), "/v1/accounts"); rec.Code != http.StatusOK {
				t.Fatalf("answered %d, want 200", rec.Code)
			}
		}},
		{"panic", func(t *testing.T, rig *admissionRig) {
			rig.back.panicWith = "boom"
			mustPanic(t, func() { rig.do(context.Background(), "/panic") })
		}},
		{"abort", func(t *testing.T, rig *admissionRig) {
			rig.back.panicWith = http.ErrAbortHandler
			mustPanic(t, func() { rig.do(context.Background(), "/panic") })
		}},
		{"client cancel while served", func(t *testing.T, rig *admissionRig) {
			ctx, cancel := context.WithCancel(context.Background())
			ch := rig.async(ctx, "/hold")
			rig.waitEntered()
			cancel()
			await(t, ch, "a cancelled request")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rig := newAdmissionRig(t, 1, time.Millisecond)
			for range 3 {
				tc.end(t, rig)
			}
			if rec := rig.do(context.Background(), "/v1/accounts"); rec.Code != http.StatusOK {
				t.Errorf("after the request ended, the next answered %d, want 200: its slot leaked", rec.Code)
			}
			if n := rig.counters.count(edge.ReasonOverloaded); n != 0 {
				t.Errorf("%d requests shed, want none", n)
			}
		})
	}
}

func mustPanic(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Error("the handler's panic did not propagate")
		}
	}()
	f()
}

// TestAdmissionBoundHolds sends many concurrent requests through a small
// bound (run it with -race): the backend never sees more than the bound at
// once, and every request is answered, 200 or 503.
func TestAdmissionBoundHolds(t *testing.T) {
	t.Parallel()
	const size, clients, each = 3, 16, 50
	rig := newAdmissionRig(t, size, time.Millisecond)
	var wg sync.WaitGroup
	var ok, shed, other atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				switch rig.do(context.Background(), "/v1/accounts").Code {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusServiceUnavailable:
					shed.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := rig.back.peak.Load(); n > size {
		t.Errorf("backend saw %d requests at once, above the bound %d", n, size)
	}
	if ok.Load()+shed.Load() != clients*each || other.Load() != 0 {
		t.Errorf("answers: %d ok, %d shed, %d other; want %d, all 200 or 503", ok.Load(), shed.Load(), other.Load(), clients*each)
	}
	if int(shed.Load()) != rig.counters.count(edge.ReasonOverloaded) {
		t.Errorf("%d shed but %d counted", shed.Load(), rig.counters.count(edge.ReasonOverloaded))
	}
	if ok.Load() == 0 {
		t.Error("nothing was served")
	}
}

// TestAdmissionDefaults checks that the zero Admission is on, with the
// default bound: the edge is never unbounded by omission.
func TestAdmissionDefaults(t *testing.T) {
	t.Parallel()
	back := newBackend()
	h := edge.Middleware(edge.Config{}, back)
	var answers []chan int
	for range edge.DefaultMaxInFlight {
		ch := make(chan int, 1)
		answers = append(answers, ch)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hold", nil))
			ch <- rec.Code
		}()
	}
	for range edge.DefaultMaxInFlight {
		select {
		case <-back.entered:
		case <-time.After(answerDeadline):
			t.Fatal("a request within the default bound never reached the backend")
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/accounts", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("request past the default bound answered %d, want 503", rec.Code)
	}
	close(back.release)
	for _, ch := range answers {
		if code := <-ch; code != http.StatusOK {
			t.Errorf("held request answered %d, want 200", code)
		}
	}
}
