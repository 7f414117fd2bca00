package report_test

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/report"
)

// ms1to100 is 1ms…100ms shuffled: by the nearest-rank definition its p-th
// percentile is p milliseconds for every integer p.
func ms1to100() []time.Duration {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	return ds
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	ds := ms1to100()
	before := append([]time.Duration(nil), ds...)
	got := report.Percentiles(ds)
	want := report.Latency{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("Percentiles(1..100ms) = %+v, want %+v", got, want)
	}
	for i := range ds {
		if ds[i] != before[i] {
			t.Fatalf("Percentiles reordered its input at %d", i)
		}
	}
}

func TestPercentileEdges(t *testing.T) {
	t.Parallel()
	one := []time.Duration{7 * time.Millisecond}
	two := []time.Duration{time.Millisecond, 3 * time.Millisecond}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single value is every percentile", one, 1, 7 * time.Millisecond},
		{"single value p99", one, 99, 7 * time.Millisecond},
		{"two values p50 is the lower", two, 50, time.Millisecond},
		{"two values p51 is the upper", two, 51, 3 * time.Millisecond},
		{"p0 clamps to the minimum", two, 0, time.Millisecond},
		{"negative p clamps to the minimum", two, -5, time.Millisecond},
		{"p above 100 clamps to the maximum", two, 250, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := report.Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
	if got := report.Percentiles(nil); got != (report.Latency{}) {
		t.Errorf("Percentiles(nil) = %+v, want zero", got)
	}
}

func TestExpected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		expect []int
		want   bool
	}{
		{200, nil, true},
		{204, nil, true},
		{299, nil, true},
		{199, nil, false},
		{300, nil, false},
		{404, nil, false},
		{0, nil, false},
		{404, []int{404}, true},
		{200, []int{404}, false}, // an attack that succeeded is never expected
		{429, []int{401, 429}, true},
		{401, []int{401, 429}, true},
	}
	for _, tt := range tests {
		if got := report.Expected(tt.status, tt.expect); got != tt.want {
			t.Errorf("Expected(%d, %v) = %v, want %v", tt.status, tt.expect, got, tt.want)
		}
	}
}

func TestRecorderClassifiesOutcomes(t *testing.T) {
	t.Parallel()
	rec := report.NewRecorder()
	const ep, probe = "POST /v1/transfers", "bola-read GET /v1/accounts/{id}"
	for _, o := range []report.Outcome{
		{Endpoint: ep, Status: 200, Latency: 10 * time.Millisecond},
		{Endpoint: ep, Status: 200, Latency: 30 * time.Millisecond},
		{Endpoint: ep, Status: 429, Latency: time.Millisecond, Problem: "transfers"},
		{Endpoint: ep, Status: 500, Latency: 20 * time.Millisecond},
		{Endpoint: ep, Status: report.StatusTransportError, Latency: time.Hour}, // must not reach the percentiles
		{Endpoint: probe, Status: 404, Latency: 5 * time.Millisecond, Expect: []int{404}},
		{Endpoint: probe, Status: 200, Latency: 5 * time.Millisecond, Expect: []int{404}},
	} {
		rec.Record(o)
	}
	rec.Drop()
	rec.Drop()
	s := rec.Summarize(2 * time.Second)

	if s.Total != 7 || s.Dropped != 2 || s.TransportErrors != 1 || s.Throttled != 1 || s.Unexpected != 3 {
		t.Errorf("Summarize totals = total %d dropped %d transport %d throttled %d unexpected %d, want 7 2 1 1 3",
			s.Total, s.Dropped, s.TransportErrors, s.Throttled, s.Unexpected)
	}
	if len(s.ThrottledBy) != 1 || s.ThrottledBy["transfers"] != 1 {
		t.Errorf("Summarize ThrottledBy = %v, want the one 429 under its problem, transfers", s.ThrottledBy)
	}
	if s.Throughput != 3.5 {
		t.Errorf("Summarize throughput = %v, want 7 requests / 2 s = 3.5", s.Throughput)
	}
	if len(s.Endpoints) != 2 || s.Endpoints[0].Endpoint != ep || s.Endpoints[1].Endpoint != probe {
		t.Fatalf("Summarize endpoints = %+v, want %q then %q (byte order)", s.Endpoints, ep, probe)
	}
	tr := s.Endpoints[0]
	if tr.Count != 5 || tr.Expected != 2 || tr.Unexpected != 2 || tr.Throttled != 1 || tr.Codes[200] != 2 || tr.Codes[0] != 1 {
		t.Errorf("transfers summary = %+v, want 5 requests: 2 expected, 2 unexpected (500, transport), 1 throttled", tr)
	}
	if tr.Latency.Max != 30*time.Millisecond {
		t.Errorf("transfers max latency = %v, want 30ms: a transport error's time is not a server latency", tr.Latency.Max)
	}
	if pr := s.Endpoints[1]; pr.Expected != 1 || pr.Unexpected != 1 {
		t.Errorf("probe summary = %+v, want the 200 counted as unexpected", pr)
	}
}

