package rpc

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// auditedCounters passes every count to the platform's counters and also
// writes each authorization denial to the ledger's audit chain, so the
// chain shows who was refused what, not only how often.
type auditedCounters struct {
	grpcserver.Counters
	svc    *domain.Service
	peer   grpcserver.PeerFunc
	logger *slog.Logger
}

// AuditDenials returns counters for grpcserver.Config that count with next
// and audit every authorization denial the platform decides through svc.
// peer names the calling service of a call refused before the platform put
// it on the context (the server's own Config.Peer). A denial that cannot be
// audited is logged.
func AuditDenials(next grpcserver.Counters, svc *domain.Service, peer grpcserver.PeerFunc, logger *slog.Logger) grpcserver.Counters {
	return auditedCounters{Counters: next, svc: svc, peer: peer, logger: logger}
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
	if err := c.svc.AuditDenial(ctx, reason, method); err != nil {
		c.logger.ErrorContext(ctx, "authorization denial not audited", "reason", reason, "method", method, "error", err.Error())
	}
}
