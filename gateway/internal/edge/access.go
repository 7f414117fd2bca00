package edge

import (
	"context"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/bastion-bank/bastion/platform/telemetry"
)

// maxLoggedLen caps attacker-chosen strings (an unmatched path, the
// User-Agent) in the access log, so a request cannot bloat it.
const maxLoggedLen = 200

// accessInfo is what the layers below the middleware learn about a request
// and the access log reports: the route template, the authenticated user,
// and the problem code of a refusal. It lives in State, under its mutex.
type accessInfo struct {
	route, user, problem string
}

// SetRoute records the route template that matched, e.g.
// "/v1/accounts/{id}". The access log and metrics use it instead of the
// concrete path, which carries ids.
func (s *State) SetRoute(route string) { s.update(func(a *accessInfo) { a.route = route }) }

// SetUser records the id of the user whose token the policy verified.
func (s *State) SetUser(id string) { s.update(func(a *accessInfo) { a.user = id }) }

// setProblem records the code of the problem document the request was
// answered with; the renderer calls it.
func (s *State) setProblem(code string) { s.update(func(a *accessInfo) { a.problem = code }) }

func (s *State) update(f func(*accessInfo)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.access)
}

func (s *State) accessInfo() accessInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access
}

// logAccess writes the request's one access-log line. It carries what an
// operator needs to follow a client or an attack (request id, client IP,
// user, route, status, refusal code, duration; the trace id comes with the
// context) and nothing a client sent as a secret: no headers other than a
// clipped User-Agent, no query string, no body. The route is the template;
// a request that never reached a route (no route matched, or the edge
// refused it first, e.g. an oversized body) is logged as "unrouted" with its
// path, redacted and clipped, since a scanner's probes are worth seeing.
func logAccess(ctx context.Context, logger *slog.Logger, r *http.Request, st *State, w *accessWriter, took time.Duration) {
	info := st.accessInfo()
	// Room for every attribute below, so that the line is built without
	// growing the slice: appending one by one from three reallocated it twice
	// for every request.
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("request_id", st.RequestID),
		slog.String("client_ip", st.ClientIP),
		slog.String("method", clip(r.Method, 16)),
	)
	if info.route != "" {
		attrs = append(attrs, slog.String("route", info.route))
	} else {
		attrs = append(attrs, slog.String("route", "unrouted"), slog.String("path", redactClip(r.URL.EscapedPath())))
	}
	attrs = append(attrs,
		slog.Int("status", w.status()),
		slog.Int64("bytes", w.bytes),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000),
		slog.String("proto", r.Proto),
	)
	if info.user != "" {
		attrs = append(attrs, slog.String("user", info.user))
	}
	if info.problem != "" {
		attrs = append(attrs, slog.String("problem", info.problem))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, slog.String("user_agent", redactClip(ua)))
	}
	level := slog.LevelInfo
	if w.status() >= 500 {
		level = slog.LevelWarn
	}
	logger.LogAttrs(ctx, level, "request", attrs...)
}

// redactClip makes an attacker-chosen string fit for the log: credentials
// out first, then clipped to maxLoggedLen. The other way round, a clip that
// cuts a token's signature off leaves text that no longer looks like a
// token, and its header and payload (the user id) would be logged.
func redactClip(s string) string {
	return clip(telemetry.RedactString(s), maxLoggedLen)
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence and
// replaces invalid UTF-8, so the log stays valid JSON text.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // invalid bytes become U+FFFD
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// accessWriter records the status and size of the response.
type accessWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (w *accessWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush passes flushes through, for handlers that stream.
func (w *accessWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the status sent, or 200 if the handler wrote nothing at all
// (net/http then sends 200 with an empty body).
func (w *accessWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
