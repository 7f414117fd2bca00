package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is the report of one run.
type Summary struct {
	Elapsed         time.Duration     `json:"elapsedNs"`
	Total           int               `json:"total"`                 // responses and transport errors
	Dropped         int               `json:"dropped"`               // due but not sent: too many in flight
	TransportErrors int               `json:"transportErrors"`       // no HTTP response
	Throttled       int               `json:"throttled"`             // 429s the scenario did not list as expected
	ThrottledBy     map[string]int    `json:"throttledBy,omitempty"` // those 429s by problem name (Outcome.Problem)
	Unexpected      int               `json:"unexpected"`            // neither expected nor 429
	Throughput      float64           `json:"throughputPerSecond"`
	Endpoints       []EndpointSummary `json:"endpoints"`
}

// EndpointSummary is the report of one endpoint (route template).
type EndpointSummary struct {
	Endpoint   string      `json:"endpoint"`
	Count      int         `json:"count"`
	Codes      map[int]int `json:"codes"` // 0 = transport error
	Expect     []int       `json:"expect,omitempty"`
	Expected   int         `json:"expected"`
	Unexpected int         `json:"unexpected"`
	Throttled  int         `json:"throttled"`
	Throughput float64     `json:"throughputPerSecond"`
	Latency    Latency     `json:"latency"`
}

// Latency holds the percentiles of a set of latencies. Zero when there were none.
type Latency struct {
	P50 time.Duration `json:"p50Ns"`
	P90 time.Duration `json:"p90Ns"`
	P99 time.Duration `json:"p99Ns"`
	Max time.Duration `json:"maxNs"`
}

// Percentiles returns p50, p90, p99 and the maximum of ds by the
// nearest-rank method, which always reports a latency that was observed
// (no interpolation between two requests). ds is not modified.
func Percentiles(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return Latency{
		P50: Percentile(sorted, 50),
		P90: Percentile(sorted, 90),
		P99: Percentile(sorted, 99),
		Max: sorted[len(sorted)-1],
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order: the smallest value such that at
// least p percent of the values are at or below it.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// WriteText writes s as aligned tables for a terminal.
func WriteText(w io.Writer, scenario string, s Summary) error {
	fmt.Fprintf(w, "scenario %s: %d requests in %s, %.1f req/s completed; dropped %d, transport errors %d, throttled (429) %d%s, unexpected %d\n\n",
		scenario, s.Total, s.Elapsed.Round(time.Millisecond), s.Throughput, s.Dropped, s.TransportErrors, s.Throttled, formatBy(s.ThrottledBy), s.Unexpected)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "endpoint\tcount\treq/s\tstatus codes\tp50\tp90\tp99\tmax\texpected\tunexpected")
	for _, e := range s.Endpoints {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
			e.Endpoint, e.Count, e.Throughput, FormatCodes(e.Codes),
			ms(e.Latency.P50), ms(e.Latency.P90), ms(e.Latency.P99), ms(e.Latency.Max),
			formatExpect(e.Expect), e.Unexpected)
	}
	return tw.Flush()
}

// FormatCodes writes status counts in ascending order of status, e.g.
// "200:98 429:2"; a transport error shows as "err".
func FormatCodes(codes map[int]int) string {
	keys := make([]int, 0, len(codes))
	for c := range codes {
		keys = append(keys, c)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, c := range keys {
		name := strconv.Itoa(c)
		if c == StatusTransportError {
			name = "err"
		}
		parts = append(parts, name+":"+strconv.Itoa(codes[c]))
	}
	return strings.Join(parts, " ")
}

func formatExpect(expect []int) string {
	if len(expect) == 0 {
		return "2xx"
	}
	parts := make([]string, len(expect))
	for i, c := range expect {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, "|")
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// formatBy writes the 429s by problem, most first, e.g. " (hash-pool-busy 70, auth 3)".
func formatBy(by map[string]int) string {
	if len(by) == 0 {
		return ""
	}
	keys := slices.Collect(maps.Keys(by))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(by[b], by[a]), strings.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + strconv.Itoa(by[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
