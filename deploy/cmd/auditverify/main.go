// Command auditverify walks the hash chain of each named schema's
// audit_events table (platform/audit Verify) and prints, per schema, either
// "ok" with the chain head to anchor outside the database and the rows still
// waiting to be sealed, or the first broken row. It exits 1 if any chain is
// broken or cannot be read, or if a row has waited to be sealed for longer
// than -max-pending (no sealer running, or every one failing: until sealed,
// a row is kept only by the trigger).
//
//	auditverify [-max-pending DURATION] [-anchor SCHEMA=SEQ:HASH]... [-anchor-dir DIR] DATABASE_URL|env:NAME SCHEMA...
//
// A chain check alone cannot see the newest rows being deleted, or every row
// from some point on being rewritten with recomputed hashes. An anchor, the
// head printed by an earlier run and kept where the database's users cannot
// write, closes that gap: the row at SEQ must still exist with HASH. Anchors
// come from -anchor, or from -anchor-dir: a directory holding, for each
// schema to anchor, a file named after it that contains SEQ:HASH (a mounted
// ConfigMap, in Kubernetes); a schema without a file is verified unanchored.
//
// DATABASE_URL may be env:NAME, to read the URL, which carries a password,
// from environment variable NAME rather than from the command line, where
// other users of the host can see it.
//
// It needs only to read the audit tables: run it as a member of
// bank_audit_reader (platform/audit ReaderRole), not as a service role.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
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

