package rpc

import (
	"log/slog"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/refusal"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// AuditDenials returns counters for grpcserver.Config that count with next
// and audit every authorization denial the platform decides through svc
// (platform/grpcserver.AuditDenials), under the platform's one action name.
// peer is the server's own Config.Peer; a denial that cannot be audited is
// logged.
func AuditDenials(next refusal.Counters, svc *domain.Service, peer grpcserver.PeerFunc, logger *slog.Logger) refusal.Counters {
	return grpcserver.AuditDenials(next, svc.AuditDenial, peer, logger)
}
