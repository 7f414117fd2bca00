package audit

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
)

// migrations are the audit table's DDL files, in the order they run. Their
// names sort after numbered service migrations ("0001_…") and do not depend
// on them. A file, once released, is never edited: databases that ran it
// are changed by the next one.
var migrations = []struct{ name, ddl string }{
	{"audit_0001_events.sql", ddl},
	{"audit_0002_sealing.sql", sealingDDL},
	{"audit_0003_reader.sql", readerDDL},
	{"audit_0004_insert_check_when_sealed.sql", insertWhenDDL},
	{"audit_0005_seal_check_by_row.sql", sealCheckDDL},
}

// ReaderRole is the group role that may read every schema's audit_events
// and nothing else: a verifier (deploy/cmd/auditverify) logs in as a member
// of it, so checking the chains needs no role that could also rewrite them.
// The database's administrator creates it, NOLOGIN (postgres.ProvisionReader
// does); the migration below grants it the table if it exists by then.
const ReaderRole = "bank_audit_reader"

// RuntimeGrant is what a service's runtime role may do to its schema's
// audit_events (its value in postgres.Grants): read, append pending rows,
// and seal them, that is set the chain columns, which the trigger allows
// once, from NULL. No DELETE, no TRUNCATE, no other column: only the
// table's owner could change a row, by switching the trigger off first.
const RuntimeGrant = "SELECT, INSERT, UPDATE (seq, prev_hash, hash)"

// Migrations returns a migration set holding the audit table's files, to
// pass to postgres.Migrate beside the service's own:
//
//	postgres.Migrate(ctx, pool, "auth", grants, serviceMigrations, audit.Migrations("auth"))
func Migrations(schema string) fs.FS {
	q := mustSchema(schema)
	// archive/zip's Reader is the standard library's in-memory fs.FS; an
	// archive is the plainest way to build one at run time.
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, m := range migrations {
		f, err := w.Create(m.name)
		if err == nil {
			_, err = f.Write([]byte(fmt.Sprintf(m.ddl, q)))
		}
		if err != nil {
			panic(fmt.Sprintf("audit: build migration archive: %v", err)) // writes to memory cannot fail
		}
	}
	if err := w.Close(); err != nil {
		panic(fmt.Sprintf("audit: build migration archive: %v", err))
	}
	r, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		panic(fmt.Sprintf("audit: read migration archive: %v", err))
	}
	return r
}

// ddl is the audit table as first released, as a format string: %[1]s is
// the quoted schema and %% a literal percent sign. The trigger function pins
// its search_path so that objects planted in another schema cannot change
// what it runs.
const ddl = `CREATE TABLE %[1]s.audit_events (
	seq       bigint PRIMARY KEY CHECK (seq > 0),
	at        timestamptz NOT NULL,
	actor     text NOT NULL,
	action    text NOT NULL,
	resource  text NOT NULL,
	outcome   text NOT NULL,
	reason    text NOT NULL,
	client_ip text NOT NULL,
	trace_id  text NOT NULL,
	detail    jsonb NOT NULL,
	prev_hash bytea NOT NULL,
	hash      bytea NOT NULL
);

COMMENT ON TABLE %[1]s.audit_events IS
	'Append-only, hash-chained audit log (platform/audit). Never update or delete.';

CREATE FUNCTION %[1]s.audit_events_append_only() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	RAISE EXCEPTION 'audit_events is append-only: %% refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_no_update_delete
	BEFORE UPDATE OR DELETE ON %[1]s.audit_events
	FOR EACH ROW EXECUTE FUNCTION %[1]s.audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate
	BEFORE TRUNCATE ON %[1]s.audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION %[1]s.audit_events_append_only();
`

