package benchcpu_test

import (
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/benchcpu"
)

// TestTimeCountsWork burns CPU and checks that Time sees it: a reading that
// did not move, or moved backwards, would make every cpu-ns/op a lie.
func TestTimeCountsWork(t *testing.T) {
	before := benchcpu.Time(t)
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	if got := benchcpu.Time(t) - before; got < 10*time.Millisecond {
		t.Errorf("50 ms of spinning counted %v of CPU (x=%d), want at least 10 ms", got, x)
	}
}

func BenchmarkReport(b *testing.B) {
	before := benchcpu.Time(b)
	for b.Loop() {
		_ = benchcpu.Time(b)
	}
	benchcpu.Report(b, before)
}
