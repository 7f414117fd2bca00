// Command gateway is Bastion's public HTTPS edge: it serves docs/api.md's REST
// routes with grpc-gateway and applies the edge policy (TLS, body limits,
// token verification, rate limits, header allowlists, problem+json errors)
// before calling the services over mutual TLS.
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
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
