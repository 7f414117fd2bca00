package server

import (
	"net/http"
	"strings"

	"google.golang.org/grpc"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/gateway/internal/console"
	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/refusal"
)

// consoleSessionRoutes are the console's backend-for-frontend routes, named
// as the metrics and spans label them.
var consoleSessionRoutes = map[string]bool{
	console.CookiePath + "login": true, console.CookiePath + "mfa": true,
	console.CookiePath + "refresh": true, console.CookiePath + "logout": true,
}

// mountConsole serves the web console (gateway/internal/console) at
// /console/. Its session routes call the auth service on auth, through the
// same policed connection as the /v1 routes, so the policy's rate limits,
// token check and client IP apply to them unchanged; its files are limited
// per client IP like the docs page.
func mountConsole(root *http.ServeMux, cfg Config, auth grpc.ClientConnInterface, rd *edge.Renderer, counters refusal.Counters, notFound http.Handler) error {
	h, err := console.Handler(console.Config{
		Auth:     authv1.NewAuthServiceClient(cfg.Policy.Conn(auth)),
		Renderer: rd,
		Counters: counters,
		NotFound: notFound,
	})
	if err != nil {
		return err
	}
	files := edge.LimitByIP(cfg.Limiter, cfg.PublicLimit, rd, counters, h)
	root.Handle("/console", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, "/console")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, r, rd, "GET, HEAD")
			return
		}
		http.Redirect(w, r, console.Prefix, http.StatusMovedPermanently)
	}))
	root.Handle(console.Prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if consoleSessionRoutes[r.URL.Path] {
			setRoute(r, r.URL.Path)
			h.ServeHTTP(w, r)
			return
		}
		setRoute(r, console.Prefix)
		if strings.HasPrefix(r.URL.Path, console.CookiePath) {
			h.ServeHTTP(w, r) // an unknown session route: the console's 404 or 405
			return
		}
		files.ServeHTTP(w, r)
	}))
	return nil
}
