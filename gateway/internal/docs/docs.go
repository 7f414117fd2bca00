// Package docs serves the browsable API documentation at /docs: Swagger UI,
// vendored from the swagger-ui-dist npm package (see fetch-swagger-ui.sh and
// assets/swagger-ui/LICENSE) and embedded in the binary, so the page loads
// nothing from a CDN, on the gateway's own OpenAPI document.
package docs

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is the docs page's policy: scripts, styles and
// fetches from the gateway itself only, no inline code, no framing. Swagger
// UI draws its icons as data: images.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page at prefix (e.g. "/docs/") and its assets below
// it, with the docs CSP in place of the API's. Only embedded files are
// served (no directory listings); anything else goes to notFound.
func Handler(prefix string, notFound http.Handler) (http.Handler, error) {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok {
			notFound.ServeHTTP(w, r)
			return
		}
		if name == "" {
			name = "index.html"
		}
		st, err := fs.Stat(sub, name)
		if err != nil || st.IsDir() || !fs.ValidPath(name) {
			notFound.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy", ContentSecurityPolicy)
		http.ServeFileFS(w, r, sub, name)
	}), nil
}
