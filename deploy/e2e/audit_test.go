package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
)

// auditChainsWhole runs after every test, while the stack still runs. The
// tests wrote audit rows in every schema (logins, refusals, freezes,
// transfers); the services' own sealers, not a test helper, must have linked
// every one into its schema's chain shortly after, and each chain must
// verify, read as the audit reader (bank_audit), which the services'
// migrations granted the audit tables and nothing else.
func auditChainsWhole(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("audit check: %w", err)
	}
	defer conn.Close(ctx)
	for _, schema := range []string{"auth", "accounts", "ledger"} {
		log := audit.New(schema, time.Now)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			rep, err := log.Verify(ctx, conn)
			if err != nil {
				return fmt.Errorf("audit chain of %s: %+v: %w", schema, rep, err)
			}
			if rep.Sealed > 0 && rep.Pending == 0 {
				fmt.Printf("e2e: audit chain of %s: %d rows, all sealed by the services\n", schema, rep.Sealed)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("audit rows of %s not sealed by the running services: %+v", schema, rep)
			}
		}
	}
	return nil
}
