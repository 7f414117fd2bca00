package postgres

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// auditEvent turns a domain event into an audit row, adding the client IP
// the gateway established and the trace id, so an auditor can follow the
// event to its request's logs and spans.
func auditEvent(ctx context.Context, e domain.Event) audit.Event {
	out := audit.Event{
		Actor:    e.Actor,
		Action:   e.Action,
		Resource: e.Resource,
		Outcome:  e.Outcome,
		Reason:   e.Reason,
		Detail:   e.Detail,
	}
	if ip, ok := identity.ClientIPFrom(ctx); ok {
		out.ClientIP = ip
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		out.TraceID = sc.TraceID().String()
	}
	return out
}
