package audit

import (
	"context"
	"encoding/json"
	"fmt"
)

// FirstMigrationSQL is the audit table as the first release created it,
// and SealingMigrationSQL the migration that followed: the upgrade test
// runs them apart, with rows written in between.
func FirstMigrationSQL(schema string) string   { return fmt.Sprintf(ddl, mustSchema(schema)) }
func SealingMigrationSQL(schema string) string { return fmt.Sprintf(sealingDDL, mustSchema(schema)) }

// AppendV1 writes ev as the first release's Append did: linked at insert,
// as seq, after prev. It returns the row's hash.
func (l *Log) AppendV1(ctx context.Context, q Querier, seq int64, prev []byte, ev Event) ([]byte, error) {
	r := l.record(ev)
	r.seq, r.prevHash = seq, prev
	r.hash = r.chainHash(prev)
	detail, err := json.Marshal(r.detail)
	if err != nil {
		return nil, err
	}
	_, err = q.Exec(ctx, "INSERT INTO "+l.table+` (seq, at, actor, action, resource, outcome, reason,
		client_ip, trace_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		r.seq, r.at, r.actor, r.action, r.resource, r.outcome, r.reason, r.clientIP, r.traceID, detail, r.prevHash, r.hash)
	return r.hash, err
}

// Genesis is the prev_hash of the first row.
var Genesis = genesis
