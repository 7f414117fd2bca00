// Package edge holds the gateway's HTTP-side controls: the per-request State
// that the middleware fills and the gRPC policy reads, the middleware itself
// (request ids, security headers, client IP, body limits, media types, CORS)
// and the one RFC 9457 problem+json renderer every error goes through.
//
// Nothing in this package trusts a client header for identity: the client IP
// comes from the socket unless the peer is a configured proxy, and the request
// id is echoed only when it is short and plain.
package edge

import (
	"context"
	"sync"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// State is what the edge knows about one request. The HTTP middleware creates
// it before routing; the gRPC policy (which runs inside the grpc-gateway
// handler, on the same context) records the rate-limit decision in it so
// that the error renderer and the response writer can send the RateLimit
// headers. Values set by the middleware are read-only afterwards.
type State struct {
	RequestID string // the id echoed in X-Request-Id and sent upstream
	ClientIP  string // the end client's address, never read from an untrusted header

	// Authorization holds every Authorization header value as received. The
	// policy accepts exactly one bearer token and forwards only what it
	// verified.
	Authorization []string

	// IdempotencyKeys holds every Idempotency-Key header value as received.
	// The policy copies exactly one into the request message, or refuses.
	IdempotencyKeys []string

	// RawQuery is the request's query string as received. The policy
	// refuses any parameter the route does not take.
	RawQuery string

	mu      sync.Mutex
	rate    ratelimit.Result // held by value: a pointer cost an allocation per request
	hasRate bool
	access  accessInfo
}

// ClientKey is the rate-limit key of the client's address:
// identity.ClientKey, the one the auth service's failed-login throttle uses
// too, so the two agree on who one client is. An IPv6 client is keyed by its
// /64, the block one subscriber is normally given: keyed by full address, a
// single host could rotate through 2^64 addresses and never run out of
// budget.
func (s *State) ClientKey() string { return identity.ClientKey(s.ClientIP) }

type stateKey struct{}

// WithState returns a context carrying s.
func WithState(ctx context.Context, s *State) context.Context {
	return context.WithValue(ctx, stateKey{}, s)
}

// StateFrom returns the request's State, if the edge middleware ran.
func StateFrom(ctx context.Context) (*State, bool) {
	s, ok := ctx.Value(stateKey{}).(*State)
	return s, ok && s != nil
}

// SetRateLimit records the decision of the rate limit that applied to the
// request. When several limits apply, the caller records the one a client
// most needs to see: the refusal, or else the one closest to running out.
func (s *State) SetRateLimit(r ratelimit.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate, s.hasRate = r, true
}

// RateLimit returns the recorded rate-limit decision, if any.
func (s *State) RateLimit() (ratelimit.Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rate, s.hasRate
}
