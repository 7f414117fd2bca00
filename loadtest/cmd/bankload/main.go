// Command bankload is Bastion's load generator: an open-model (constant
// arrival rate) HTTPS client of the gateway's public REST API, with three
// scenarios (transfers, login, attack). It refuses to aim at anything but
// loopback unless told, with -i-own-this-target, that the target is yours.
//
//	go run ./loadtest/cmd/bankload -scenario transfers -rate 50 -duration 30s
//
// See loadtest/README.md.
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
		fmt.Fprintln(os.Stderr, "bankload:", err)
		os.Exit(1)
	}
}
