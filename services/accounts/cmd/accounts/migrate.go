package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bastion-bank/bastion/platform/config"
	"github.com/bastion-bank/bastion/platform/postgres"
	accountspg "github.com/bastion-bank/bastion/services/accounts/internal/postgres"
)

// command returns the subcommand args name: "serve" when there is none.
func command(args []string) string {
	if len(args) > 1 {
		return args[1]
	}
	return "serve"
}

// migrate brings the accounts schema up to date and gives the service's
// runtime role its grants, connected with BANK_DATABASE_URL as the schema's
// owner. The server never migrates: it runs as the runtime role, which owns
// nothing and may not change the schema, so whoever starts it (make run,
// the Compose migrate job, the Kubernetes init container) runs this first,
// with the owner's credentials, which the server never sees.
func migrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	env := config.New(getenv)
	url := env.URL("BANK_DATABASE_URL", "")
	if url == "" {
		env.Invalid("BANK_DATABASE_URL", "is required")
	}
	if err := env.Err(); err != nil {
		return err
	}
	if err := postgres.MigrateAt(ctx, url, serviceName, accountspg.Migrate); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "schema %s is up to date\n", accountspg.Schema)
	return err
}
