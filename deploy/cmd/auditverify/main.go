// Command auditverify walks the hash chain of each named schema's
// audit_events table (platform/audit Verify), checks it against the heads
// earlier runs recorded, records the head it verified, and prints, per
// schema, either "ok" with the chain head and the rows still waiting to be
// sealed, or the first broken row or anchor. It exits 1 if any chain is
// broken, an anchor no longer matches, a chain cannot be read or its head
// cannot be recorded, or a row has waited to be sealed for longer than
// -max-pending (no sealer running, or every one failing: until sealed, a row
// is kept only by the trigger).
//
//	auditverify [-max-pending DURATION] [-record=false] [-anchor SCHEMA=SEQ:HASH]... [-anchor-dir DIR] DATABASE_URL|env:NAME SCHEMA...
//
// A chain check alone cannot see the newest rows being deleted, or every row
// from some point on being rewritten with recomputed hashes. Anchors close
// that gap: a head verified earlier, whose row must still exist with the
// same hash. Every run checks all the heads earlier runs recorded in
// audit_anchors.heads (the database's administrator owns that table; the
// services' roles and the schemas' owners cannot write it) and, unless
// -record=false, records the head it has just verified, so that no anchor
// has to be given by hand. Anchors kept outside the database, the heads
// printed by earlier runs, also guard against whoever can write that table
// (a superuser): they come from -anchor, or from -anchor-dir, a directory
// holding, for each schema to anchor, a file named after it that contains
// SEQ:HASH (a mounted ConfigMap, in Kubernetes).
//
// DATABASE_URL may be env:NAME, to read the URL, which carries a password,
// from environment variable NAME rather than from the command line, where
// other users of the host can see it.
//
// Run it as the database's audit login (bank_audit for the database bank: a
// member of bank_audit_reader, platform/audit ReaderRole, that may also
// append to audit_anchors.heads), never as a service role or a schema owner.
package main

import (
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

const usage = "usage: auditverify [-max-pending DURATION] [-record=false] [-anchor SCHEMA=SEQ:HASH]... [-anchor-dir DIR] DATABASE_URL|env:NAME SCHEMA...   (schemas: auth accounts ledger)"

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("auditverify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	anchors := anchorFlag{}
	fs.Var(anchors, "anchor", "SCHEMA=SEQ:HASH from an earlier run; repeatable")
	anchorDir := fs.String("anchor-dir", "", "directory with a file SCHEMA holding SEQ:HASH per anchored schema")
	maxPending := fs.Duration("max-pending", audit.DefaultMaxPending, "how long a committed row may wait to be sealed")
	record := fs.Bool("record", true, "record each verified head in audit_anchors.heads, for later runs to check")
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
		c := check{schema: schema, maxPending: *maxPending, record: *record}
		c.anchor, c.hasAnchor = anchors[schema]
		if !c.run(ctx, conn, stdout) {
			failed = true
		}
	}
	if failed {
		return errBroken
	}
	return nil
}

// anchorFlag collects -anchor SCHEMA=SEQ:HASH values, one per schema.
type anchorFlag map[string]audit.Anchor

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
	f[schema] = audit.Anchor{Seq: seq, Hash: hash}
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

// check is the verification of one schema.
type check struct {
	schema     string
	maxPending time.Duration
	record     bool
	anchor     audit.Anchor // from -anchor or -anchor-dir, if hasAnchor
	hasAnchor  bool
}

