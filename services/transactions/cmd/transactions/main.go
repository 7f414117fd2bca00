// Command transactions is Bastion's ledger: it moves money between accounts
// in a double-entry book over gRPC with mutual TLS, behind the platform's
// interceptor chain, and keeps the ledger's copy of each account for the
// accounts service.
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
		fmt.Fprintln(os.Stderr, "transactions:", err)
		os.Exit(1)
	}
}
