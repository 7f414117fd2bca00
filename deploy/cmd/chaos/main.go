// Command chaos runs Bastion's fault campaign against a stack it starts
// itself, on ports of its own, over a throw-away PostgreSQL cluster and a
// Redis of its own, so it never touches `make run` or a shared server.
// While an open-model stream of idempotent transfers and reads runs, it
// kills, stops and restarts each piece of the stack on a schedule it
// prints, times each recovery, and ends with a money audit through the API
// and in the database and the read-only audit verifier. It exits non-zero
// on lost or duplicated money, a 5xx other than 503, a broken audit chain
// or a recovery slower than the budget.
//
//	go run ./deploy/cmd/chaos [-schedule full|short] [-faults REGEXP] [-users N] [-rate R]
//
// See docs/reliability.md.
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
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}
