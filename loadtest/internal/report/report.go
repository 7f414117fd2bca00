// Package report turns the outcome of every request of a load run into the
// numbers a reader compares with the server's own metrics: per-endpoint
// status-code counts, latency percentiles and throughput, and, for scenarios
// that know which answers they expect, how many answers were not those.
package report

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"
)

// Outcome is what one request came back with.
type Outcome struct {
	Endpoint string        // a route template, e.g. "GET /v1/accounts/{id}", never a concrete id
	Status   int           // the HTTP status, or 0 when no response arrived
	Latency  time.Duration // from sending until the whole body was read
	Expect   []int         // the statuses the scenario expects; empty means any 2xx
	Problem  string        // a 429's problem type without its URN prefix ("auth", "hash-pool-busy"); see ProblemName
}

// ProblemName returns the name in an RFC 9457 problem type such as
// "urn:bastion:problem:hash-pool-busy", or "" when body holds none. It tells
// a 429 from the gateway's own limits ("auth", "user", "transfers",
// "public") from one a service decided ("login-throttled",
// "hash-pool-busy"), which need different knobs. Only a short slug is kept:
// the body comes from the server under test.
func ProblemName(body []byte) string {
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	name, ok := strings.CutPrefix(p.Type, problemPrefix)
	if !ok || name == "" || len(name) > 40 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return ""
	}
	return name
}

const problemPrefix = "urn:bastion:problem:"

// StatusTransportError is the pseudo status recorded when no HTTP response
// arrived (refused connection, TLS failure, client timeout).
const StatusTransportError = 0

// StatusThrottled is 429. A throttled request is counted apart from the
// expected and unexpected answers: with the default limits a load test is
// meant to hit it, so it is neither a success nor a failure of the server.
const StatusThrottled = 429

// UnknownProblem is the ThrottledBy key of a 429 whose body named no problem.
const UnknownProblem = "unknown"

// Recorder collects outcomes from many goroutines at once.
type Recorder struct {
	mu        sync.Mutex
	endpoints map[string]*endpointData
	dropped   int
}

type endpointData struct {
	codes       map[int]int
	latencies   []time.Duration
	expected    int
	unexpected  int
	throttled   int
	throttledBy map[string]int
	expect      []int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{endpoints: map[string]*endpointData{}}
}

// Record adds one outcome.
func (r *Recorder) Record(o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.endpoints[o.Endpoint]
	if d == nil {
		d = &endpointData{codes: map[int]int{}, throttledBy: map[string]int{}, expect: slices.Clone(o.Expect)}
		r.endpoints[o.Endpoint] = d
	}
	d.codes[o.Status]++
	if o.Status != StatusTransportError {
		d.latencies = append(d.latencies, o.Latency)
	}
	switch {
	case o.Status == StatusThrottled && !slices.Contains(o.Expect, StatusThrottled):
		d.throttled++
		d.throttledBy[cmp.Or(o.Problem, UnknownProblem)]++
	case Expected(o.Status, o.Expect):
		d.expected++
	default:
		d.unexpected++
	}
}

// Drop counts a request the generator was due to send but did not, because
// the bound on requests in flight was reached: the server fell behind the
// arrival rate, which an open-model test must show rather than hide by waiting.
func (r *Recorder) Drop() {
	r.mu.Lock()
	r.dropped++
	r.mu.Unlock()
}

// Expected says whether status is one of expect, or a 2xx when expect is empty.
func Expected(status int, expect []int) bool {
	if len(expect) == 0 {
		return status >= 200 && status < 300
	}
	return slices.Contains(expect, status)
}

// Summarize returns the report of everything recorded so far, over a run
// that lasted elapsed (used for throughput).
func (r *Recorder) Summarize(elapsed time.Duration) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{Elapsed: elapsed, Dropped: r.dropped}
	for name, d := range r.endpoints {
		e := EndpointSummary{
			Endpoint:   name,
			Codes:      make(map[int]int, len(d.codes)),
			Expect:     slices.Clone(d.expect),
			Expected:   d.expected,
			Unexpected: d.unexpected,
			Throttled:  d.throttled,
			Latency:    Percentiles(d.latencies),
		}
		for c, n := range d.codes {
			e.Codes[c] = n
			e.Count += n
		}
		e.Throughput = perSecond(e.Count, elapsed)
		s.Endpoints = append(s.Endpoints, e)
		s.Total += e.Count
		s.Unexpected += e.Unexpected
		s.Throttled += e.Throttled
		for k, n := range d.throttledBy {
			if s.ThrottledBy == nil {
				s.ThrottledBy = map[string]int{}
			}
			s.ThrottledBy[k] += n
		}
		s.TransportErrors += d.codes[StatusTransportError]
	}
	slices.SortFunc(s.Endpoints, func(a, b EndpointSummary) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	s.Throughput = perSecond(s.Total, elapsed)
	return s
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
