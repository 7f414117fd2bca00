// Package console serves Bastion's web console at /console/: a small
// single-page client of the public API for customers, managers and admins,
// written as plain ES modules and embedded in the gateway binary (no build
// step, nothing loaded from anywhere else), and the backend-for-frontend
// routes under /console/session/ that keep the refresh token out of the
// page's reach.
//
// The page calls the public /v1 routes itself, with the access token in a
// bearer header, exactly as any other client does; the token lives in a
// module variable, never in a storage API or a readable cookie. Only the
// session routes differ from the public API: they hold the refresh token
// in an HttpOnly, Secure, SameSite=Strict cookie scoped to /console/session/,
// and they answer only requests that prove they come from the console's own
// origin (see sameOrigin).
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/refusal"
)

//go:embed assets
var assets embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// ContentSecurityPolicy is the console's policy: its own scripts, styles
// and fetches only; no inline script or style and no eval (no 'unsafe-*'
// anywhere); no framing, no <base>, no native form submission; and Trusted
// Types required with no policy allowed, so a string can never reach an
// HTML or script sink (innerHTML, document.write, eval …): the page
// writes user text with textContent only.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// Config is what the console needs. Auth, Renderer and NotFound are
// required.
type Config struct {
	// Auth is the auth service as the /v1 routes call it: through the
	// edge policy (rate limits, client IP, token check), so a console
	// login is throttled and audited exactly like an API login.
	Auth authv1.AuthServiceClient
	// Renderer writes every error as the API's problem+json.
	Renderer *edge.Renderer
	// Counters records refused cross-site requests (the platform's one
	// refusal.Counters, as the edge takes); refusal.Nop when nil.
	Counters refusal.Counters
	// NotFound answers paths that name no file or route.
	NotFound http.Handler
}

// Handler serves the console's files below Prefix and its session routes
// below Prefix+"session/".
func Handler(cfg Config) (http.Handler, error) {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	sess := newSessions(cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			cfg.NotFound.ServeHTTP(w, r)
			return
		}
		if route, ok := strings.CutPrefix(name, "session/"); ok {
			sess.serve(w, r, route)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			cfg.Renderer.Status(w, r, http.StatusMethodNotAllowed, edge.CodeMethodNotAllowed, "method not allowed on this route")
			return
		}
		if name == "" {
			name = "index.html"
		}
		st, err := fs.Stat(sub, name)
		if err != nil || st.IsDir() || !fs.ValidPath(name) {
			cfg.NotFound.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy", ContentSecurityPolicy)
		http.ServeFileFS(w, r, sub, name)
	}), nil
}
