package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bastion-bank/bastion/platform/postgres"
	ledgerpg "github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// migrate brings the ledger schema up to date and gives the service's
// runtime role its grants, connected with BANK_DATABASE_URL as the schema's
// owner. The server never migrates: it runs as the runtime role, which owns
// nothing and may not change the schema, so whoever starts it (make run,
// the Compose migrate job, the Kubernetes init container) runs this first,
// with the owner's credentials, which the server never sees.
func migrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	if err := postgres.MigrateCommand(ctx, getenv, serviceName, ledgerpg.Migrate); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "schema %s is up to date\n", ledgerpg.Schema)
	return err
}
