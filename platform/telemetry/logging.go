package telemetry

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log keys added to every record written inside a span, so that a log line
// can be found from a trace and the other way round.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// NewLogger returns a JSON logger writing to w at level and above, with trace
// correlation and secret redaction (see [NewLogHandler]). Tests in other
// packages use it to log into a buffer exactly as production does.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(NewLogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})))
}

// NewLogHandler wraps next so that every record it receives
//   - carries trace_id and span_id, at the top level, when its context holds a
//     valid span, and
//   - has secrets removed: any attribute whose key (at any depth, including
//     group names) [SensitiveKey] reports is replaced with [Redacted], and
//     JWT-shaped or "Bearer …" text is scrubbed from the message and from
//     every string value (see [RedactString]).
//
// Redaction happens here, not at call sites, because a call site that forgets
// is exactly the one that leaks.
func NewLogHandler(next slog.Handler) slog.Handler {
	return &logHandler{next: next}
}

// logHandler keeps groups opened with WithGroup itself instead of passing
// them to next, so the trace ids it adds stay at the top level of the record
// rather than inside whatever group a caller opened.
type logHandler struct {
	next   slog.Handler
	groups []groupFrame // outermost first
}

// groupFrame is one WithGroup call and the attributes added inside it.
type groupFrame struct {
	name  string
	attrs []slog.Attr // already redacted
}

// Enabled reports whether next handles records at level.
func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle redacts r, adds the span's ids from ctx and passes it on.
func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, RedactString(r.Message), r.PC)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out.AddAttrs(
			slog.String(TraceIDKey, sc.TraceID().String()),
			slog.String(SpanIDKey, sc.SpanID().String()),
		)
	}
	// A line of up to 16 attributes (the access log has 12) is redacted on
	// the stack; AddAttrs below copies them into the record.
	var buf [16]slog.Attr
	attrs := buf[:0]
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, redactAttr(a))
		return true
	})
	for i := len(h.groups) - 1; i >= 0; i-- {
		g := h.groups[i]
		inner := append(append(make([]slog.Attr, 0, len(g.attrs)+len(attrs)), g.attrs...), attrs...)
		group := slog.Attr{Key: g.name, Value: slog.GroupValue(inner...)}
		if SensitiveKey(g.name) {
			group = slog.String(g.name, Redacted)
		}
		attrs = []slog.Attr{group}
	}
	out.AddAttrs(attrs...)
	return h.next.Handle(ctx, out)
}

// WithAttrs returns a handler that adds attrs, redacted, to every record.
func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = redactAttr(a)
	}
	if len(h.groups) == 0 {
		return &logHandler{next: h.next.WithAttrs(clean)}
	}
	groups := cloneGroups(h.groups)
	last := &groups[len(groups)-1]
	last.attrs = append(last.attrs, clean...)
	return &logHandler{next: h.next, groups: groups}
}

// WithGroup returns a handler that nests later attributes under name.
func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	groups := append(cloneGroups(h.groups), groupFrame{name: name})
	return &logHandler{next: h.next, groups: groups}
}

// cloneGroups copies the frames deeply enough that two handlers derived from
// the same parent never share an attribute slice.
func cloneGroups(groups []groupFrame) []groupFrame {
	out := make([]groupFrame, len(groups), len(groups)+1)
	for i, g := range groups {
		out[i] = groupFrame{name: g.name, attrs: append([]slog.Attr(nil), g.attrs...)}
	}
	return out
}

// Vetted is a value whose owner has already decided what of it may be
// logged (platform/config's Shown, where secrets are marked explicitly). Its
// key is not masked by name; its text is still searched for credentials.
type Vetted interface{ VettedText() string }

// redactAttr returns a with every secret in it replaced. LogValuers are
// resolved first, so a type cannot smuggle a secret past the check by
// rendering itself late.
//
// The kind is looked at before the value: Value.Any boxes a string or a
// number into an interface, an allocation for every attribute of every line,
// and only a KindAny value can be Vetted.
func redactAttr(a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindAny {
		if vt, ok := a.Value.Any().(Vetted); ok {
			return slog.String(a.Key, RedactString(vt.VettedText()))
		}
	}
	v := a.Value.Resolve()
	if SensitiveKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, RedactString(v.String()))
	case slog.KindGroup:
		members := v.Group()
		clean := make([]slog.Attr, len(members))
		for i, m := range members {
			clean[i] = redactAttr(m)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(clean...)}
	case slog.KindAny:
		return slog.Any(a.Key, redactAny(v.Any()))
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}
