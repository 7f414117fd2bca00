// Package refusal is what every security control shares about the requests
// it refuses: the Counters it reports each refusal to, for the dashboards,
// and the reasons more than one control gives. The edge's middleware and
// policy and every gRPC server's chain take the same Counters;
// *platform/telemetry.Security is the implementation.
package refusal

import "context"

// Counters records refusals by a short, stable reason (never request data).
type Counters interface {
	TokenRejected(ctx context.Context, reason string)
	AuthzDenied(ctx context.Context, reason string)
	ValidationFailed(ctx context.Context, reason string)
	RateLimited(ctx context.Context, reason string)
}

// Nop counts nothing: what a control uses when it is given no Counters.
var Nop Counters = nop{}

type nop struct{}

func (nop) TokenRejected(context.Context, string)    {}
func (nop) AuthzDenied(context.Context, string)      {}
func (nop) ValidationFailed(context.Context, string) {}
func (nop) RateLimited(context.Context, string)      {}

// ReasonUnsynced is the bank_token_rejections_total reason for a user call
// refused, at the edge or by a service, because the list of revoked tokens
// is not current: the token was not read, so it says nothing about the
// token, but a steady rise means a verifier has lost the auth service's
// feed.
const ReasonUnsynced = "revocations_unsynced"
