package docs_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/gateway/internal/docs"
)

func TestHandlerServesOnlyEmbeddedFiles(t *testing.T) {
	t.Parallel()
	notFound := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h, err := docs.Handler("/docs/", notFound)
	if err != nil {
		t.Fatalf("Handler: %v", err)
	}
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/docs/", 200, `<script src="init.js">`},
		{"/docs/init.js", 200, `url: "/openapi.json"`},
		{"/docs/swagger-ui/swagger-ui.css", 200, ""},
		{"/docs/swagger-ui/LICENSE", 200, "Apache License"},
		{"/docs/swagger-ui", http.StatusTeapot, ""},
		{"/docs/swagger-ui/", http.StatusTeapot, ""},
		{"/docs/nothing.js", http.StatusTeapot, ""},
		{"/docs/../docs.go", http.StatusTeapot, ""},
		{"/elsewhere/index.html", http.StatusTeapot, ""},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path = tc.path // as a client could send it, uncleaned
		h.ServeHTTP(rec, r)
		if rec.Code != tc.status {
			t.Errorf("GET %s = %d, want %d", tc.path, rec.Code, tc.status)
			continue
		}
		if !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("GET %s body lacks %q", tc.path, tc.body)
		}
		if tc.status == 200 && rec.Header().Get("Content-Security-Policy") != docs.ContentSecurityPolicy {
			t.Errorf("GET %s CSP = %q", tc.path, rec.Header().Get("Content-Security-Policy"))
		}
	}
}

func TestPageHasNoInlineScriptOrRemoteAsset(t *testing.T) {
	t.Parallel()
	h, err := docs.Handler("/docs/", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs/", nil))
	page := rec.Body.String()
	if strings.Contains(page, "<script>") || strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "style=") {
		t.Errorf("docs page has inline code or a remote reference:\n%s", page)
	}
}
