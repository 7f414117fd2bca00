package edge

import (
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/bastion-bank/bastion/platform/refusal"
)

// textURL refuses a request whose path or query string, once decoded, is
// not UTF-8 text. Every path and query parameter becomes a proto string,
// which gRPC refuses to encode unless it is valid UTF-8; left to that
// refusal, /v1/accounts/%FF reached the client as a 500 and was logged as a
// server fault. A query string that does not decode at all is passed on:
// the router already answers it with a 400.
func textURL(render *Renderer, counters refusal.Counters, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query, err := url.QueryUnescape(r.URL.RawQuery)
		if !utf8.ValidString(r.URL.Path) || err == nil && !utf8.ValidString(query) {
			counters.ValidationFailed(r.Context(), "malformed_request")
			render.Status(w, r, http.StatusBadRequest, CodeMalformed, "malformed request: the URL must be UTF-8 text")
			return
		}
		next.ServeHTTP(w, r)
	})
}
