package edge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// answers is a stand-in for everything behind the edge: each path answers
// with the status it names, and counts how often it ran.
type answers struct{ ran int }

func (a *answers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.ran++
	switch {
	case strings.HasPrefix(r.URL.Path, "/401"):
		w.WriteHeader(http.StatusUnauthorized)
	case strings.HasPrefix(r.URL.Path, "/403"):
		w.WriteHeader(http.StatusForbidden)
	case strings.HasPrefix(r.URL.Path, "/404"):
		w.WriteHeader(http.StatusNotFound)
	default:
		w.Write([]byte("{}"))
	}
}

// TestFailedAuthBudget attacks the budget the way a token or password
// guesser would: every 401 and 403 spends it, whatever route gave it;
// once spent, every request of that client network is 429 before anything
// runs (a right guess included); other networks are untouched; the health
// endpoints stay open; and the budget refills with time.
func TestFailedAuthBudget(t *testing.T) {
	t.Parallel()
	clk := grpctest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	mem := ratelimit.NewMemory(clk.Now, 0)
	back := &answers{}
	cfg := edge.Config{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		FailedAuth:     edge.FailedAuth{Limiter: mem, Limit: edge.FailedAuthLimit(3)},
	}
	h := edge.Middleware(cfg, back)
	do := func(client, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "127.0.0.1:5000"
		r.Header.Set("X-Forwarded-For", client)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	steps := []struct {
		name, client, path string
		want               int
	}{
		{"not found costs nothing", "198.51.100.7", "/404", 404},
		{"success costs nothing", "198.51.100.7", "/ok", 200},
		{"first bad token", "198.51.100.7", "/401", 401},
		{"a forbidden route", "198.51.100.7", "/403", 403},
		{"third failure, the last the budget holds", "198.51.100.7", "/401", 401},
		{"spent: even a right guess waits", "198.51.100.7", "/ok", 429},
		{"spent: a failing one too", "198.51.100.7", "/401", 429},
		{"the same /64 shares the budget", "2001:db8:1:2::1", "/401", 401},
		{"another client network", "203.0.113.9", "/401", 401},
		{"health stays open to a spent client", "198.51.100.7", "/healthz", 200},
	}
	for _, s := range steps {
		before := back.ran
		rec := do(s.client, s.path)
		if rec.Code != s.want {
			t.Fatalf("%s: %s %s = %d, want %d", s.name, s.client, s.path, rec.Code, s.want)
		}
		if s.want == 429 {
			if back.ran != before {
				t.Errorf("%s: the request ran behind the edge; a spent budget must refuse first", s.name)
			}
			if rec.Header().Get("Retry-After") == "" || rec.Header().Get("Content-Type") != edge.ProblemContentType {
				t.Errorf("%s: headers %v, want a problem with Retry-After", s.name, rec.Header())
			}
		}
	}
	// One IPv6 /64 is one client: three failures from two addresses in it.
	do("2001:db8:1:2::99", "/401")
	do("2001:db8:1:2::1", "/403")
	if rec := do("2001:db8:1:2::abcd", "/ok"); rec.Code != 429 {
		t.Errorf("an IPv6 /64 after three failures = %d, want 429", rec.Code)
	}
	// 60 s / 3 = one failure back every 20 s.
	clk.Advance(20 * time.Second)
	if rec := do("198.51.100.7", "/ok"); rec.Code != 200 {
		t.Errorf("after 20s = %d, want 200: the budget refills", rec.Code)
	}
}

// TestFailedAuthBudgetFailsClosed: a limiter that cannot decide refuses the
// request rather than let unlimited guessing through.
func TestFailedAuthBudgetFailsClosed(t *testing.T) {
	t.Parallel()
	h := edge.Middleware(edge.Config{FailedAuth: edge.FailedAuth{Limiter: downLimiter{}, Limit: edge.FailedAuthLimit(3)}}, &answers{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ok", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("with the limiter down = %d, want 503", rec.Code)
	}
}

type downLimiter struct{}

func (downLimiter) Allow(context.Context, string, ratelimit.Limit) (ratelimit.Result, error) {
	return ratelimit.Result{}, errs.New(errs.Unavailable, "down")
}

func (downLimiter) Check(context.Context, string, ratelimit.Limit) (ratelimit.Result, error) {
	return ratelimit.Result{}, errs.New(errs.Unavailable, "down")
}
