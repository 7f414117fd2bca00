package main

import (
	"bufio"
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The ledger's group-commit histograms on the transactions process
// (services/transactions/internal/postgres/metrics.go). A phase's batches
// are the difference of two scrapes: how many movements a commit carried,
// and how a transfer's time in the ledger splits between waiting for its
// batch and the batch's transaction. A build older than these metrics
// exports none, and its columns stay empty.
const (
	batchSizeMetric     = "bank_ledger_batch_size"
	batchDurationMetric = "bank_ledger_batch_duration_seconds"
	queueWaitMetric     = "bank_ledger_queue_wait_seconds"
)

// histogram is one Prometheus histogram's cumulative state: its buckets'
// counts by upper bound (+Inf included), sum and count.
type histogram struct {
	buckets map[float64]float64
	sum     float64
	count   float64
}

// ledgerSample is the group-commit histograms at one moment, by metric.
type ledgerSample map[string]*histogram

// ledgerStats is what the group commit did during a phase.
type ledgerStats struct {
	PerCommit float64       // movements per transaction
	Commit    time.Duration // mean transaction
	CommitP99 time.Duration
	Wait      time.Duration // mean wait for a batch to start
	WaitP99   time.Duration
}

// ledgerNow scrapes st's transactions process; nil when it cannot (the
// columns are then left empty, the phase is measured all the same).
func ledgerNow(ctx context.Context, st *stack) ledgerSample {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+st.cfg.Addrs.TransactionsMetrics+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return parseLedger(io.LimitReader(resp.Body, 8<<20))
}

// parseLedger reads the group-commit histograms out of Prometheus's text
// format; nil if there are none.
func parseLedger(r io.Reader) ledgerSample {
	out := ledgerSample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series, labels, _ := strings.Cut(line[:sp], "{")
		for _, m := range []string{batchSizeMetric, batchDurationMetric, queueWaitMetric} {
			suffix, ok := strings.CutPrefix(series, m)
			if !ok {
				continue
			}
			h := out[m]
			if h == nil {
				h = &histogram{buckets: map[float64]float64{}}
				out[m] = h
			}
			switch suffix {
			case "_sum":
				h.sum = v
			case "_count":
				h.count = v
			case "_bucket":
				if le, ok := bucketBound(labels); ok {
					h.buckets[le] = v
				}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// bucketBound reads le="…" out of a bucket's labels (and the closing brace).
func bucketBound(labels string) (float64, bool) {
	_, rest, ok := strings.Cut(labels, `le="`)
	if !ok {
		return 0, false
	}
	v, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return 0, false
	}
	if v == "+Inf" {
		return math.Inf(1), true
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// ledgerDelta is what happened between two samples; false when either is
// missing or no batch ran.
func ledgerDelta(before, after ledgerSample) (ledgerStats, bool) {
	if before == nil || after == nil {
		return ledgerStats{}, false
	}
	size, dur, wait := diff(before, after, batchSizeMetric), diff(before, after, batchDurationMetric), diff(before, after, queueWaitMetric)
	if size == nil || dur == nil || wait == nil || size.count <= 0 || wait.count <= 0 {
		return ledgerStats{}, false
	}
	secs := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	return ledgerStats{
		PerCommit: size.sum / size.count,
		Commit:    secs(dur.sum / dur.count),
		CommitP99: secs(dur.quantile(0.99)),
		Wait:      secs(wait.sum / wait.count),
		WaitP99:   secs(wait.quantile(0.99)),
	}, true
}

// diff is metric's histogram after minus before.
func diff(before, after ledgerSample, metric string) *histogram {
	a, b := after[metric], before[metric]
	if a == nil {
		return nil
	}
	if b == nil {
		b = &histogram{}
	}
	d := &histogram{buckets: map[float64]float64{}, sum: a.sum - b.sum, count: a.count - b.count}
	for le, n := range a.buckets {
		d.buckets[le] = n - b.buckets[le]
	}
	return d
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear within the bucket it falls in, the highest finite bound if
// it falls in +Inf.
func (h *histogram) quantile(q float64) float64 {
	bounds := make([]float64, 0, len(h.buckets))
	for le := range h.buckets {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 || h.count <= 0 {
		return 0
	}
	rank := q * h.count
	lower, below := 0.0, 0.0
	for _, le := range bounds {
		n := h.buckets[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return lower
			}
			if n == below {
				return le
			}
			return lower + (le-lower)*(rank-below)/(n-below)
		}
		lower, below = le, n
	}
	return lower
}
