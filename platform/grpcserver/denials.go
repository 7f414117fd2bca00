package grpcserver

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/refusal"
)

// ActionAuthzDenied is the audit action of every authorization denial, in
// every service's trail: one name, so one query finds them all. AuditDenials
// hands it to the service's DenialAuditor, which records it as given.
const ActionAuthzDenied = "authz.denied"

// DenialAuditor writes one authorization denial to a service's own audit
// trail: under action (always ActionAuthzDenied), with its reason and the
// refused full method.
type DenialAuditor func(ctx context.Context, action, reason, method string) error

// AuditDenials returns Counters for Config that count with next and also
// audit every authorization denial the chain decides (a caller not allowed,
// a missing role, someone else's resource), so the trail shows who was
// refused what, not only how often. peer names the calling service of a call
// refused before the chain put it on the context (use the server's own
// Config.Peer). A denial that cannot be audited is logged, if logger is set.
func AuditDenials(next refusal.Counters, audit DenialAuditor, peer PeerFunc, logger *slog.Logger) refusal.Counters {
	if next == nil {
		next = refusal.Nop
	}
	return auditedCounters{Counters: next, audit: audit, peer: peer, logger: logger}
}

type auditedCounters struct {
	refusal.Counters
	audit  DenialAuditor
	peer   PeerFunc
	logger *slog.Logger
}

// AuthzDenied counts the denial and audits it with the refused method.
func (c auditedCounters) AuthzDenied(ctx context.Context, reason string) {
	c.Counters.AuthzDenied(ctx, reason)
	if _, ok := identity.ServiceFrom(ctx); !ok && c.peer != nil {
		if name, err := c.peer(ctx); err == nil {
			ctx = identity.WithService(ctx, name)
		}
	}
	method, _ := grpc.Method(ctx)
	if err := c.audit(ctx, ActionAuthzDenied, reason, method); err != nil && c.logger != nil {
		c.logger.ErrorContext(ctx, "authorization denial not audited", "reason", reason, "method", method, "error", err.Error())
	}
}
