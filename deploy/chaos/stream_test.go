package chaos

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBank answers like the gateway through a fault: each transfer key's
// first attempt is 503 (an upstream down), its second 409 (the same key
// still in flight), and from then on the transfer, marked as a replay after
// the first success. Keys whose amount is 13 are refused with 422. Reads
// succeed once down has passed.
type fakeBank struct {
	mu       sync.Mutex
	attempts map[string]int
	upAt     atomic.Int64 // unix nanoseconds from which reads succeed
	reads    atomic.Int64
}

func (f *fakeBank) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.URL.Path == "/v1/auth/login" {
		if time.Now().UnixNano() < f.upAt.Load() {
			http.Error(w, `{"status":503}`, http.StatusServiceUnavailable)
			return
		}
		f.reads.Add(1)
		w.Write([]byte(`{"account":{"id":"a"},"entries":[]}`))
		return
	}
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "{}", http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	f.attempts[key]++
	n := f.attempts[key]
	f.mu.Unlock()
	switch {
	case n == 1:
		http.Error(w, "{}", http.StatusServiceUnavailable)
	case n == 2:
		http.Error(w, "{}", http.StatusConflict)
	case body["amount"] == "13":
		http.Error(w, `{"code":"FAILED_PRECONDITION"}`, http.StatusUnprocessableEntity)
	default:
		if n > 3 {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		w.Write([]byte(`{"transfer":{"id":"t-` + key + `","status":"COMPLETED"}}`))
	}
}

func startFake(t *testing.T, down time.Duration) (*fakeBank, *Bank) {
	t.Helper()
	f := &fakeBank{attempts: map[string]int{}}
	f.upAt.Store(time.Now().Add(down).UnixNano())
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return f, &Bank{HTTP: srv.Client(), Base: srv.URL}
}

// TestStreamRetriesEachCallWithItsKey: every transfer is retried with its
// key through a 503 and a 409 until it is answered; a refusal ends it; one
// success in ten is sent again and answered as a replay; every attempt is
// counted in its phase.
func TestStreamRetriesEachCallWithItsKey(t *testing.T) {
	t.Parallel()
	_, bank := startFake(t, 0)
	users := []User{{Token: "t0", Account: "a0"}, {Token: "t1", Account: "a1"}, {Token: "t2", Account: "a2"}}
	rec, keys := &Recorder{}, NewKeys()
	rec.Begin("baseline", nil)
	// Arrival 48 is the first transfer of amount 13.
	s := &Stream{Bank: bank, Users: users, RunID: "test", Rate: 200, MaxInFlight: 1000, MaxArrivals: 60, Rec: rec, Keys: keys}
	st := s.Run(t.Context(), nil, time.Minute)

	if st.Arrivals != 60 || st.Unresolved != 0 || st.Dropped != 0 || len(st.Refused) != 0 {
		t.Errorf("Run = %+v, want 60 arrivals, every call answered, none dropped, no unexpected refusal", st)
	}
	var refused, resent int
	for _, in := range keys.Intents() {
		switch {
		case in.Amount == 13:
			refused++
			if in.Outcome != Refused || in.Status != 422 {
				t.Errorf("key %s (amount 13) = %v %d, want refused 422", in.Key, in.Outcome, in.Status)
			}
		case in.Outcome != Succeeded || len(in.IDs) != 1 || in.IDs[0] != "t-"+in.Key:
			t.Errorf("key %s = %v with ids %v, want succeeded as t-%s", in.Key, in.Outcome, in.IDs, in.Key)
		}
		if in.Resent > 0 {
			resent++
			if in.Unmarked != 0 {
				t.Errorf("key %s: %d repeats unmarked, want every repeat a replay", in.Key, in.Unmarked)
			}
		}
	}
	if refused == 0 || resent == 0 {
		t.Errorf("%d refused and %d resent keys, want some of each", refused, resent)
	}
	n, statuses := rec.Current().Requests()
	if statuses[503] == 0 || statuses[409] == 0 || statuses[200] == 0 || n != statuses[503]+statuses[409]+statuses[200]+statuses[422] {
		t.Errorf("phase counted %d attempts as %v, want the 503s, 409s and 200s of every attempt", n, statuses)
	}
}

// TestProbesTimeARecovery: the probes succeed only once the fake is up
// again, and the recovery is timed from when it listened.
func TestProbesTimeARecovery(t *testing.T) {
	t.Parallel()
	const down = 700 * time.Millisecond
	f, bank := startFake(t, down)
	rec, keys := &Recorder{}, NewKeys()
	p := &Probes{Bank: bank, Rec: rec, Keys: keys, RunID: "test", From: User{Token: "t", Account: "a0"}, To: User{Account: "a1"}}
	listening := time.Now()
	got, ok := p.Recover(t.Context(), listening)
	// The upper bound is loose: a busy CI machine can be slow to schedule.
	if !ok || got < down || got > down+10*time.Second {
		t.Errorf("Recover = %v, %v; want recovered once it was up, %v after listening", got, ok, down)
	}
	if f.reads.Load() == 0 {
		t.Error("the probes never read once the fake was up")
	}
	in := keys.Intents()
	if len(in) != 1 || in[0].Outcome != Succeeded || !strings.Contains(in[0].Key, "probe") {
		t.Errorf("probe keys = %+v, want one probe transfer that succeeded", in)
	}
}

func TestAnswerFinal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		final  bool
	}{
		{0, false}, {200, true}, {400, true}, {401, true}, {404, true}, {409, false},
		{422, true}, {429, false}, {500, false}, {502, false}, {503, false}, {504, false},
	}
	for _, tt := range tests {
		if got := (Answer{Status: tt.status}).Final(); got != tt.final {
			t.Errorf("Answer{Status: %d}.Final() = %v, want %v", tt.status, got, tt.final)
		}
	}
}