// sealingDDL takes the chain off the audited transaction's path: Append
// inserts a pending row (seq, prev_hash and hash NULL) and a sealer links
// committed rows into the chain later (Seal). Rows get an id, their key
// before they have a seq, and recorded_at, from which Verify tells how long a
// row has waited. The trigger now lets exactly one change through, sealing:
// the three chain columns set once, from NULL, with every other column as it
// was. A deferred check, run at the sealer's commit, refuses a sealed row
// that does not link to the sealed row before it, so the sealed rows always
// form one gap-free chain of links (Verify still checks every hash).
// Inserting a row that claims to be sealed already is refused: the chain is
// written by sealers only.
const sealingDDL = `ALTER TABLE %[1]s.audit_events DROP CONSTRAINT audit_events_pkey;

ALTER TABLE %[1]s.audit_events
	ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY,
	ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	ALTER COLUMN seq DROP NOT NULL,
	ALTER COLUMN prev_hash DROP NOT NULL,
	ALTER COLUMN hash DROP NOT NULL,
	ADD CONSTRAINT audit_events_pkey PRIMARY KEY (id),
	ADD CONSTRAINT audit_events_seq_key UNIQUE (seq),
	ADD CONSTRAINT audit_events_sealed_whole
		CHECK ((seq IS NULL) = (prev_hash IS NULL) AND (seq IS NULL) = (hash IS NULL)),
	-- A row the sealer could not read would stop the chain behind it.
	ADD CONSTRAINT audit_events_at_finite CHECK (isfinite(at)) NOT VALID;

-- What the sealers look for, kept small: only pending rows are in it.
CREATE INDEX audit_events_pending ON %[1]s.audit_events (id) WHERE seq IS NULL;

COMMENT ON TABLE %[1]s.audit_events IS
	'Append-only, hash-chained audit log (platform/audit). Rows are inserted pending and sealed once by a sealer; never update or delete.';

CREATE OR REPLACE FUNCTION %[1]s.audit_events_append_only() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		IF NEW.seq IS NULL AND NEW.prev_hash IS NULL AND NEW.hash IS NULL THEN
			RETURN NEW;
		END IF;
	ELSIF TG_OP = 'UPDATE' THEN
		-- Sealing: seq, prev_hash and hash set once, from NULL, and nothing
		-- else changed (compared whole, so a column added later is covered).
		IF OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL AND NEW.seq IS NOT NULL
			AND to_jsonb(NEW) - '{seq,prev_hash,hash}'::text[] = to_jsonb(OLD) - '{seq,prev_hash,hash}'::text[] THEN
			RETURN NEW;
		END IF;
	END IF;
	RAISE EXCEPTION 'audit_events is append-only: %% refused', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			DETAIL = 'Rows are inserted unsealed; only a sealer sets seq, prev_hash and hash, once.';
END
$$;

CREATE TRIGGER audit_events_insert_unsealed
	BEFORE INSERT ON %[1]s.audit_events
	FOR EACH ROW EXECUTE FUNCTION %[1]s.audit_events_append_only();

CREATE FUNCTION %[1]s.audit_events_linked() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF NEW.seq = 1 AND NEW.prev_hash = decode(repeat('00', 32), 'hex') THEN
		RETURN NULL;
	END IF;
	IF NEW.seq > 1 AND EXISTS (SELECT 1 FROM %[1]s.audit_events p
			WHERE p.seq = NEW.seq - 1 AND p.hash = NEW.prev_hash) THEN
		RETURN NULL;
	END IF;
	RAISE EXCEPTION 'audit_events seq %% does not link to the sealed row before it', NEW.seq
		USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE CONSTRAINT TRIGGER audit_events_linked
	AFTER UPDATE ON %[1]s.audit_events
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW WHEN (NEW.seq IS NOT NULL)
	EXECUTE FUNCTION %[1]s.audit_events_linked();
`

// readerDDL lets ReaderRole read this table: USAGE on the schema (which lets
// it see names, not data) and SELECT on audit_events, nothing more. The
// schema's owner runs it, so no superuser is needed; where the role does not
// exist yet it grants nothing, and the administrator's provisioning, which
// creates the role, grants the same on tables that already exist.
const readerDDL = `DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '` + ReaderRole + `') THEN
		GRANT USAGE ON SCHEMA %[1]s TO ` + ReaderRole + `;
		GRANT SELECT ON %[1]s.audit_events TO ` + ReaderRole + `;
	END IF;
END
$$;
`

// insertWhenDDL moves the insert check's condition into the trigger's WHEN
// clause, so that an ordinary insert (every audited action of every
// service) runs no PL/pgSQL at all: the function is called only for a row
// that arrives with any chain column set, and refuses it, as before. What
// is refused is unchanged, which TestTriggerAllowsOnlySealing holds for
// each column alone; what is saved is a PL/pgSQL call per row (13–18 µs of
// the database's time per audit row, docs/performance.md). The DROP and the
// CREATE run in the migration's one transaction, so no insert can slip
// between them unchecked.
const insertWhenDDL = `DROP TRIGGER audit_events_insert_unsealed ON %[1]s.audit_events;

CREATE TRIGGER audit_events_insert_unsealed
	BEFORE INSERT ON %[1]s.audit_events
	FOR EACH ROW WHEN (NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL)
	EXECUTE FUNCTION %[1]s.audit_events_append_only();
`

// sealCheckDDL restates the append-only function (a migration restates a
// function whole; audit_0002 is never edited) with one change: a seal's
// "nothing else changed" is checked by comparing the row, with its chain
// columns cleared, to the row before, as composite values, instead of
// converting both to jsonb. The comparison still covers every column,
// those added later included, and treats a NULL like any other value, as
// the jsonb one did; it takes about half the time per sealed row (20,000
// rows sealed in one UPDATE: 359–424 ms before, 205–212 ms after,
// docs/performance.md). TestTriggerAllowsOnlySealing holds what it refuses.
const sealCheckDDL = `CREATE OR REPLACE FUNCTION %[1]s.audit_events_append_only() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	unsealed %[1]s.audit_events;
BEGIN
	IF TG_OP = 'INSERT' THEN
		IF NEW.seq IS NULL AND NEW.prev_hash IS NULL AND NEW.hash IS NULL THEN
			RETURN NEW;
		END IF;
	ELSIF TG_OP = 'UPDATE' THEN
		-- Sealing: seq, prev_hash and hash set once, from NULL, and nothing
		-- else changed (the whole row compared, so a column added later is
		-- covered; two NULLs compare equal in a composite value).
		unsealed := NEW;
		unsealed.seq := NULL;
		unsealed.prev_hash := NULL;
		unsealed.hash := NULL;
		IF OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL AND NEW.seq IS NOT NULL
			AND unsealed IS NOT DISTINCT FROM OLD THEN
			RETURN NEW;
		END IF;
	END IF;
	RAISE EXCEPTION 'audit_events is append-only: %% refused', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			DETAIL = 'Rows are inserted unsealed; only a sealer sets seq, prev_hash and hash, once.';
END
$$;
`
