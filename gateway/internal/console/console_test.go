package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
)

func newTestHandler(t *testing.T, auth *fakeAuth) http.Handler {
	t.Helper()
	h, err := Handler(Config{
		Auth:     auth,
		Renderer: &edge.Renderer{},
		NotFound: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }),
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestFiles(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, &fakeAuth{})
	tests := []struct {
		method, path string
		want         int
		wantType     string
	}{
		{"GET", "/console/", http.StatusOK, "text/html; charset=utf-8"},
		{"HEAD", "/console/", http.StatusOK, "text/html; charset=utf-8"},
		{"GET", "/console/js/app.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{"GET", "/console/style.css", http.StatusOK, "text/css; charset=utf-8"},
		{"GET", "/console/no-such-file.js", http.StatusTeapot, ""},
		{"GET", "/console/js", http.StatusTeapot, ""},
		{"GET", "/other/", http.StatusTeapot, ""},
		{"POST", "/console/", http.StatusMethodNotAllowed, edge.ProblemContentType},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
			}
			if got := rec.Header().Get("Content-Type"); tt.wantType != "" && got != tt.wantType {
				t.Errorf("%s %s Content-Type = %q, want %q", tt.method, tt.path, got, tt.wantType)
			}
			if tt.want == http.StatusOK && rec.Header().Get("Content-Security-Policy") != ContentSecurityPolicy {
				t.Errorf("%s %s CSP = %q, want the console's", tt.method, tt.path, rec.Header().Get("Content-Security-Policy"))
			}
		})
	}
}

// TestPolicyIsStrict holds the CSP to what docs/security-controls.md
// promises: nothing inline or evaluated, no framing, Trusted Types with no
// policy at all.
func TestPolicyIsStrict(t *testing.T) {
	t.Parallel()
	directives := map[string]string{}
	for _, d := range strings.Split(ContentSecurityPolicy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	want := map[string]string{
		"default-src": "'none'", "script-src": "'self'", "style-src": "'self'", "connect-src": "'self'",
		"frame-ancestors": "'none'", "base-uri": "'none'", "form-action": "'none'",
		"require-trusted-types-for": "'script'", "trusted-types": "'none'",
	}
	for name, value := range want {
		if directives[name] != value {
			t.Errorf("CSP %s = %q, want %q", name, directives[name], value)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") || strings.Contains(ContentSecurityPolicy, "data:") || strings.Contains(ContentSecurityPolicy, "*") {
		t.Errorf("CSP %q allows unsafe-*, data: or a wildcard", ContentSecurityPolicy)
	}
}

// TestAssetsUseNoUnsafeSink reads every embedded file for the ways a page
// could turn text into code or leak a token, which the browser tests could
// miss on a screen they do not visit.
func TestAssetsUseNoUnsafeSink(t *testing.T) {
	t.Parallel()
	forbidden := map[string]*regexp.Regexp{
		"an HTML sink":               regexp.MustCompile(`\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|srcdoc)\b`),
		"eval or a string timer":     regexp.MustCompile(`\beval\(|new Function\(|set(Timeout|Interval)\(\s*['"]`),
		"a storage API or a cookie":  regexp.MustCompile(`\b(localStorage|sessionStorage|indexedDB|document\.cookie)\b`),
		"a Trusted Types policy":     regexp.MustCompile(`createPolicy`),
		"an inline style or handler": regexp.MustCompile(`(?i)\sstyle=|<style|\son[a-z]+=`),
		"an inline script":           regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<]`),
		"a script from elsewhere":    regexp.MustCompile(`(?i)(src|href)="(https?:)?//`),
		"a javascript: URL":          regexp.MustCompile(`(?i)javascript:`),
	}
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".svg") {
			return err
		}
		raw, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		for what, re := range forbidden {
			if loc := re.FindIndex(raw); loc != nil {
				t.Errorf("%s uses %s: %q", path, what, raw[loc[0]:loc[1]])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
