package domain

import (
	"context"

	"github.com/bastion-bank/bastion/platform/identity"
)

// RecordDenial appends an authorization denial the platform decided
// (platform/grpcserver.DenialRecorder) to the audit trail: under d.Action,
// by d.Actor, with d.Reason, and the refused method as the operation. The
// platform bounds the write and keeps it going after the caller has gone;
// its error is returned for the platform to log.
func (s *Service) RecordDenial(ctx context.Context, d identity.Denial) error {
	ev := Event{Action: d.Action, Actor: d.Actor, Outcome: OutcomeDenied, Reason: d.Reason}
	if d.Method != "" {
		ev.Detail = map[string]string{"operation": d.Method}
	}
	return s.store.Audit(ctx, ev)
}
