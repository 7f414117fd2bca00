package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
)

// anchorTable keeps chain heads where the services cannot write.
//
// A chain cannot show its newest rows being cut, or every row from some
// point on being rewritten with fresh hashes: only a copy of a head kept
// elsewhere can. audit_anchors.heads is that copy inside the database. The
// database's administrator creates it (PrepareAnchors) and owns it; no
// schema owner and no service role may touch it; one writer, the audit
// verifier's login, may read it and append to it, and a trigger refuses
// every change but an append, even by the administrator, unless switched
// off. The verifier appends the head of each chain it has just verified
// (Record), and every later run checks the chain against all it appended
// (CheckRecorded). So a service's runtime role, which cannot alter its
// audit table, cannot hide anything, and neither can a schema's owner (who
// can switch the audit trigger off) unless the verifier's login is stolen
// too. Only a superuser can rewrite a chain and its anchors together;
// anchors kept outside the database (the heads the verifier logs, given
// back with -anchor) are the answer to that.
const anchorTable = "audit_anchors.heads"

// anchorDDL creates the anchor table if it is missing, and lets the writer
// (%[1]s, quoted) read it and append to it and do nothing else.
const anchorDDL = `CREATE SCHEMA IF NOT EXISTS audit_anchors;
REVOKE ALL ON SCHEMA audit_anchors FROM PUBLIC;

CREATE TABLE IF NOT EXISTS audit_anchors.heads (
	schema_name text NOT NULL,
	seq         bigint NOT NULL CHECK (seq > 0),
	hash        bytea NOT NULL CHECK (length(hash) = 32),
	recorded_at timestamptz NOT NULL DEFAULT now(),
	recorded_by text NOT NULL DEFAULT session_user,
	PRIMARY KEY (schema_name, seq)
);

COMMENT ON TABLE audit_anchors.heads IS
	'Audit chain heads recorded by the verifier after it verified them (platform/audit). Append-only.';

CREATE OR REPLACE FUNCTION audit_anchors.append_only() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	RAISE EXCEPTION 'audit_anchors.heads is append-only: %% refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE TRIGGER heads_append_only
	BEFORE UPDATE OR DELETE ON audit_anchors.heads
	FOR EACH ROW EXECUTE FUNCTION audit_anchors.append_only();

CREATE OR REPLACE TRIGGER heads_no_truncate
	BEFORE TRUNCATE ON audit_anchors.heads
	FOR EACH STATEMENT EXECUTE FUNCTION audit_anchors.append_only();

REVOKE ALL ON audit_anchors.heads FROM PUBLIC;
GRANT USAGE ON SCHEMA audit_anchors TO %[1]s;
GRANT SELECT, INSERT (schema_name, seq, hash) ON audit_anchors.heads TO %[1]s;
`

// PrepareAnchors creates audit_anchors.heads in the database q is connected
// to, if it is missing, and lets writer (the login the verifier runs as)
// read it and append to it. Run it as the database's administrator, who
// then owns the table: it must be neither a schema owner nor a service's
// role. It is idempotent. Errors are Invalid for a bad role name and
// Internal otherwise.
func PrepareAnchors(ctx context.Context, q Querier, writer string) error {
	if !schemaRE.MatchString(writer) {
		return errs.InvalidField("writer", "must be a plain lower-case role name")
	}
	if _, err := q.Exec(ctx, fmt.Sprintf(anchorDDL, pgx.Identifier{writer}.Sanitize())); err != nil {
		return errs.Wrap(errs.Internal, "audit anchors not prepared", err)
	}
	return nil
}

// Anchor is a chain position recorded by an earlier verification.
type Anchor struct {
	Seq  int64
	Hash []byte
}

// AnchorError reports an anchor the chain no longer matches: the rows from
// it on were cut, or the history up to it was rewritten.
type AnchorError struct {
	Anchor  Anchor
	Head    int64  // the chain's head seq now
	Hash    []byte // the hash at Anchor.Seq now; nil if the row is gone
	Problem string
}

// Error says what no longer matches and what that means.
func (e *AnchorError) Error() string { return e.Problem }

