package ratelimit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bastion-bank/bastion/platform/ratelimit"
)

func TestHeaders(t *testing.T) {
	t.Parallel()
	auth := ratelimit.Limit{Name: "auth", Rate: 20, Period: time.Minute, Burst: 20}
	tests := []struct {
		name string
		res  ratelimit.Result
		want http.Header
	}{
		{
			name: "allowed",
			res:  ratelimit.Result{Allowed: true, Limit: auth, Remaining: 17, ResetAfter: 9 * time.Second},
			want: http.Header{
				"Ratelimit-Policy": {`"auth";q=20;w=60`},
				"Ratelimit":        {`"auth";r=17;t=9`},
			},
		},
		{
			name: "refused rounds retry up",
			res:  ratelimit.Result{Limit: auth, RetryAfter: 2100 * time.Millisecond, ResetAfter: 59*time.Second + time.Millisecond},
			want: http.Header{
				"Ratelimit-Policy": {`"auth";q=20;w=60`},
				"Ratelimit":        {`"auth";r=0;t=60`},
				"Retry-After":      {"3"},
			},
		},
		{
			// A refusal must never tell the client to retry immediately.
			name: "refused with zero retry",
			res:  ratelimit.Result{Limit: auth},
			want: http.Header{
				"Ratelimit-Policy": {`"auth";q=20;w=60`},
				"Ratelimit":        {`"auth";r=0;t=0`},
				"Retry-After":      {"1"},
			},
		},
		{
			name: "hostile name and negative values",
			res: ratelimit.Result{
				Allowed:    true,
				Limit:      ratelimit.Limit{Name: "a\"b\\c\r\nX-Evil: 1", Rate: 5, Period: 1500 * time.Millisecond},
				Remaining:  -3,
				ResetAfter: -time.Second,
			},
			want: http.Header{
				"Ratelimit-Policy": {`"a\"b\\cX-Evil: 1";q=5;w=2`},
				"Ratelimit":        {`"a\"b\\cX-Evil: 1";r=0;t=0`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ratelimit.Headers(tt.res)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Headers(%+v) mismatch (-want +got):\n%s", tt.res, diff)
			}
			if got.Get("RateLimit-Policy") != tt.want.Get("RateLimit-Policy") {
				t.Errorf("Headers(%+v).Get(RateLimit-Policy) = %q", tt.res, got.Get("RateLimit-Policy"))
			}
		})
	}
}

// TestHeadersFromLimiter checks the headers of a real refusal end to end.
func TestHeadersFromLimiter(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := ratelimit.NewMemory(clk.Now, 0)
	lim := ratelimit.Limit{Name: "auth", Rate: 20, Period: time.Minute}
	spendAll(t, m, "ip", lim, 20)
	h := ratelimit.Headers(mustAllow(t, m, "ip", lim))
	if got := h.Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After = %q, want %q", got, "3")
	}
	if got := h.Get("RateLimit"); got != `"auth";r=0;t=60` {
		t.Errorf("RateLimit = %q, want %q", got, `"auth";r=0;t=60`)
	}
}