const usage = "usage: auditverify [-max-pending DURATION] [-anchor SCHEMA=SEQ:HASH]... [-anchor-dir DIR] DATABASE_URL|env:NAME SCHEMA...   (schemas: auth accounts ledger)"

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("auditverify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	anchors := anchorFlag{}
	fs.Var(anchors, "anchor", "SCHEMA=SEQ:HASH from an earlier run; repeatable")
	anchorDir := fs.String("anchor-dir", "", "directory with a file SCHEMA holding SEQ:HASH per anchored schema")
	maxPending := fs.Duration("max-pending", audit.DefaultMaxPending, "how long a committed row may wait to be sealed")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w\n%s", err, usage)
	}
	if *maxPending <= 0 {
		return fmt.Errorf("-max-pending must be positive\n%s", usage)
	}
	if fs.NArg() < 2 {
		return errors.New(usage)
	}
	schemas := fs.Args()[1:]
	if *anchorDir != "" {
		if err := anchors.readDir(*anchorDir, schemas); err != nil {
			return fmt.Errorf("-anchor-dir: %w\n%s", err, usage)
		}
	}
	for schema := range anchors {
		if !slices.Contains(schemas, schema) {
			return fmt.Errorf("-anchor for %q, which is not a schema to verify\n%s", schema, usage)
		}
	}
	dbURL := fs.Arg(0)
	if name, ok := strings.CutPrefix(dbURL, "env:"); ok {
		if dbURL = os.Getenv(name); dbURL == "" {
			return fmt.Errorf("environment variable %q is unset or empty\n%s", name, usage)
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	failed := false
	for _, schema := range schemas {
		a, hasAnchor := anchors[schema]
		if !verify(ctx, conn, schema, *maxPending, stdout, a, hasAnchor) {
			failed = true
		}
	}
	if failed {
		return errBroken
	}
	return nil
}

// anchor is a chain position recorded by an earlier run.
type anchor struct {
	seq  int64
	hash []byte
}

// anchorFlag collects -anchor SCHEMA=SEQ:HASH values, one per schema.
type anchorFlag map[string]anchor

func (f anchorFlag) String() string { return "" }

func (f anchorFlag) Set(v string) error {
	schema, pos, ok := strings.Cut(v, "=")
	seqText, hashText, ok2 := strings.Cut(pos, ":")
	if !ok || !ok2 || schema == "" {
		return errors.New("want SCHEMA=SEQ:HASH")
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 1 {
		return fmt.Errorf("anchor seq %q is not a positive integer", seqText)
	}
	hash, err := hex.DecodeString(hashText)
	if err != nil || len(hash) == 0 {
		return fmt.Errorf("anchor hash %q is not hex", hashText)
	}
	if _, dup := f[schema]; dup {
		return fmt.Errorf("two anchors for %q", schema)
	}
	f[schema] = anchor{seq: seq, hash: hash}
	return nil
}

// readDir adds the anchor in dir/SCHEMA for each schema that has a file
// there. The directory is opened as a root, so a schema name cannot reach a
// file outside it.
func (f anchorFlag) readDir(dir string, schemas []string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, schema := range schemas {
		b, err := root.ReadFile(schema)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("anchor for %q: %w", schema, err)
		}
		if err := f.Set(schema + "=" + strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("anchor for %q in %s: %w", schema, dir, err)
		}
	}
	return nil
}

// verify checks one schema's chain and reports it; it returns false on any problem.
func verify(ctx context.Context, conn *pgx.Conn, schema string, maxPending time.Duration, out io.Writer, a anchor, hasAnchor bool) (ok bool) {
	defer func() {
		if p := recover(); p != nil { // audit.New refuses an invalid schema name
			fmt.Fprintf(out, "%s: cannot verify: %v\n", schema, p)
			ok = false
		}
	}()
	rep, err := audit.New(schema, time.Now).WithMaxPending(maxPending).Verify(ctx, conn)
	var broken *audit.ChainError
	var pending *audit.PendingError
	switch {
	case errors.As(err, &broken):
		fmt.Fprintf(out, "%s: BROKEN at seq %d: %s (%d rows checked)\n", schema, broken.Seq, broken.Problem, rep.Sealed)
		return false
	case errors.As(err, &pending):
		// The chain itself verified: say so, then why this still fails.
	case err != nil:
		fmt.Fprintf(out, "%s: cannot verify: %v\n", schema, err)
		return false
	}
	if hasAnchor && !checkAnchor(ctx, conn, schema, out, a, rep.HeadSeq) {
		return false
	}
	fmt.Fprintf(out, "%s: ok, %d rows; head seq %d hash %x; %d pending, oldest %s (anchor for the next run: -anchor %s=%d:%x)\n",
		schema, rep.Sealed, rep.HeadSeq, rep.HeadHash, rep.Pending, rep.OldestPending, schema, rep.HeadSeq, rep.HeadHash)
	if pending != nil {
		fmt.Fprintf(out, "%s: PENDING: %d rows have waited longer than %s to be sealed (oldest %s); is a sealer running?\n",
			schema, pending.Overdue, pending.Bound, pending.Oldest)
		return false
	}
	return true
}

// checkAnchor reports whether the row at the anchor's seq still exists with
// the anchored hash. The chain has already been verified from seq 1 to head,
// so a missing row means the tail was cut, and a different hash means
// history at or before the anchor was rewritten.
func checkAnchor(ctx context.Context, conn *pgx.Conn, schema string, out io.Writer, a anchor, head int64) bool {
	if a.seq > head {
		fmt.Fprintf(out, "%s: BROKEN: anchor seq %d is gone, the chain now ends at seq %d (rows were deleted)\n", schema, a.seq, head)
		return false
	}
	var hash []byte
	err := conn.QueryRow(ctx, "SELECT hash FROM "+pgx.Identifier{schema, "audit_events"}.Sanitize()+" WHERE seq = $1", a.seq).Scan(&hash)
	if err != nil {
		fmt.Fprintf(out, "%s: cannot read anchor seq %d: %v\n", schema, a.seq, err)
		return false
	}
	if !bytes.Equal(hash, a.hash) {
		fmt.Fprintf(out, "%s: BROKEN: anchor seq %d has hash %x, not the anchored %x (history was rewritten)\n", schema, a.seq, hash, a.hash)
		return false
	}
	fmt.Fprintf(out, "%s: anchor seq %d matches\n", schema, a.seq)
	return true
}
