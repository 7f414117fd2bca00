// Package benchcpu reports what a benchmark cost in CPU time, not only in
// wall time: on a shared, noisy machine the process's own user + system time
// per operation moves far less than ns/op does, so the repository's
// benchmarks report it beside ns/op as cpu-ns/op (docs/performance.md).
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Time is the process's user + system CPU time so far, every goroutine's
// (an in-process server's share of a benchmark included).
func Time(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report reports the CPU time spent since before (a Time reading taken
// when the timed work began) per operation, as cpu-ns/op.
func Report(b *testing.B, before time.Duration) {
	b.Helper()
	b.ReportMetric(float64(Time(b)-before)/float64(b.N), "cpu-ns/op")
}
