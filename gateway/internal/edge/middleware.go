package edge

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/platform/refusal"
	"github.com/bastion-bank/bastion/platform/wire"
)

// DefaultMaxBodyBytes is docs/api.md's request body limit.
const DefaultMaxBodyBytes = 64 << 10

// HSTS tells browsers to use HTTPS only, for two years, on every subdomain.
const HSTS = "max-age=63072000; includeSubDomains"

// APIContentSecurityPolicy is sent with every response that is not the docs
// page: a JSON API loads nothing, and may not be framed.
const APIContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Config configures the middleware.
type Config struct {
	// TrustedProxies are the peers whose X-Forwarded-For is believed. Empty
	// means the socket address is always the client IP.
	TrustedProxies []netip.Prefix
	// CORS is the cross-origin policy; the zero value sends no CORS headers.
	CORS CORS
	// MaxBodyBytes caps request bodies; DefaultMaxBodyBytes if zero.
	MaxBodyBytes int64
	Renderer     *Renderer
	Counters     refusal.Counters
	// FailedAuth is the per-client budget of 401 and 403 answers.
	FailedAuth FailedAuth
	// AccessLog, if set, gets one line per request once it is answered
	// (see logAccess for what it holds and what it never holds).
	AccessLog *slog.Logger
	// Admission bounds the requests in flight; the zero value means
	// DefaultMaxInFlight and DefaultAdmissionWait (it is never off).
	Admission Admission
}

// Middleware wraps next with the edge's HTTP controls, outermost first:
// request id and State, security headers, client IP, header scrubbing,
// admission (the bound on requests in flight, first so that shedding costs
// no limiter round trip), the failed-authentication budget, CORS, the URL's text check, then the body
// limit and media-type check.
func Middleware(cfg Config, next http.Handler) http.Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Counters == nil {
		cfg.Counters = refusal.Nop
	}
	if cfg.Renderer == nil {
		cfg.Renderer = &Renderer{}
	}
	body := &bodyGuard{max: cfg.MaxBodyBytes, render: cfg.Renderer, counters: cfg.Counters}
	inner := cfg.Admission.wrap(cfg.Renderer, cfg.Counters, cfg.FailedAuth.wrap(cfg.Renderer, cfg.Counters,
		cfg.CORS.wrap(cfg.Renderer, cfg.Counters, textURL(cfg.Renderer, cfg.Counters, body.wrap(next)))))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &State{
			RequestID:       requestID(r.Header.Get(wire.RequestIDHeader)),
			ClientIP:        ClientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), cfg.TrustedProxies),
			Authorization:   r.Header.Values("Authorization"),
			IdempotencyKeys: r.Header.Values("Idempotency-Key"),
			RawQuery:        r.URL.RawQuery,
		}
		h := w.Header()
		h.Set(wire.RequestIDHeader, st.RequestID)
		for _, sh := range securityHeaders {
			h[sh.key] = sh.value
		}
		scrub(r.Header)
		ctx := WithState(r.Context(), st)
		if cfg.AccessLog == nil {
			inner.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		start := time.Now()
		aw := &accessWriter{ResponseWriter: w}
		defer func() { logAccess(ctx, cfg.AccessLog, r, st, aw, time.Since(start)) }()
		inner.ServeHTTP(aw, r.WithContext(ctx))
	})
}

// securityHeaders are the headers every response carries, keys in
// canonical form. Each value is one slice that every response shares, where
// Header.Set would allocate a new one per header per request. Sharing is
// safe because nothing writes into a header's value slice in place: Set and
// Del replace it, and Add appends to a slice with no spare capacity, which
// copies it first.
var securityHeaders = [...]struct {
	key   string
	value []string
}{
	{"X-Content-Type-Options", []string{"nosniff"}},
	{"Strict-Transport-Security", []string{HSTS}},
	{"Cache-Control", []string{"no-store"}},
	{"Referrer-Policy", []string{"no-referrer"}},
	{"X-Frame-Options", []string{"DENY"}},
	{"Cross-Origin-Resource-Policy", []string{"same-origin"}},
	{"Content-Security-Policy", []string{APIContentSecurityPolicy}},
}

// scrub removes request headers that would let a client steer the gateway
// itself: a deadline of its choosing (Grpc-Timeout), trailers (TE), or the
// HTTP method (X-HTTP-Method-Override). Identity-looking headers need no
// scrubbing here because nothing is forwarded upstream except what the
// policy builds; they are removed anyway so no later handler can misread one.
func scrub(h http.Header) {
	for k := range h {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "grpc-"), strings.HasPrefix(lk, "x-forwarded-"), strings.HasPrefix(lk, "x-bank-"):
			delete(h, k)
		case lk == "te", lk == "forwarded", lk == "x-real-ip", lk == "x-http-method-override",
			lk == "x-request-id", lk == "x-user-id", lk == "x-roles":
			delete(h, k)
		}
	}
}

// requestID echoes a well-formed incoming id (1 to 64 of [A-Za-z0-9._-]) so
// a client can correlate, or makes a new random one.
func requestID(in string) string {
	if validRequestID(in) {
		return in
	}
	return rand.Text()
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// ClientIP returns the end client's address. It is the socket peer, unless
// the peer is a trusted proxy: then X-Forwarded-For is walked from the right
// (the entries trusted proxies appended) and the first address that is not a
// trusted proxy is the client. Entries to its left were written by the
// client and are never believed. A malformed entry stops the walk at the
// last address known good.
func ClientIP(remoteAddr string, xff []string, trusted []netip.Prefix) string {
	peer, ok := parseAddr(remoteAddr)
	if !ok {
		return ""
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	var hops []string
	for _, v := range xff {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap().WithZone("")
		if !isTrusted(client, trusted) {
			break
		}
	}
	return client.String()
}

func parseAddr(remoteAddr string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
