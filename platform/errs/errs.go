// Package errs defines the one error type that Bastion's domain code returns.
//
// Every error carries a Kind from a small list that only ever grows. The kind
// decides the transport status (gRPC code at a service, HTTP status at the
// edge) in exactly one place each: platform/grpcserver and the gateway's error
// handler. The kind, and the safe message, survive an RPC hop; the wrapped
// cause never leaves the process that produced it.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller should do about it.
type Kind uint8

// The kinds. Append only: never renumber or remove one.
const (
	Other           Kind = iota // unclassified: treated as Internal at the boundary
	Invalid                     // the request is malformed or fails a rule on its fields (400)
	Unauthenticated             // no, bad, expired or revoked credentials (401)
	Permission                  // authenticated, but not allowed (403)
	NotFound                    // no such resource, or it belongs to someone else (404)
	Conflict                    // duplicate, or the same operation is still in flight (409)
	Refused                     // a business rule refuses the operation (422)
	RateLimited                 // too many requests; try later (429)
	Unavailable                 // a dependency is down; safe to retry (503)
	Internal                    // a bug or an unexpected failure (500)
)

var kindNames = [...]string{
	Other:           "other",
	Invalid:         "invalid",
	Unauthenticated: "unauthenticated",
	Permission:      "permission",
	NotFound:        "not_found",
	Conflict:        "conflict",
	Refused:         "refused",
	RateLimited:     "rate_limited",
	Unavailable:     "unavailable",
	Internal:        "internal",
}

// String returns the kind's stable, lower-case name, suitable for metric labels.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Violation names one field that failed validation and says why, in words
// that are safe to show a client.
type Violation struct {
	Field   string
	Message string
}

// Error is Bastion's error. Msg is shown to clients; Err is not.
type Error struct {
	Kind       Kind
	Msg        string        // client-safe summary, e.g. "insufficient funds"
	Reason     string        // stable machine-readable reason, e.g. "insufficient_funds" (optional)
	Violations []Violation   // field details, for Invalid
	RetryAfter time.Duration // when to try again, for RateLimited (sent as Retry-After)
	Err        error         // the underlying cause; logged, never sent
}

// Error returns the safe message followed by the cause, for logs.
func (e *Error) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = e.Kind.String()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error of the same kind and reason, so that
// sentinel values work with errors.Is even after wrapping.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && t.Reason == e.Reason && t.Msg == e.Msg
}

// New returns an error of the given kind with a client-safe message.
func New(kind Kind, msg string) *Error { return &Error{Kind: kind, Msg: msg} }

// Reasoned returns an error of the given kind with a client-safe message and a
// stable reason code (used for metric labels and by sentinel comparisons).
func Reasoned(kind Kind, reason, msg string) *Error {
	return &Error{Kind: kind, Reason: reason, Msg: msg}
}

// Wrap returns an error of the given kind whose cause is err. msg is what a
// client may see; err is kept for the log only.
func Wrap(kind Kind, msg string, err error) *Error { return &Error{Kind: kind, Msg: msg, Err: err} }

// InvalidField returns an Invalid error with one violation on field.
func InvalidField(field, message string) *Error {
	return &Error{Kind: Invalid, Msg: "invalid request", Violations: []Violation{{Field: field, Message: message}}}
}

// Throttled returns a RateLimited error that tells the caller when to retry.
func Throttled(reason, msg string, retryAfter time.Duration) *Error {
	return &Error{Kind: RateLimited, Reason: reason, Msg: msg, RetryAfter: retryAfter}
}

// KindOf returns the kind of the first *Error in err's chain, or Other.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Other
}

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// SafeMessage returns the message that may be shown to a client for err. An
// error of kind Other or Internal, or one with no message, gets a generic text.
func SafeMessage(err error) string {
	e, ok := As(err)
	if !ok || e.Kind == Other || e.Kind == Internal {
		return "internal error"
	}
	if e.Msg == "" {
		return e.Kind.String()
	}
	return e.Msg
}
