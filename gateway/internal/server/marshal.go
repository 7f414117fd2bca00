package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
)

// errMalformedBody is what the decoder reports; its text is fixed so that
// nothing from the parser (which quotes the client's input) can reach a
// response, even though grpc-gateway copies it into a status message.
var errMalformedBody = errors.New("malformed JSON body")

// jsonMarshaler is docs/api.md's JSON: lowerCamelCase names, 64-bit integers as
// strings, every field of docs/api.md present (a zero balance is "0", not
// missing; only optional fields such as approvedBy are left out while unset),
// and unknown fields refused, including those of the request message that
// are not body fields of docs/api.md (see bodyShapes).
//
// Its decoder reads the whole (already size-limited) body and parses it in
// one go, so that trailing garbage after the first JSON value is an error,
// which a streaming json.Decoder would silently ignore.
type jsonMarshaler struct {
	runtime.JSONPb
	shapes *bodyShapes
}

func newJSONMarshaler(shapes *bodyShapes) *jsonMarshaler {
	return &jsonMarshaler{JSONPb: runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: false},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}, shapes: shapes}
}

// NewDecoder returns a strict decoder over r. An empty body decodes as the
// empty message (io.EOF, which the generated handlers accept), so that
// `POST …:approve` with no body works as with `{}`.
func (m *jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := readAll(r)
		if err != nil {
			return errMalformedBody
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return io.EOF
		}
		return m.Unmarshal(data, v)
	})
}

// readAll returns what is left of r: the edge's buffer itself when the
// edge has read the body already (always, behind edge.Middleware), else a
// copy.
func readAll(r io.Reader) ([]byte, error) {
	if b, ok := r.(*edge.Body); ok {
		return b.Take(), nil
	}
	return io.ReadAll(r)
}

// Marshal writes v as compact JSON. protojson deliberately varies its
// whitespace between builds (so nobody depends on its bytes); compacting
// gives clients, caches and tests one stable form of each response. A
// message is encoded by protojson once and compacted where it lies, rather
// than copied into a buffer and compacted into another.
func (m *jsonMarshaler) Marshal(v any) ([]byte, error) {
	if msg, ok := v.(proto.Message); ok {
		b, err := m.MarshalOptions.Marshal(msg)
		if err != nil {
			return nil, err
		}
		return compactJSON(b), nil
	}
	b, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// compactJSON removes the insignificant whitespace of the valid JSON text b
// in place, as json.Compact would into a new buffer: every space, tab and
// line break outside a string.
func compactJSON(b []byte) []byte {
	out := b[:0]
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '"':
			inString = true
		}
		out = append(out, c)
	}
	return out
}

// Unmarshal parses data into v strictly: protojson first (syntax, types,
// duplicates, unknown names), then the names against docs/api.md's body shape.
func (m *jsonMarshaler) Unmarshal(data []byte, v any) error {
	msg, ok := v.(proto.Message)
	if !ok {
		return errMalformedBody
	}
	if err := m.UnmarshalOptions.Unmarshal(data, msg); err != nil {
		return errMalformedBody
	}
	if !m.shapes.check(msg.ProtoReflect().Descriptor(), data) {
		proto.Reset(msg)
		return errMalformedBody
	}
	return nil
}
