package rpc

import (
	"context"

	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// auditedCounters passes every count to the platform's counters and also
// writes each authorization denial to this service's audit trail, so the
// trail shows who was refused what, not only how often.
type auditedCounters struct {
	grpcserver.Counters
	svc  *domain.Service
	peer grpcserver.PeerFunc
}

// AuditDenials returns counters for grpcserver.Config that count with next
// and audit every authorization denial the platform decides (a caller not
// allowed, a missing role, someone else's account) through svc. peer names
// the calling service of a call refused before the platform recorded it
// (the server's own Config.Peer).
func AuditDenials(next grpcserver.Counters, svc *domain.Service, peer grpcserver.PeerFunc) grpcserver.Counters {
	return auditedCounters{Counters: next, svc: svc, peer: peer}
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
	c.svc.AuditDenial(ctx, reason, method)
}
