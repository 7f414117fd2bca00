package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bastion-bank/bastion/platform/benchcpu"
	"github.com/bastion-bank/bastion/platform/telemetry"
)

// BenchmarkInstrument is the OpenTelemetry HTTP middleware alone (instrument)
// around a handler that only names the route and answers 200, with the
// providers platform/telemetry.Setup builds without an exporter, as the
// gateway runs: a span per request that is not recorded, the request
// metrics into the Prometheus registry with their exemplars. It isolates
// what BenchmarkHandler cannot resolve: the middleware's own cost per
// request (cpu-ns/op is the process's CPU per request).
//
//	go test -run '^$' -bench BenchmarkInstrument -benchmem -count 6 ./gateway/internal/server/
func BenchmarkInstrument(b *testing.B) {
	tel, err := telemetry.Setup(b.Context(), telemetry.Config{ServiceName: "gateway", ServiceVersion: "bench", LogOutput: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(b.Context()) })
	h := instrument(Config{TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider()},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			setRoute(r, "/v1/transfers")
			_, _ = w.Write([]byte(`{"id":"t1"}`))
		}))
	// One request, served again and again: the middleware copies it
	// (WithContext) and never changes it, and building a new one costs more
	// than what is measured.
	req := httptest.NewRequest(http.MethodPost, "/v1/transfers", http.NoBody)
	w := discardWriter{http.Header{}}
	b.ReportAllocs()
	before := benchcpu.Time(b)
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	benchcpu.Report(b, before)
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}
