package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bastion-bank/bastion/platform/errs"
)

// TestPprofOnlyWhenAsked: the profiling endpoints are absent by default and
// with "0", and present with "1" on a loopback listener.
func TestPprofOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pprof    string
		wantCode int
		wantBody string
	}{
		{"default", PprofOff, http.StatusNotFound, ""},
		{"zero", "0", http.StatusNotFound, ""},
		{"on", PprofLoopback, http.StatusOK, "goroutine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := &logBuffer{}
			tel, err := Setup(context.Background(), Config{ServiceName: "x", MetricsAddr: "127.0.0.1:0", Pprof: tt.pprof, LogOutput: out})
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			defer func() { _ = tel.Shutdown(context.Background()) }()
			if err := tel.StartAdmin(context.Background()); err != nil {
				t.Fatalf("StartAdmin: %v", err)
			}
			base := "http://" + tel.boundAdminAddr()
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/profile?seconds=1", "/debug/pprof/cmdline"} {
				code, body := get(t, base+path)
				if code != tt.wantCode {
					t.Errorf("GET %s with Pprof %q = %d, want %d", path, tt.pprof, code, tt.wantCode)
				}
				if tt.wantCode == http.StatusOK && len(body) == 0 {
					t.Errorf("GET %s with Pprof %q: empty body", path, tt.pprof)
				}
			}
			if code, body := get(t, base+"/debug/pprof/"); !strings.Contains(body, tt.wantBody) {
				t.Errorf("GET /debug/pprof/ with Pprof %q = %d, body lacks %q", tt.pprof, code, tt.wantBody)
			}
			if code, _ := get(t, base+"/metrics"); code != http.StatusOK {
				t.Errorf("GET /metrics with Pprof %q = %d, want 200", tt.pprof, code)
			}
			if on := strings.Contains(out.String(), "profiling endpoints ON"); on != (tt.wantCode == http.StatusOK) {
				t.Errorf("Pprof %q: start-up log says profiling on = %v; log: %s", tt.pprof, on, out)
			}
		})
	}
}

// TestPprofBeyondLoopback: "1" refuses a listener beyond loopback and binds
// nothing; "any-address" serves there, with a warning.
func TestPprofBeyondLoopback(t *testing.T) {
	t.Parallel()
	tel, err := Setup(context.Background(), Config{ServiceName: "x", MetricsAddr: "0.0.0.0:0", Pprof: PprofLoopback, LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	if err := tel.StartAdmin(context.Background()); errs.KindOf(err) != errs.Invalid {
		t.Errorf("StartAdmin(0.0.0.0, Pprof 1) = %v, want an Invalid error", err)
	}
	if got := tel.boundAdminAddr(); got != "" {
		t.Errorf("StartAdmin(0.0.0.0, Pprof 1) bound %q, want nothing", got)
	}

	out := &logBuffer{}
	wide, err := Setup(context.Background(), Config{ServiceName: "x", MetricsAddr: "0.0.0.0:0", Pprof: PprofAnyAddress, LogOutput: out})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() { _ = wide.Shutdown(context.Background()) }()
	if err := wide.StartAdmin(context.Background()); err != nil {
		t.Fatalf("StartAdmin(0.0.0.0, Pprof any-address): %v", err)
	}
	_, port, _ := net.SplitHostPort(wide.boundAdminAddr())
	if code, _ := get(t, "http://127.0.0.1:"+port+"/debug/pprof/"); code != http.StatusOK {
		t.Errorf("GET /debug/pprof/ with Pprof any-address = %d, want 200", code)
	}
	if !strings.Contains(out.String(), "profiling endpoints ON beyond loopback") {
		t.Errorf("Pprof any-address beyond loopback did not warn; log: %s", out)
	}
}

func TestPprofBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{ServiceName: "x", MetricsAddr: "127.0.0.1:0", Pprof: "yes"},
		{ServiceName: "x", MetricsAddr: "127.0.0.1:0", Pprof: "true"},
		{ServiceName: "x", Pprof: PprofLoopback}, // no listener to serve it on
	} {
		cfg.LogOutput = io.Discard
		tel, err := Setup(context.Background(), cfg)
		if err == nil {
			_ = tel.Shutdown(context.Background())
		}
		if errs.KindOf(err) != errs.Invalid {
			t.Errorf("Setup(Pprof %q, MetricsAddr %q) = %v, want an Invalid error", cfg.Pprof, cfg.MetricsAddr, err)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// logBuffer is a log sink the admin server's goroutine and the test may
// use at once.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
