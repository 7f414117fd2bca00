// Command auth is Bastion's auth service: registration, login, token
// issuance and rotation, logout revocation and roles, over gRPC with mTLS.
//
// Usage:
//
//	auth [serve]     run the service (the default)
//	auth migrate     apply the database migrations as the schema's owner
//	                 (BANK_DATABASE_URL names the owner) and exit; serve
//	                 never migrates, it runs as the runtime role
//	auth rotate-keys add a new signing key to BANK_KEYS_DIR and exit; running
//	                 replicas start signing with it within a minute, and the
//	                 old key stays published until its tokens have expired
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bastion-bank/bastion/platform/config"
	bankpg "github.com/bastion-bank/bastion/platform/postgres"
	"github.com/bastion-bank/bastion/services/auth/internal/postgres"
	"github.com/bastion-bank/bastion/services/auth/internal/tokens"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "auth:", err)
		os.Exit(1)
	}
}

const usage = `usage: auth [serve | migrate | rotate-keys]
  serve        run the service (default)
  migrate      apply the database migrations, as the schema's owner, and exit
  rotate-keys  add a new signing key to BANK_KEYS_DIR and exit
`

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 1 {
		cmd = args[1]
	}
	if len(args) > 2 {
		return errors.New("too many arguments; run \"auth help\" for usage")
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stderr)
	case "migrate":
		return migrate(ctx, getenv)
	case "rotate-keys":
		return rotateKeys(getenv, stdout)
	case "help", "-h", "-help", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q; run \"auth help\" for usage", cmd)
}

func migrate(ctx context.Context, getenv func(string) string) error {
	return bankpg.MigrateCommand(ctx, getenv, "auth", postgres.Migrate)
}

func rotateKeys(getenv func(string) string, stdout io.Writer) error {
	env := config.New(getenv)
	dir := env.Required("BANK_KEYS_DIR")
	if err := env.Err(); err != nil {
		return err
	}
	kid, err := tokens.Rotate(dir, time.Now)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "new signing key %s\n", kid)
	return err
}
