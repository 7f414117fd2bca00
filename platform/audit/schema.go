package audit

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
)

// MigrationName is the file name under which Migrations offers the DDL. It
// sorts after numbered service migrations ("0001_…") and does not depend on
// them.
const MigrationName = "audit_0001_events.sql"

// MigrationSQL returns the DDL that creates <schema>.audit_events and the
// trigger that makes it append-only. It panics on a schema name that is not
// a plain lower-case identifier.
func MigrationSQL(schema string) string {
	return fmt.Sprintf(ddl, mustSchema(schema))
}

// Migrations returns a migration set holding MigrationSQL(schema) as
// MigrationName, to pass to postgres.Migrate beside the service's own:
//
//	postgres.Migrate(ctx, pool, "auth", serviceMigrations, audit.Migrations("auth"))
func Migrations(schema string) fs.FS {
	// archive/zip's Reader is the standard library's in-memory fs.FS; a
	// one-file archive is the plainest way to build one at run time.
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, err := w.Create(MigrationName)
	if err == nil {
		_, err = f.Write([]byte(MigrationSQL(schema)))
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		panic(fmt.Sprintf("audit: build migration archive: %v", err)) // writes to memory cannot fail
	}
	r, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		panic(fmt.Sprintf("audit: read migration archive: %v", err))
	}
	return r
}

// ddl is the audit table, as a format string: %[1]s is the quoted schema
// and %% a literal percent sign. The trigger function pins its search_path
// so that objects planted in another schema cannot change what it runs.
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