func TestRecorderIsSafeConcurrently(t *testing.T) {
	t.Parallel()
	rec := report.NewRecorder()
	const workers, each = 16, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				rec.Record(report.Outcome{Endpoint: "GET /e" + string(rune('a'+w%4)), Status: 200 + i%2, Latency: time.Duration(i)})
			}
			rec.Drop()
		})
	}
	wg.Wait()
	s := rec.Summarize(time.Second)
	if s.Total != workers*each || s.Dropped != workers {
		t.Errorf("Summarize after concurrent records = total %d dropped %d, want %d %d", s.Total, s.Dropped, workers*each, workers)
	}
}

func TestSummarizeZeroElapsed(t *testing.T) {
	t.Parallel()
	rec := report.NewRecorder()
	rec.Record(report.Outcome{Endpoint: "GET /x", Status: 200})
	if s := rec.Summarize(0); s.Throughput != 0 || s.Endpoints[0].Throughput != 0 {
		t.Errorf("Summarize(0).Throughput = %v, want 0 rather than +Inf", s.Throughput)
	}
}

func TestFormatCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		codes map[int]int
		want  string
	}{
		{"empty", map[int]int{}, ""},
		{"sorted by status", map[int]int{503: 1, 200: 98, 429: 2}, "200:98 429:2 503:1"},
		{"transport errors named", map[int]int{0: 3, 200: 1}, "err:3 200:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := report.FormatCodes(tt.codes); got != tt.want {
				t.Errorf("FormatCodes(%v) = %q, want %q", tt.codes, got, tt.want)
			}
		})
	}
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	rec := report.NewRecorder()
	rec.Record(report.Outcome{Endpoint: "no-token GET /v1/accounts", Status: 401, Latency: 1500 * time.Microsecond, Expect: []int{401}})
	var buf bytes.Buffer
	if err := report.WriteText(&buf, "attack", rec.Summarize(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario attack: 1 requests", "no-token GET /v1/accounts", "401:1", "1.5ms", "p99"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("WriteText output lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestProblemName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"gateway limit", `{"type":"urn:bastion:problem:auth","status":429}`, "auth"},
		{"hash pool", `{"type":"urn:bastion:problem:hash-pool-busy","status":429}`, "hash-pool-busy"},
		{"not json", `too many requests`, ""},
		{"no type", `{"status":429}`, ""},
		{"someone else's urn", `{"type":"urn:other:problem:auth"}`, ""},
		{"not a slug", `{"type":"urn:bastion:problem:<script>"}`, ""},
		{"too long", `{"type":"urn:bastion:problem:` + strings.Repeat("a", 41) + `"}`, ""},
		{"empty name", `{"type":"urn:bastion:problem:"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := report.ProblemName([]byte(tt.body)); got != tt.want {
				t.Errorf("ProblemName(%s) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestWriteTextNamesWhoThrottled(t *testing.T) {
	t.Parallel()
	rec := report.NewRecorder()
	for i := range 5 {
		p := "hash-pool-busy"
		if i == 0 {
			p = "auth"
		}
		rec.Record(report.Outcome{Endpoint: "right POST /v1/auth/login", Status: 429, Problem: p})
	}
	rec.Record(report.Outcome{Endpoint: "right POST /v1/auth/login", Status: 429})
	var buf bytes.Buffer
	if err := report.WriteText(&buf, "login", rec.Summarize(time.Second)); err != nil {
		t.Fatal(err)
	}
	if want := "throttled (429) 6 (hash-pool-busy 4, auth 1, unknown 1)"; !strings.Contains(buf.String(), want) {
		t.Errorf("WriteText headline lacks %q:\n%s", want, buf.String())
	}
}
