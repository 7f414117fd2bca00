package edge

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bastion-bank/bastion/platform/refusal"
)

// CORS is the cross-origin policy. It is off (no CORS header is ever sent,
// so browsers keep the same-origin rule) unless Origins lists exact origins.
// Credentials are never allowed: the API authenticates with bearer tokens,
// not cookies, so a browser has nothing ambient to send.
type CORS struct {
	Origins []string // exact origins, e.g. "https://app.example.com"
}

// CORS response values.
const (
	corsMethods = "GET, POST, PUT"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
	corsExpose  = "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy, Idempotent-Replayed, WWW-Authenticate"
	corsMaxAge  = "600"
)

// ParseOrigins parses a comma-separated allowlist. Each entry must be a bare
// scheme://host[:port] origin; "*" and "null" are refused, because a bank's
// API must name the pages allowed to call it.
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || o == "*" {
			return nil, errors.New("CORS origins must be scheme://host[:port] values, comma separated; * is not allowed")
		}
		out = append(out, strings.ToLower(o))
	}
	return out, nil
}

func (c CORS) wrap(render *Renderer, counters refusal.Counters, next http.Handler) http.Handler {
	if len(c.Origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(c.Origins, strings.ToLower(origin))
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExpose)
		}
		if !preflight {
			next.ServeHTTP(w, r)
			return
		}
		if !allowed {
			counters.AuthzDenied(r.Context(), "cors_origin")
			render.Status(w, r, http.StatusForbidden, "PERMISSION_DENIED", "origin not allowed")
			return
		}
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
	})
}
