package server

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// DefaultReadyTimeout bounds each upstream health check behind /readyz.
const DefaultReadyTimeout = time.Second

// Readiness asks every upstream's gRPC health service, over the same mTLS
// connections the routes use (but without the edge policy: no user is
// behind a probe).
type Readiness struct {
	Upstreams map[string]grpc.ClientConnInterface
	Timeout   time.Duration
	// Local, if set, must also report true: the gateway's own state (the
	// revocation feed has synchronised).
	Local func() bool
}

// Ready reports whether every upstream answers SERVING within the timeout.
func (rd Readiness) Ready(ctx context.Context) bool {
	if rd.Local != nil && !rd.Local() {
		return false
	}
	timeout := rd.Timeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok = true
	)
	for _, conn := range rd.Upstreams {
		wg.Go(func() {
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				mu.Lock()
				ok = false
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ok
}

// healthz answers 200 while the process can serve HTTP at all.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusOK, "ok")
}

// readyz answers 200 when every upstream is up, else 503; the body never
// says which one is down, to keep the topology to the operators.
func readyz(rd Readiness) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rd.Ready(r.Context()) {
			writeStatus(w, http.StatusOK, "ok")
			return
		}
		writeStatus(w, http.StatusServiceUnavailable, "unavailable")
	}
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(`{"status":"` + status + `"}`))
}

// openAPI serves the OpenAPI document.
func openAPI(doc []byte) http.HandlerFunc {
	doc = slices.Clone(doc)
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}
}
