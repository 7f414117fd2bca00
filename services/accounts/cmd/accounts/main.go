// Command accounts is Bastion's accounts service: it opens, reads, lists and
// freezes accounts over gRPC with mutual TLS, behind the platform's
// interceptor chain, and keeps the ledger's copy of each account in step.
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
		fmt.Fprintln(os.Stderr, "accounts:", err)
		os.Exit(1)
	}
}