// CheckAnchor reports whether a, a head of this chain recorded earlier, still
// holds: the row at a.Seq exists with a.Hash. head is the seq of the chain's
// head, which Verify has just checked in the same snapshot as q (so a
// missing row means the tail was cut, since the chain has no gaps). It
// returns an *AnchorError if not, and an Internal error if it cannot read.
func (l *Log) CheckAnchor(ctx context.Context, q Querier, a Anchor, head int64) error {
	if a.Seq > head {
		return &AnchorError{Anchor: a, Head: head,
			Problem: fmt.Sprintf("anchor seq %d is gone, the chain now ends at seq %d (rows were deleted)", a.Seq, head)}
	}
	var hash []byte
	if err := q.QueryRow(ctx, "SELECT hash FROM "+l.table+" WHERE seq = $1", a.Seq).Scan(&hash); err != nil {
		return errs.Wrap(errs.Internal, "audit anchor check failed", fmt.Errorf("read seq %d: %w", a.Seq, err))
	}
	if !bytes.Equal(hash, a.Hash) {
		return &AnchorError{Anchor: a, Head: head, Hash: hash,
			Problem: fmt.Sprintf("anchor seq %d has hash %x, not the anchored %x (history was rewritten)", a.Seq, hash, a.Hash)}
	}
	return nil
}

// CheckRecorded checks every anchor recorded for this schema in
// audit_anchors.heads as CheckAnchor checks one, the oldest that fails
// first, and returns the newest (zero if none is recorded yet). Checking
// them all, not only the newest, means that an anchor appended for a
// rewritten chain does not hide the rewrite from the older ones. It returns
// an *AnchorError on a mismatch, and an Internal error if the table cannot
// be read (it is missing: PrepareAnchors has not run; or the role may not
// read it).
func (l *Log) CheckRecorded(ctx context.Context, q Querier, head int64) (Anchor, error) {
	var bad Anchor
	err := q.QueryRow(ctx, `SELECT a.seq, a.hash FROM `+anchorTable+` a LEFT JOIN `+l.table+` e ON e.seq = a.seq
		WHERE a.schema_name = $1 AND e.hash IS DISTINCT FROM a.hash ORDER BY a.seq LIMIT 1`, l.schema).Scan(&bad.Seq, &bad.Hash)
	switch {
	case err == nil:
		if err := l.CheckAnchor(ctx, q, bad, head); err != nil {
			return Anchor{}, err
		}
		return Anchor{}, errs.Wrap(errs.Internal, "audit anchor check failed", fmt.Errorf("anchor seq %d both fails and holds", bad.Seq))
	case !errors.Is(err, pgx.ErrNoRows):
		return Anchor{}, errs.Wrap(errs.Internal, "audit anchor check failed", fmt.Errorf("read %s: %w", anchorTable, err))
	}
	var newest Anchor
	err = q.QueryRow(ctx, "SELECT seq, hash FROM "+anchorTable+" WHERE schema_name = $1 ORDER BY seq DESC LIMIT 1", l.schema).Scan(&newest.Seq, &newest.Hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Anchor{}, errs.Wrap(errs.Internal, "audit anchor check failed", fmt.Errorf("read %s: %w", anchorTable, err))
	}
	return newest, nil
}

// Record appends rep's head to audit_anchors.heads as the anchor later
// verifications check against, and reports whether it added a row (not if
// the chain is empty or the head is recorded already). Call it only with
// a report Verify returned without a *ChainError, and after CheckRecorded
// passed: an anchor vouches for everything before it. q must be allowed to
// write: the verifier's sessions are read-only unless a transaction says
// otherwise. Errors are Internal.
func (l *Log) Record(ctx context.Context, q Querier, rep Report) (bool, error) {
	if rep.HeadSeq == 0 {
		return false, nil
	}
	tag, err := q.Exec(ctx, "INSERT INTO "+anchorTable+" (schema_name, seq, hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
		l.schema, rep.HeadSeq, rep.HeadHash)
	if err != nil {
		return false, errs.Wrap(errs.Internal, "audit anchor not recorded", fmt.Errorf("insert into %s: %w", anchorTable, err))
	}
	return tag.RowsAffected() == 1, nil
}
