// Command benche2e measures Bastion's whole secure path against the
// database under it, on a stack of its own: HTTPS to the gateway, mTLS gRPC
// to the services, the ledger in PostgreSQL. It says what it starts (a
// throw-away PostgreSQL cluster on a free port, the four processes on free
// ports, built from this working tree or taken from -bin) and stops all of
// it when done, so it never touches `make run` or a shared server.
//
// Each round runs pgbench (tpcb-like, scale -scale, -clients clients) on
// that cluster, then, per stack, an open-model stream of transfers only,
// one of balance reads only and one of history reads only, each offered far
// above saturation, and prints each rate, p50/p99, and the CPU time each
// process spent per request (from /proc/<pid>/stat). With -half (the
// default) each kind then runs alone at half the rate it reached, and
// transfers and history reads mixed at half load, judged against issue 15's
// latency bar (p99 ≤ 25 ms; history reads no slower than transfers). With
// -baseline-bin or -baseline-rev a second stack ("before") is measured in
// the same rounds, interleaved with the first ("after"). -overload then
// offers the first stack three times its measured saturation and reports
// how it sheds, whether health checks answer, and how fast it recovers.
//
//	go run ./loadtest/cmd/benche2e [-rounds 3] [-duration 15s] [-baseline-rev 9853b03] [-overload]
//
// See docs/performance.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benche2e:", err)
		os.Exit(1)
	}
}
