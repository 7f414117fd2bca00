package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// NewRedactingProcessor returns a span processor that hands every ended span
// to next with its secrets removed: attributes (of the span, its events and
// its links) whose key [SensitiveKey] reports become [Redacted], and
// JWT-shaped or "Bearer …" text is scrubbed from string attributes, the span
// name and the status description (see [RedactString]).
//
// It sits in front of the exporting processor because instrumentation
// libraries record attributes (headers, error texts) that Bastion's own code
// never sees; the only place to catch them all is on the way out.
func NewRedactingProcessor(next sdktrace.SpanProcessor) sdktrace.SpanProcessor {
	return redactingProcessor{next: next}
}

type redactingProcessor struct {
	next sdktrace.SpanProcessor
}

// OnStart passes the span on unchanged; it can still gain attributes.
func (p redactingProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	p.next.OnStart(ctx, s)
}

// OnEnd passes a redacted view of the finished span on.
func (p redactingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	p.next.OnEnd(redactSpan(s))
}

// Shutdown shuts next down.
func (p redactingProcessor) Shutdown(ctx context.Context) error { return p.next.Shutdown(ctx) }

// ForceFlush flushes next.
func (p redactingProcessor) ForceFlush(ctx context.Context) error { return p.next.ForceFlush(ctx) }

// redactedSpan overrides the parts of a span that can carry a secret and
// delegates everything else, so that fields the SDK adds later still reach the
// exporter.
type redactedSpan struct {
	sdktrace.ReadOnlySpan
	name   string
	attrs  []attribute.KeyValue
	events []sdktrace.Event
	links  []sdktrace.Link
	status sdktrace.Status
}

func (s redactedSpan) Name() string                     { return s.name }
func (s redactedSpan) Attributes() []attribute.KeyValue { return s.attrs }
func (s redactedSpan) Events() []sdktrace.Event         { return s.events }
func (s redactedSpan) Links() []sdktrace.Link           { return s.links }
func (s redactedSpan) Status() sdktrace.Status          { return s.status }

// redactSpan returns s itself when nothing in it needs scrubbing, which is
// the common case, and a redacted view otherwise.
func redactSpan(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	out := redactedSpan{
		ReadOnlySpan: s,
		name:         RedactString(s.Name()),
		status:       s.Status(),
	}
	changed := out.name != s.Name()
	out.status.Description = RedactString(out.status.Description)
	changed = changed || out.status.Description != s.Status().Description

	var c bool
	out.attrs, c = redactKVs(s.Attributes())
	changed = changed || c

	out.events, c = redactEvents(s.Events())
	changed = changed || c
	out.links, c = redactLinks(s.Links())
	changed = changed || c
	if !changed {
		return s
	}
	return out
}

// redactEvents returns events with secrets replaced, and whether anything
// changed; the SDK's slice is never written to.
func redactEvents(events []sdktrace.Event) ([]sdktrace.Event, bool) {
	var out []sdktrace.Event
	for i, e := range events {
		attrs, changed := redactKVs(e.Attributes)
		name := RedactString(e.Name)
		if !changed && name == e.Name {
			continue
		}
		if out == nil {
			out = append([]sdktrace.Event(nil), events...)
		}
		out[i].Name, out[i].Attributes = name, attrs
	}
	if out == nil {
		return events, false
	}
	return out, true
}

// redactLinks returns links with secrets replaced, and whether anything
// changed; the SDK's slice is never written to.
func redactLinks(links []sdktrace.Link) ([]sdktrace.Link, bool) {
	var out []sdktrace.Link
	for i, l := range links {
		attrs, changed := redactKVs(l.Attributes)
		if !changed {
			continue
		}
		if out == nil {
			out = append([]sdktrace.Link(nil), links...)
		}
		out[i].Attributes = attrs
	}
	if out == nil {
		return links, false
	}
	return out, true
}

// redactKVs returns kvs with secrets replaced, and whether anything changed.
// It copies only when it must, so clean spans cost no allocation.
func redactKVs(kvs []attribute.KeyValue) ([]attribute.KeyValue, bool) {
	var out []attribute.KeyValue
	for i, kv := range kvs {
		clean, changed := redactKV(kv)
		if !changed {
			continue
		}
		if out == nil {
			out = append([]attribute.KeyValue(nil), kvs...)
		}
		out[i] = clean
	}
	if out == nil {
		return kvs, false
	}
	return out, true
}

// redactKV returns kv with any secret replaced, and whether it changed.
func redactKV(kv attribute.KeyValue) (attribute.KeyValue, bool) {
	if SensitiveKey(string(kv.Key)) {
		return kv.Key.String(Redacted), true
	}
	v, changed := redactValue(kv.Value)
	return attribute.KeyValue{Key: kv.Key, Value: v}, changed
}

// redactValue scrubs text inside v, descending into nested slices and maps
// because those can hold a whole decoded request.
func redactValue(v attribute.Value) (attribute.Value, bool) {
	switch v.Type() {
	case attribute.STRING:
		if s := RedactString(v.AsString()); s != v.AsString() {
			return attribute.StringValue(s), true
		}
	case attribute.BYTESLICE:
		if s := RedactString(string(v.AsByteSlice())); s != string(v.AsByteSlice()) {
			return attribute.ByteSliceValue([]byte(s)), true
		}
	case attribute.STRINGSLICE:
		vals, changed := v.AsStringSlice(), false // AsStringSlice returns a copy
		for i, e := range vals {
			if s := RedactString(e); s != e {
				vals[i], changed = s, true
			}
		}
		if changed {
			return attribute.StringSliceValue(vals), true
		}
	case attribute.SLICE:
		vals, changed := v.AsSlice(), false
		for i, e := range vals {
			var c bool
			vals[i], c = redactValue(e)
			changed = changed || c
		}
		if changed {
			return attribute.SliceValue(vals...), true
		}
	case attribute.MAP:
		if kvs, changed := redactKVs(v.AsMap()); changed {
			return attribute.MapValue(kvs...), true
		}
	}
	return v, false
}
