package domain

import (
	"context"
	"time"

	"github.com/bastion-bank/bastion/platform/identity"
)

// denialAuditTimeout bounds the audit write of a refusal, so a slow
// database never holds up the answer to a request that is refused anyway.
const denialAuditTimeout = 2 * time.Second

// AuditDenial appends a denial event for a refused request under action,
// the name the platform gives every authorization denial
// (platform/grpcserver.ActionAuthzDenied, handed over by AuditDenials): the
// user on ctx (or the calling service, or "anonymous") is the actor, reason
// a stable code such as "not_owner", and operation the refused call, if
// known. The refusal stands whether or not it is recorded; the write gives
// up after two seconds and its error is returned for the caller to log.
func (s *Service) AuditDenial(ctx context.Context, action, reason, operation string) error {
	actor := "anonymous"
	if u, ok := identity.UserFrom(ctx); ok && u.ID != "" {
		actor = u.ID
	} else if svc, ok := identity.ServiceFrom(ctx); ok {
		actor = "service:" + svc
	}
	ev := Event{Action: action, ActorID: actor, Outcome: OutcomeDenied, Reason: reason}
	if operation != "" {
		ev.Details = map[string]string{"operation": operation}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), denialAuditTimeout)
	defer cancel()
	return s.repo.Audit(ctx, ev)
}
