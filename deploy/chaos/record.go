package chaos

import (
	"sync"
	"time"
)

// Phase is a stretch of the campaign: the baseline before the first fault,
// or one fault from its injection until the next one's. Every attempt of
// every request is counted in the phase during which it was sent.
type Phase struct {
	Name  string
	Fault *Fault // nil for the baseline and the drain
	Start time.Time

	// Filled in by the campaign as the fault plays out.
	Listening time.Time     // when what the fault broke listened again
	Recovery  time.Duration // from Listening until every probe succeeded
	Recovered bool          // every probe succeeded within the probe window
	Chain     string        // the audit verifier's verdict after the fault
	ChainOK   bool

	mu       sync.Mutex
	requests int
	statuses map[int]int // 0: no HTTP answer
	dropped  int         // arrivals not sent: too many calls were still being retried
}

// Requests returns how many attempts were sent in the phase and how many
// got each status (0 for no HTTP answer).
func (p *Phase) Requests() (int, map[int]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]int, len(p.statuses))
	for s, n := range p.statuses {
		out[s] = n
	}
	return p.requests, out
}

// ServerErrors counts the answers that are 5xx but not 503: a 503 is the
// contract's "an upstream is unavailable, retry", anything else a fault the
// bank did not handle.
func (p *Phase) ServerErrors() int {
	_, statuses := p.Requests()
	n := 0
	for s, c := range statuses {
		if s >= 500 && s != 503 {
			n += c
		}
	}
	return n
}

// Dropped returns how many arrivals of the phase were not sent because
// the stream already had its maximum of calls outstanding.
func (p *Phase) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

func (p *Phase) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropped++
}

func (p *Phase) record(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	p.statuses[status]++
}

// Recorder keeps the phases and knows the current one.
type Recorder struct {
	mu     sync.Mutex
	phases []*Phase
}

// Begin starts a new phase; attempts sent from now on count in it.
func (r *Recorder) Begin(name string, f *Fault) *Phase {
	p := &Phase{Name: name, Fault: f, Start: time.Now(), statuses: map[int]int{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, p)
	return p
}

// Current returns the phase attempts count in now.
func (r *Recorder) Current() *Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.phases) == 0 {
		r.phases = append(r.phases, &Phase{Name: "set-up", Start: time.Now(), statuses: map[int]int{}})
	}
	return r.phases[len(r.phases)-1]
}

// Phases returns every phase so far, in order.
func (r *Recorder) Phases() []*Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Phase(nil), r.phases...)
}
