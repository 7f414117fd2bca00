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
		buf, err := io.ReadAll(r.Body)
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
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.ContentLength = int64(len(buf))
		next.ServeHTTP(w, r)
	})
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
func isJSON(ct string) bool {
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
