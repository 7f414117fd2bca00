package target_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/bastion-bank/bastion/loadtest/internal/target"
)

// TestPerCallerConnections sends requests as several callers, concurrently,
// over HTTP/2 and checks on the server's side which connection each came
// on: one connection per caller, the same one for every request of a
// caller, and one shared for requests that name no caller.
func TestPerCallerConnections(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	conns := map[string]map[string]bool{} // Authorization → remote addresses
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("request over %s, want HTTP/2", r.Proto)
		}
		mu.Lock()
		who := r.Header.Get("Authorization")
		if conns[who] == nil {
			conns[who] = map[string]bool{}
		}
		conns[who][r.RemoteAddr] = true
		mu.Unlock()
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	pc := &target.PerCaller{New: func() *http.Transport {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.ForceAttemptHTTP2 = true
		return tr
	}}
	client := &http.Client{Transport: pc}
	t.Cleanup(client.CloseIdleConnections)

	callers := []string{"", "Bearer a", "Bearer b", "Bearer c"}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if who := callers[i%len(callers)]; who != "" {
				req.Header.Set("Authorization", who)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()

	all := map[string]string{}
	for _, who := range callers {
		addrs := conns[who]
		if len(addrs) != 1 {
			t.Errorf("caller %q used %d connections, want 1", who, len(addrs))
		}
		for a := range addrs {
			if other, ok := all[a]; ok {
				t.Errorf("callers %q and %q share the connection %s", other, who, a)
			}
			all[a] = who
		}
	}
	if got := pc.Callers(); got != len(callers)-1 {
		t.Errorf("Callers() = %d, want %d (the caller-less requests share one pool)", got, len(callers)-1)
	}
}

// TestPerCallerBound checks that callers past MaxCallerPools share one pool
// instead of making a transport each without end.
func TestPerCallerBound(t *testing.T) {
	t.Parallel()
	made := 0
	pc := &target.PerCaller{New: func() *http.Transport {
		made++
		return &http.Transport{}
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: pc}
	t.Cleanup(client.CloseIdleConnections)
	for i := range target.MaxCallerPools + 10 {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", fmt.Sprintf("Bearer %d", i))
		// Only the pool choice matters here, not the answer: an empty
		// Transport reaches srv over plain HTTP/1.1.
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if i%100 == 0 {
			client.CloseIdleConnections() // keep the open sockets few
		}
	}
	if got := pc.Callers(); got != target.MaxCallerPools {
		t.Errorf("Callers() = %d, want the bound %d", got, target.MaxCallerPools)
	}
	if made != target.MaxCallerPools+1 {
		t.Errorf("made %d transports, want %d (one per caller up to the bound, and the shared one)", made, target.MaxCallerPools+1)
	}
}
