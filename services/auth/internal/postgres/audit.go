package postgres

import (
	"context"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// auditor writes domain audit events to the schema's hash-chained log.
type auditor struct{ log *audit.Log }

func newAuditor(now func() time.Time) auditor { return auditor{log: audit.New(Schema, now)} }

func auditMigrations() fs.FS { return audit.Migrations(Schema) }

// append records e inside tx, so it commits or rolls back with the change.
func (a auditor) append(ctx context.Context, tx pgx.Tx, e domain.AuditEvent) error {
	ev := audit.Event{
		Actor:    e.Actor,
		Action:   e.Action,
		Resource: e.Resource,
		Outcome:  e.Outcome,
		Reason:   e.Reason,
		ClientIP: e.ClientIP,
		Detail:   e.Detail,
		At:       e.At,
	}
	if ev.Actor == "" {
		ev.Actor = "anonymous"
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		ev.TraceID = sc.TraceID().String()
	}
	return a.log.Append(ctx, tx, ev)
}