// run verifies the chain and checks the anchors in one snapshot, reports,
// then records the head; it returns false on any problem.
func (c check) run(ctx context.Context, conn *pgx.Conn, out io.Writer) (ok bool) {
	defer func() {
		if p := recover(); p != nil { // audit.New refuses an invalid schema name
			fmt.Fprintf(out, "%s: cannot verify: %v\n", c.schema, p)
			ok = false
		}
	}()
	log := audit.New(c.schema, time.Now).WithMaxPending(c.maxPending)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		fmt.Fprintf(out, "%s: cannot verify: %v\n", c.schema, err)
		return false
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rep, err := log.Verify(ctx, tx)
	var broken *audit.ChainError
	var pending *audit.PendingError
	switch {
	case errors.As(err, &broken):
		fmt.Fprintf(out, "%s: BROKEN at seq %d: %s (%d rows checked)\n", c.schema, broken.Seq, broken.Problem, rep.Sealed)
		return false
	case errors.As(err, &pending):
		// The chain itself verified: say so, then why this still fails.
	case err != nil:
		fmt.Fprintf(out, "%s: cannot verify: %v\n", c.schema, err)
		return false
	}
	if !c.checkAnchors(ctx, tx, log, rep.HeadSeq, out) {
		return false
	}
	if err := tx.Commit(ctx); err != nil { // a read-only snapshot: ends it
		fmt.Fprintf(out, "%s: cannot verify: %v\n", c.schema, err)
		return false
	}
	fmt.Fprintf(out, "%s: ok, %d rows; head seq %d hash %x; %d pending, oldest %s (anchor for the next run: -anchor %s=%d:%x)\n",
		c.schema, rep.Sealed, rep.HeadSeq, rep.HeadHash, rep.Pending, rep.OldestPending, c.schema, rep.HeadSeq, rep.HeadHash)
	if c.record && !recordHead(ctx, conn, log, c.schema, rep, out) {
		return false
	}
	if pending != nil {
		fmt.Fprintf(out, "%s: PENDING: %d rows have waited longer than %s to be sealed (oldest %s); is a sealer running?\n",
			c.schema, pending.Overdue, pending.Bound, pending.Oldest)
		return false
	}
	return true
}

// checkAnchors checks the anchor given on the command line, if any, and
// every anchor recorded in the database, against the chain Verify has just
// checked in the same snapshot.
func (c check) checkAnchors(ctx context.Context, tx pgx.Tx, log *audit.Log, head int64, out io.Writer) bool {
	var ae *audit.AnchorError
	if c.hasAnchor {
		err := log.CheckAnchor(ctx, tx, c.anchor, head)
		switch {
		case errors.As(err, &ae):
			fmt.Fprintf(out, "%s: BROKEN: %s\n", c.schema, ae.Problem)
			return false
		case err != nil:
			fmt.Fprintf(out, "%s: cannot read anchor seq %d: %v\n", c.schema, c.anchor.Seq, err)
			return false
		}
		fmt.Fprintf(out, "%s: anchor seq %d matches\n", c.schema, c.anchor.Seq)
	}
	newest, err := log.CheckRecorded(ctx, tx, head)
	switch {
	case errors.As(err, &ae):
		fmt.Fprintf(out, "%s: BROKEN: %s (an anchor recorded in audit_anchors.heads)\n", c.schema, ae.Problem)
		return false
	case err != nil:
		fmt.Fprintf(out, "%s: cannot check the recorded anchors: %v\n", c.schema, err)
		return false
	case newest.Seq > 0:
		fmt.Fprintf(out, "%s: recorded anchor seq %d matches, as does every one recorded before it\n", c.schema, newest.Seq)
	}
	return true
}

// recordHead records rep's head in audit_anchors.heads, in a transaction of
// its own: the audit login's sessions are read-only unless one asks to write.
func recordHead(ctx context.Context, conn *pgx.Conn, log *audit.Log, schema string, rep audit.Report, out io.Writer) bool {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
	if err == nil {
		defer tx.Rollback(context.WithoutCancel(ctx))
		var added bool
		if added, err = log.Record(ctx, tx, rep); err == nil {
			if err = tx.Commit(ctx); err == nil && added {
				fmt.Fprintf(out, "%s: recorded head seq %d in audit_anchors.heads\n", schema, rep.HeadSeq)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(out, "%s: cannot record the head: %v\n", schema, err)
		return false
	}
	return true
}
