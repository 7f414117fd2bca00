package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/wire"
)

// ProblemContentType is the media type of every error body (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object in the shape docs/api.md promises.
type Problem struct {
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Status     int         `json:"status"`
	Detail     string      `json:"detail"`
	Code       string      `json:"code"`
	RequestID  string      `json:"requestId"`
	Violations []Violation `json:"violations,omitempty"`
}

// Violation is one field that failed an input rule.
type Violation struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// outcome is how one error kind is shown to clients. The detail is used
// whenever the error's own message may not be shown.
type outcome struct {
	status int
	code   string
	detail string
}

// outcomes is docs/api.md's error table, the only kind → HTTP mapping in Bastion.
var outcomes = map[errs.Kind]outcome{
	errs.Invalid:         {http.StatusBadRequest, "INVALID_ARGUMENT", "invalid request"},
	errs.Unauthenticated: {http.StatusUnauthorized, "UNAUTHENTICATED", "invalid or missing credentials"},
	errs.Permission:      {http.StatusForbidden, "PERMISSION_DENIED", "permission denied"},
	errs.NotFound:        {http.StatusNotFound, "NOT_FOUND", "not found"},
	errs.Conflict:        {http.StatusConflict, "ALREADY_EXISTS", "conflict"},
	errs.Refused:         {http.StatusUnprocessableEntity, "FAILED_PRECONDITION", "the request was refused"},
	errs.RateLimited:     {http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "too many requests"},
	errs.Unavailable:     {http.StatusServiceUnavailable, "UNAVAILABLE", "service unavailable, try again later"},
	errs.Internal:        {http.StatusInternalServerError, "INTERNAL", "internal error"},
}

// Codes of refusals made by HTTP itself, before any RPC is chosen.
const (
	CodeRouteNotFound    = "NOT_FOUND"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeTooLarge         = "PAYLOAD_TOO_LARGE"
	CodeMediaType        = "UNSUPPORTED_MEDIA_TYPE"
	CodeMalformed        = "INVALID_ARGUMENT"
)

// Length caps for text that reaches a client, so that no upstream mistake
// can turn an error body into a data dump.
const (
	maxDetail = 300
	maxField  = 128
)

// Renderer writes every error the gateway returns. It logs what the client
// must not see (the cause of an internal error) with the request id.
type Renderer struct {
	Logger *slog.Logger
}

// Error writes err as a problem. The message of an *errs.Error is shown only
// for kinds whose messages are client-safe by contract (errs.SafeMessage);
// any other error (one grpc-gateway made from raw parser text, for example)
// is shown with its kind's generic detail.
func (rd *Renderer) Error(w http.ResponseWriter, r *http.Request, err error) {
	e, trusted := errs.As(err)
	if !trusted {
		e = &errs.Error{Kind: errs.Internal, Err: err}
	}
	out, ok := outcomes[e.Kind]
	if !ok {
		out = outcomes[errs.Internal]
	}
	p := Problem{Status: out.status, Code: out.code, Title: http.StatusText(out.status), Detail: out.detail}
	if trusted && e.Kind != errs.Internal && e.Kind != errs.Other && e.Kind != errs.Unavailable {
		p.Detail = clean(errs.SafeMessage(e), maxDetail)
	}
	p.Type = problemType(e, out.code)
	for _, v := range e.Violations {
		p.Violations = append(p.Violations, Violation{Field: clean(v.Field, maxField), Message: clean(v.Message, maxDetail)})
	}
	rd.log(r.Context(), e)
	h := w.Header()
	switch e.Kind {
	case errs.Unauthenticated:
		h.Set("WWW-Authenticate", challenge(r))
	case errs.RateLimited:
		setRetryHeaders(r.Context(), h, e.RetryAfter)
	case errs.Unavailable:
		// A service that knows when to come back (the ledger's full queue)
		// says so; a dependency that is simply down does not.
		if e.RetryAfter > 0 {
			h.Set("Retry-After", strconv.FormatInt(max(int64((e.RetryAfter+time.Second-1)/time.Second), 1), 10))
		}
	}
	rd.write(w, r, p)
}

// challenge is the WWW-Authenticate value of a 401 (RFC 6750 §3). A request
// that presented a bearer token gets one generic error for every failure,
// so the header never says whether the token was expired, revoked or
// forged; a request with no bearer token (none at all, another scheme, or
// failed login credentials in the body) gets the bare challenge, with no
// error attribute, as §3.1 asks.
func challenge(r *http.Request) string {
	var values []string
	if st, ok := StateFrom(r.Context()); ok {
		values = st.Authorization
	} else {
		values = r.Header.Values("Authorization")
	}
	for _, v := range values {
		scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "Bearer") {
			return `Bearer error="invalid_token"`
		}
	}
	return "Bearer"
}

// Status writes a problem for a refusal HTTP itself makes (no such route,
// body too large, wrong media type), with a fixed, client-safe detail.
func (rd *Renderer) Status(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	p := Problem{
		Type:   "urn:bastion:problem:" + slug(code),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
	rd.write(w, r, p)
}

func (rd *Renderer) write(w http.ResponseWriter, r *http.Request, p Problem) {
	if st, ok := StateFrom(r.Context()); ok {
		p.RequestID = st.RequestID
		st.setProblem(p.Code)
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: every field is a string or an int
		body = []byte(`{"status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del(wire.ReplayedHeader)
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

func (rd *Renderer) log(ctx context.Context, e *errs.Error) {
	if rd.Logger == nil {
		return
	}
	var id string
	if st, ok := StateFrom(ctx); ok {
		id = st.RequestID
	}
	switch e.Kind {
	case errs.Internal, errs.Other:
		rd.Logger.ErrorContext(ctx, "request failed", "request_id", id, "kind", e.Kind.String(), "error", e.Error())
	case errs.Unavailable:
		// The edge's own shedding is counted and in the access log; a
		// warning per shed request would add work where none is to spare.
		if e.Reason != ReasonOverloaded {
			rd.Logger.WarnContext(ctx, "upstream unavailable", "request_id", id, "error", e.Error())
		}
	}
}

// setRetryHeaders sends Retry-After and the RateLimit fields. The edge's own
// decision (recorded in the State) supplies the policy; a refusal from a
// service (the login-failure throttle) supplies its own delay.
func setRetryHeaders(ctx context.Context, h http.Header, retryAfter time.Duration) {
	st, _ := StateFrom(ctx)
	if st != nil {
		if res, ok := st.RateLimit(); ok {
			for k, v := range ratelimit.Headers(res) {
				h[k] = v
			}
		}
	}
	if retryAfter > 0 || h.Get("Retry-After") == "" {
		secs := max(int64((retryAfter+time.Second-1)/time.Second), 1)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
}

// problemType names the problem. A stable reason from the service (such as
// insufficient_funds) is more useful to a client than the bare code, except
// for authentication, where the reason would tell an attacker which check
// failed.
func problemType(e *errs.Error, code string) string {
	if e.Reason != "" && e.Kind != errs.Unauthenticated && e.Kind != errs.Internal && e.Kind != errs.Other && isReason(e.Reason) {
		return "urn:bastion:problem:" + slug(e.Reason)
	}
	return "urn:bastion:problem:" + slug(code)
}

func isReason(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func slug(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// clean keeps printable text and caps its length, so a message can neither
// break a log line nor carry a payload.
func clean(s string, limit int) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			continue
		}
		if b.Len()+len(string(r)) > limit {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
