package telemetry

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/bastion-bank/bastion/platform/errs"
)

// The scope under which the security counters are created.
const securityScope = "github.com/bastion-bank/bastion/platform/telemetry"

// OtherReason is the label value used in place of a reason or event that is
// malformed, or that arrives after a counter already holds
// [MaxReasonsPerCounter] distinct values.
const OtherReason = "other"

// MaxReasonsPerCounter bounds how many distinct reason (or event+reason)
// label values one counter may ever carry. Reasons are meant to be constants
// in code; if one is ever built from request data, this cap stops an attacker
// from growing the metrics without limit and taking the scraper down.
const MaxReasonsPerCounter = 64

// maxLabelLen bounds a single label value.
const maxLabelLen = 64

// Security counts the events an operator watches for attacks. Every method
// takes a short, stable, snake_case reason (for example "bad_password",
// "expired", "missing_role") that is safe to show on a dashboard; never put
// request data in it.
//
// The counters appear in Prometheus as
//
//	bank_login_failures_total{reason}
//	bank_token_rejections_total{reason}
//	bank_authz_denials_total{reason}
//	bank_validation_failures_total{reason}
//	bank_ratelimit_rejections_total{reason}
//	bank_security_events_total{event,reason}
//
// Each decision is also an event on the span in the method's context (the
// request's), named after its counter ("security.login_failure",
// "security.token_rejection", "security.authz_denial",
// "security.validation_failure", "security.ratelimit_rejection",
// "security.event") and carrying the same reason (and event) label values
// the counter got, never anything else: a trace then shows why a request was
// refused, though the client's answer does not, and the counter's exemplar
// leads from a spike to those traces. So pass the request's context.
//
// A nil *Security discards everything, so code under test need not build one.
// It is safe for concurrent use.
type Security struct {
	loginFailures      guardedCounter
	tokenRejections    guardedCounter
	authzDenials       guardedCounter
	validationFailures guardedCounter
	rateLimited        guardedCounter
	events             guardedCounter
}

// NewSecurity creates the security counters on mp. Setup calls it; tests in
// other packages may call it with their own meter provider.
func NewSecurity(mp metric.MeterProvider) (*Security, error) {
	m := mp.Meter(securityScope)
	s := &Security{}
	for _, c := range []struct {
		dst        *guardedCounter
		name, desc string
		spanEvent  string
	}{
		{&s.loginFailures, "bank_login_failures", "Failed login attempts, by reason.", "security.login_failure"},
		{&s.tokenRejections, "bank_token_rejections", "Access or refresh tokens rejected, by reason.", "security.token_rejection"},
		{&s.authzDenials, "bank_authz_denials", "Calls denied by an access rule, by reason.", "security.authz_denial"},
		{&s.validationFailures, "bank_validation_failures", "Requests rejected by input validation, by reason.", "security.validation_failure"},
		{&s.rateLimited, "bank_ratelimit_rejections", "Requests rejected by a rate limit, by reason.", "security.ratelimit_rejection"},
		{&s.events, "bank_security_events", "Other security events (refresh token reuse, account freeze, ...), by event and reason.", "security.event"},
	} {
		ctr, err := m.Int64Counter(c.name, metric.WithDescription(c.desc))
		if err != nil {
			return nil, errs.Wrap(errs.Internal, "create security counter", err)
		}
		*c.dst = guardedCounter{counter: ctr, spanEvent: c.spanEvent, seen: make(map[string]struct{})}
	}
	return s, nil
}

// LoginFailed counts a failed login (wrong password, unknown email, locked).
func (s *Security) LoginFailed(ctx context.Context, reason string) {
	if s != nil {
		s.loginFailures.add(ctx, "", reason)
	}
}

// TokenRejected counts a token that failed verification (expired, bad
// signature, revoked, wrong audience).
func (s *Security) TokenRejected(ctx context.Context, reason string) {
	if s != nil {
		s.tokenRejections.add(ctx, "", reason)
	}
}

// AuthzDenied counts a call an access rule refused.
func (s *Security) AuthzDenied(ctx context.Context, reason string) {
	if s != nil {
		s.authzDenials.add(ctx, "", reason)
	}
}

// ValidationFailed counts a request refused by input validation.
func (s *Security) ValidationFailed(ctx context.Context, reason string) {
	if s != nil {
		s.validationFailures.add(ctx, "", reason)
	}
}

// RateLimited counts a request refused by a rate limit.
func (s *Security) RateLimited(ctx context.Context, reason string) {
	if s != nil {
		s.rateLimited.add(ctx, "", reason)
	}
}

// Event counts any other security event, such as "refresh_reuse" or
// "account_frozen", with a reason.
func (s *Security) Event(ctx context.Context, event, reason string) {
	if s != nil {
		// SafeLabel never returns "", so the event label is always present.
		s.events.add(ctx, SafeLabel(event), reason)
	}
}

// guardedCounter is a counter whose label values are checked and capped,
// and which records each decision it counts on the request's span.
type guardedCounter struct {
	counter   metric.Int64Counter
	spanEvent string // the name of the span event

	mu   sync.Mutex
	seen map[string]struct{} // "event\x00reason" pairs already admitted
}

// add increments the counter and adds the span event, both with the
// admitted label values. event is "" for counters without that label.
func (g *guardedCounter) add(ctx context.Context, event, reason string) {
	event, reason = g.admit(event, reason)
	labels := []attribute.KeyValue{attribute.String("reason", reason)}
	if event != "" {
		labels = append(labels, attribute.String("event", event))
	}
	trace.SpanFromContext(ctx).AddEvent(g.spanEvent, trace.WithAttributes(labels...))
	if g.counter != nil {
		g.counter.Add(ctx, 1, metric.WithAttributes(labels...))
	}
}

// admit returns the label values to record: the given ones when they are
// well formed and either already seen or within the cap, else "other".
func (g *guardedCounter) admit(event, reason string) (string, string) {
	hasEvent := event != ""
	if hasEvent {
		event = SafeLabel(event)
	}
	reason = SafeLabel(reason)
	key := event + "\x00" + reason
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.seen[key]; ok {
		return event, reason
	}
	if len(g.seen) < MaxReasonsPerCounter {
		g.seen[key] = struct{}{}
		return event, reason
	}
	if hasEvent {
		return OtherReason, OtherReason
	}
	return event, OtherReason
}

// SafeLabel returns v if it is 1 to 64 characters from [a-z0-9_.:/-], and
// [OtherReason] otherwise. Anything looser would let request data (an email,
// a token, a path with an id) become a metric label.
func SafeLabel(v string) string {
	if len(v) == 0 || len(v) > maxLabelLen {
		return OtherReason
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == ':', c == '/', c == '-':
		default:
			return OtherReason
		}
	}
	return v
}
