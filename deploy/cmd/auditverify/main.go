// Command auditverify walks the hash chain of each named schema's
// audit_events table (platform/audit Verify) and prints, per schema, either
// "ok" with the chain head to anchor outside the database, or the first
// broken row. It exits 1 if any chain is broken or cannot be read.
//
//	auditverify DATABASE_URL SCHEMA...     (schemas: auth accounts ledger)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, os.Args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "auditverify:", err)
		os.Exit(1)
	}
}

// errBroken is returned when at least one chain failed verification.
var errBroken = errors.New("audit chain verification failed")

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 3 {
		return errors.New("usage: auditverify DATABASE_URL SCHEMA...   (schemas: auth accounts ledger)")
	}
	conn, err := pgx.Connect(ctx, args[1])
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	failed := false
	for _, schema := range args[2:] {
		if !verify(ctx, conn, schema, stdout) {
			failed = true
		}
	}
	if failed {
		return errBroken
	}
	return nil
}

// verify checks one schema's chain and reports it; it returns false on any problem.
func verify(ctx context.Context, conn *pgx.Conn, schema string, out io.Writer) (ok bool) {
	defer func() {
		if p := recover(); p != nil { // audit.New refuses an invalid schema name
			fmt.Fprintf(out, "%s: cannot verify: %v\n", schema, p)
			ok = false
		}
	}()
	n, err := audit.New(schema, time.Now).Verify(ctx, conn)
	var broken *audit.ChainError
	switch {
	case errors.As(err, &broken):
		fmt.Fprintf(out, "%s: BROKEN at seq %d: %s (%d rows checked)\n", schema, broken.Seq, broken.Problem, n)
		return false
	case err != nil:
		fmt.Fprintf(out, "%s: cannot verify: %v\n", schema, err)
		return false
	}
	var seq int64
	var hash []byte
	err = conn.QueryRow(ctx, "SELECT seq, hash FROM "+pgx.Identifier{schema, "audit_events"}.Sanitize()+
		" ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		fmt.Fprintf(out, "%s: cannot read the chain head: %v\n", schema, err)
		return false
	}
	fmt.Fprintf(out, "%s: ok, %d rows; head seq %d hash %x\n", schema, n, seq, hash)
	return true
}
