package domain

import (
	"context"
	"time"

	"github.com/bastion-bank/bastion/platform/identity"
)

// denialAuditTimeout bounds the audit write of a refusal, so a slow
// database never holds up the answer to a request that is refused anyway.
const denialAuditTimeout = 2 * time.Second

// AuditDenial records that the platform refused a call before it reached
// the service (a calling service not allowed, a missing role), so the audit
// trail shows who was refused what, as the other services' trails do. It is
// written under action, the platform's one name for an authorization denial
// (platform/grpcserver.ActionAuthzDenied, handed over by AuditDenials),
// with reason a stable code such as "role" and operation the refused call.
// The actor is the verified user, else "service:" and the calling service,
// else "anonymous". The refusal stands whether or not it is recorded; the
// write gives up after two seconds, even if the caller has gone, and its
// error is returned for the caller to log.
func (s *Service) AuditDenial(ctx context.Context, action, reason, operation string) error {
	ev := AuditEvent{Type: action, ActorID: "anonymous", Outcome: OutcomeDenied, Reason: reason, At: s.now().UTC()}
	if u, ok := identity.UserFrom(ctx); ok && u.ID != "" {
		ev.ActorID = u.ID
	} else if svc, ok := identity.ServiceFrom(ctx); ok {
		ev.ActorID = "service:" + svc
	}
	if ip, ok := identity.ClientIPFrom(ctx); ok {
		ev.ClientIP = ip
	}
	if operation != "" {
		ev.Details = map[string]string{"operation": operation}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), denialAuditTimeout)
	defer cancel()
	return s.repo.InTx(ctx, func(tx Tx) error { return tx.Audit(ctx, ev) })
}
