// Command auditverify walks the hash chain of each named schema's
// audit_events table (platform/audit Verify) and prints, per schema, either
// "ok" with the chain head to anchor outside the database, or the first
// broken row. It exits 1 if any chain is broken or cannot be read.
//
//	auditverify [-anchor SCHEMA=SEQ:HASH]... DATABASE_URL SCHEMA...
//
// A chain check alone cannot see the newest rows being deleted, or every row
// from some point on being rewritten with recomputed hashes. An anchor, the
// head printed by an earlier run and kept where the database's users cannot
// write, closes that gap: the row at SEQ must still exist with HASH.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
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

const usage = "usage: auditverify [-anchor SCHEMA=SEQ:HASH]... DATABASE_URL SCHEMA...   (schemas: auth accounts ledger)"

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("auditverify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	anchors := anchorFlag{}
	fs.Var(anchors, "anchor", "SCHEMA=SEQ:HASH from an earlier run; repeatable")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w\n%s", err, usage)
	}
	if fs.NArg() < 2 {
		return errors.New(usage)
	}
	schemas := fs.Args()[1:]
	for schema := range anchors {
		if !slices.Contains(schemas, schema) {
			return fmt.Errorf("-anchor for %q, which is not a schema to verify\n%s", schema, usage)
		}
	}
	conn, err := pgx.Connect(ctx, fs.Arg(0))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	failed := false
	for _, schema := range schemas {
		a, hasAnchor := anchors[schema]
		if !verify(ctx, conn, schema, stdout, a, hasAnchor) {
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

// verify checks one schema's chain and reports it; it returns false on any problem.
func verify(ctx context.Context, conn *pgx.Conn, schema string, out io.Writer, a anchor, hasAnchor bool) (ok bool) {
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
	if hasAnchor && !checkAnchor(ctx, conn, schema, out, a, seq) {
		return false
	}
	fmt.Fprintf(out, "%s: ok, %d rows; head seq %d hash %x (anchor for the next run: -anchor %s=%d:%x)\n",
		schema, n, seq, hash, schema, seq, hash)
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
