package edge

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/bastion-bank/bastion/platform/refusal"
)

// bodyGuard enforces the body limit and the JSON-only rule before any
// handler sees a request.
type bodyGuard struct {
	max      int64
	render   *Renderer
	counters refusal.Counters
}

// wrap returns next behind the guard. A body larger than the limit is
// refused from its Content-Length alone, without reading a byte of it; a
// body of unknown length is read up to the limit and refused at the first
// byte beyond. Accepted bodies are buffered (64 KiB at most), so the JSON
// decoder downstream never sees a read error it would misreport as a 400.
func (g *bodyGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > g.max {
			g.tooLarge(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.max)
		if !hasBody(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		// Content-Type is a singleton (RFC 9110): with two, something in
		// front of the gateway may have judged the body by the other one.
		cts := r.Header.Values("Content-Type")
		ct := r.Header.Get("Content-Type")
		if len(cts) > 1 || ct != "" && !isJSON(ct) {
			g.unsupported(w, r)
			return
		}
		buf, err := readBody(r.Body, r.ContentLength)
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			g.tooLarge(w, r)
			return
		case err != nil:
			// The client stopped sending or the read deadline passed; there is
			// nobody left to answer but the server's own error path.
			g.render.Status(w, r, http.StatusBadRequest, CodeMalformed, "could not read the request body")
			return
		case ct == "" && len(buf) > 0:
			g.unsupported(w, r)
			return
		}
		r.Body = &Body{Reader: bytes.NewReader(buf), buf: buf}
		r.ContentLength = int64(len(buf))
		next.ServeHTTP(w, r)
	})
}

// Body is a request body the edge has read in full, so that a decoder can
// parse the bytes where they lie instead of reading a copy of them.
type Body struct {
	*bytes.Reader
	buf []byte
}

// Close does nothing: the body is in memory.
func (b *Body) Close() error { return nil }

// Take returns the part of the body not read yet and marks it read. The
// bytes are the edge's own; the caller must not change them.
func (b *Body) Take() []byte {
	rest := b.buf[len(b.buf)-b.Len():]
	b.Reset(nil)
	return rest
}

// maxBodyHint bounds the buffer allocated up front from a request's
// Content-Length, so that a client that declares a large body and sends
// little makes the gateway allocate little; a larger body grows the buffer
// as it arrives.
const maxBodyHint = 16 << 10

// readBody reads r to its end into one buffer sized from the declared
// length, one byte more so that the read that finds the end needs no room
// of its own. (io.ReadAll starts at 512 bytes and grows, whatever the size.)
func readBody(r io.Reader, declared int64) ([]byte, error) {
	size := int64(512)
	if declared >= 0 {
		size = min(declared, maxBodyHint) + 1
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (g *bodyGuard) tooLarge(w http.ResponseWriter, r *http.Request) {
	g.counters.ValidationFailed(r.Context(), "body_too_large")
	// Over HTTP/1 close the connection instead of draining: the rest of the
	// body is the client's problem, not the gateway's bandwidth. (HTTP/2
	// resets just the stream; a Connection header there would end every
	// other stream on the connection, and the response with them.)
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	g.render.Status(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, "the request body is larger than the limit")
}

func (g *bodyGuard) unsupported(w http.ResponseWriter, r *http.Request) {
	g.counters.ValidationFailed(r.Context(), "unsupported_media_type")
	g.render.Status(w, r, http.StatusUnsupportedMediaType, CodeMediaType, "the request body must be application/json")
}

// hasBody reports whether the method's routes decode a JSON body.
func hasBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

// isJSON accepts application/json with at most a UTF-8 charset: JSON is
// UTF-8 by definition (RFC 8259), and any other declared charset would be
// decoded as UTF-8 anyway, silently.
//
// The exact text every client sends is accepted without parsing it:
// ParseMediaType builds a parameter map, an allocation per request.
func isJSON(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}
