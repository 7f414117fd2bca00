package domain

import (
	"context"

	"github.com/bastion-bank/bastion/platform/identity"
)

// RecordDenial records that the platform refused a call before it reached
// the service (a calling service not allowed, a missing role), so the audit
// trail shows who was refused what, as the other services' trails do
// (platform/grpcserver.DenialRecorder): under d.Action, by d.Actor, with
// d.Reason, the refused method as the operation and the client's address.
// The platform bounds the write and keeps it going after the caller has
// gone; its error is returned for the platform to log.
func (s *Service) RecordDenial(ctx context.Context, d identity.Denial) error {
	ev := AuditEvent{Action: d.Action, Actor: d.Actor, Outcome: OutcomeDenied, Reason: d.Reason, ClientIP: d.ClientIP, At: s.now().UTC()}
	if d.Method != "" {
		ev.Detail = map[string]string{"operation": d.Method}
	}
	return s.store.InTx(ctx, func(tx Tx) error { return tx.Audit(ctx, ev) })
}
