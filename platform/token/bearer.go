package token

import (
	"context"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// The reasons Authenticate gives for refusing a request's bearer token, as
// bank_token_rejections_total counts them, besides ReasonMalformed (not
// "Bearer <token>") and a failed verification's own reason (expired,
// revoked …).
const (
	ReasonMissing   = "missing"    // no Authorization header
	ReasonMultiple  = "multiple"   // more than one: which one was meant is a guess, so none is read
	ReasonInvalid   = "invalid"    // refused by a verifier that gave no reason
	ReasonNoSubject = "no_subject" // verified, but names no user
)

// Authenticate is the one bearer-token check: the edge runs it on a
// request's Authorization headers and every gRPC server on a call's
// authorization metadata. authorization must hold exactly one value of the
// form "Bearer <token>", whose token v verifies and whose user has an id.
// It returns the raw token and its user, or the refusal's reason (for the
// counters only) and an Unauthenticated error that says nothing more than
// "authentication required" (no header) or "invalid token".
func Authenticate(ctx context.Context, v identity.Verifier, authorization []string) (raw string, user identity.User, reason string, err error) {
	switch {
	case len(authorization) == 0:
		return "", identity.User{}, ReasonMissing, errs.Reasoned(errs.Unauthenticated, ReasonMissing, "authentication required")
	case len(authorization) > 1:
		return "", identity.User{}, ReasonMultiple, errs.Reasoned(errs.Unauthenticated, ReasonMultiple, "invalid token")
	}
	raw, ok := ParseBearer(authorization[0])
	if !ok {
		return "", identity.User{}, ReasonMalformed, errs.Reasoned(errs.Unauthenticated, ReasonMalformed, "invalid token")
	}
	user, err = v.Verify(ctx, raw)
	if err != nil {
		reason = ReasonInvalid
		if e, ok := errs.As(err); ok && e.Reason != "" {
			reason = e.Reason
		}
		return "", identity.User{}, reason, errs.Wrap(errs.Unauthenticated, "invalid token", err)
	}
	if user.ID == "" {
		return "", identity.User{}, ReasonNoSubject, errs.Reasoned(errs.Unauthenticated, ReasonNoSubject, "invalid token")
	}
	return raw, user, "", nil
}
