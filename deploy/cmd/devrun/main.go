// Command devrun is `make run`: it prepares the dev PKI, signing keys and
// database, builds and starts auth, transactions, accounts and the gateway as
// separate processes with mTLS between them, waits until the gateway is ready,
// prints what a newcomer needs, and stops everything cleanly on Ctrl-C.
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
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}
