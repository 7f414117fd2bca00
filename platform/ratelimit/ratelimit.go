// Package ratelimit is Bastion's one rate-limiting control.
//
// Every limit is a generic cell rate algorithm (GCRA): a key may spend up to
// Burst requests at once, and the allowance refills smoothly at Rate per
// Period. The gateway limits by client IP on the auth routes and by user on
// the rest; the auth service limits login failures per account. Replicas share
// counters through Redis (NewRedis); a single process, a test, or a replica
// whose Redis is down uses the in-memory limiter (NewMemory), and Fallback
// joins the two so that a Redis outage neither opens nor closes the gate.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Limit says how many requests a key may make: Rate per Period on average,
// and up to Burst at once. Name identifies the policy in headers, metrics and
// storage keys, so two limits with different rules need different names.
type Limit struct {
	Name   string        // e.g. "auth"; sent to clients in RateLimit headers
	Rate   int           // requests allowed per Period, on average
	Period time.Duration // the window Rate is measured over
	Burst  int           // requests allowed at once; 0 means Rate
}

// Result is a limiter's decision for one request.
type Result struct {
	Allowed    bool          // whether the request may proceed
	Limit      Limit         // the limit applied, with Burst filled in
	Remaining  int           // requests the key could make right now
	RetryAfter time.Duration // when not Allowed: how long until one request would be
	ResetAfter time.Duration // how long until the key is back to a full burst
}

// Limiter decides whether a request identified by key may proceed under l.
//
// Allow returns an error only when the limiter cannot decide (a Redis
// outage, an invalid Limit); it is never an error to be refused. Errors are
// *errs.Error of kind Unavailable or Internal.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Result, error)
	// Check reports whether key could make one more request under l now,
	// spending nothing. It is for budgets spent by outcomes rather than by
	// requests (the gateway's failed-authentication budget): the request is
	// checked before it runs and charged after it fails.
	Check(ctx context.Context, key string, l Limit) (Result, error)
}

// normalize fills in the default Burst and rejects a limit that would divide
// by zero or never refill. A bad limit is a configuration bug, so it is an
// Internal error rather than a silent "allow everything".
func (l Limit) normalize() (Limit, error) {
	if l.Burst == 0 {
		l.Burst = l.Rate
	}
	// An interval under a microsecond would round to nothing in Redis's
	// float clock (and to zero here for rates above one per nanosecond).
	if l.Rate <= 0 || l.Period <= 0 || l.Burst < 0 || !validName(l.Name) || l.interval() < time.Microsecond {
		return l, errs.Wrap(errs.Internal, "rate limit misconfigured",
			fmt.Errorf("invalid limit %q: rate %d per %s, burst %d", l.Name, l.Rate, l.Period, l.Burst))
	}
	return l, nil
}

// validName reports whether name is 1 to 64 letters, digits, '_', '.' or
// '-': safe in a header and unambiguous as the first part of a storage key.
func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// storageKey joins a limit's name and a caller's key. Keys often come from
// clients (an email, an IP), so a long one is replaced by its SHA-256: a
// client cannot make the limiter store megabytes per key.
func storageKey(name, key string) string {
	if len(key) > maxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	return name + ":" + key
}

// maxKeyLen is the longest key stored as is; longer ones are hashed.
const maxKeyLen = 128

// interval is the time one request's allowance takes to refill.
func (l Limit) interval() time.Duration {
	return l.Period / time.Duration(l.Rate)
}

// Headers returns the response headers that tell a client where it stands:
// RateLimit-Policy and RateLimit in the form of the IETF httpapi
// "RateLimit header fields" draft, and Retry-After (whole seconds, rounded
// up so a client that obeys it is never refused again) when r was refused.
func Headers(r Result) http.Header {
	h := make(http.Header, 3)
	name := sfString(r.Limit.Name)
	h.Set("RateLimit-Policy", fmt.Sprintf("%s;q=%d;w=%d", name, r.Limit.Rate, ceilSeconds(r.Limit.Period)))
	h.Set("RateLimit", fmt.Sprintf("%s;r=%d;t=%d", name, max(r.Remaining, 0), ceilSeconds(r.ResetAfter)))
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(r.RetryAfter), 1), 10))
	}
	return h
}

// ceilSeconds rounds d up to whole seconds; negative durations count as zero.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// sfString encodes s as a structured-field string (RFC 9651): quoted, with
// backslash and quote escaped and anything outside printable ASCII dropped,
// so a policy name can never break the header syntax.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c <= 0x7e:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
