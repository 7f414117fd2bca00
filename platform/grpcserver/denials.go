package grpcserver

import (
	"context"
	"errors"
	"time"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// DenialRecorder writes authorization denials to a service's own audit
// trail (Config.Denials), so the trail shows who was refused what, not only
// how often. Each service's domain.Service implements it.
type DenialRecorder interface {
	// RecordDenial records d. Its error is logged; the refusal stands either
	// way.
	RecordDenial(ctx context.Context, d identity.Denial) error
}

// denialAuditTimeout bounds the audit write of a denial, so a slow database
// never holds up the answer to a call that is refused anyway; the write
// goes on even if the caller has gone.
const denialAuditTimeout = 2 * time.Second

// denialsStep counts every authorization denial (an *rbac.Denied) that a
// step after it or the handler returns, and hands it, resolved, to
// Config.Denials: the caller not allowed, a missing role, someone else's
// resource, or a denial the service decides itself.
func (s *Server) denialsStep(ctx context.Context, c *Call, next Next) error {
	err := next(ctx)
	var d *rbac.Denied
	if errors.As(err, &d) {
		s.deny(c, d.Reason)
	}
	return err
}

// deny counts and records a denial, resolved against the context of the
// innermost step the call reached: the verified user, else the calling
// service (from its certificate, if the call was refused before the chain
// put it on the context), else no one.
func (s *Server) deny(c *Call, reason string) {
	ctx := c.inner
	s.cfg.Counters.AuthzDenied(ctx, reason)
	if s.cfg.Denials == nil {
		return
	}
	if _, ok := identity.ServiceFrom(ctx); !ok {
		if name, err := s.cfg.Peer(ctx); err == nil {
			ctx = identity.WithService(ctx, name)
		}
	}
	d := identity.Denial{Action: identity.ActionDenied, Actor: identity.Actor(ctx), Reason: reason, Method: c.Method}
	d.ClientIP, _ = identity.ClientIPFrom(ctx)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), denialAuditTimeout)
	defer cancel()
	if err := s.cfg.Denials.RecordDenial(wctx, d); err != nil {
		s.cfg.Logger.ErrorContext(ctx, "authorization denial not audited", "reason", reason, "method", c.Method, "error", err.Error())
	}
}
