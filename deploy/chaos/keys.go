package chaos

import (
	"slices"
	"sync"
)

// Keys records every idempotency key the campaign used and what each was
// answered, for the audit. It is safe for concurrent use.
type Keys struct {
	mu      sync.Mutex
	intents map[string]*Intent
	order   []string
}

// NewKeys returns an empty record.
func NewKeys() *Keys { return &Keys{intents: map[string]*Intent{}} }

// Add records a key before its first attempt is sent, so that a key whose
// every attempt went unanswered is still audited.
func (k *Keys) Add(in Intent) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, dup := k.intents[in.Key]; dup {
		panic("chaos: key " + in.Key + " used twice") // a bug in the stream, never the bank's
	}
	k.intents[in.Key] = &in
	k.order = append(k.order, in.Key)
}

// Answered records the final answer to key, or its last one if the
// campaign stopped retrying it first.
func (k *Keys) Answered(key string, a Answer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	in := k.intents[key]
	switch {
	case a.OK():
		in.Outcome, in.Status = Succeeded, a.Status
		in.IDs = addID(in.IDs, a.TransferID())
	case a.Final():
		in.Outcome, in.Status = Refused, a.Status
	}
}

// Resent records the answer to a deliberate repeat of a key that had
// succeeded: it must be a replay, of the same transfer.
func (k *Keys) Resent(key string, a Answer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	in := k.intents[key]
	in.Resent++
	if a.OK() {
		in.IDs = addID(in.IDs, a.TransferID())
	}
	if !a.OK() || !a.Replayed {
		in.Unmarked++
	}
}

// Intents returns a copy of every key's record, in the order they were added.
func (k *Keys) Intents() []Intent {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]Intent, 0, len(k.order))
	for _, key := range k.order {
		in := *k.intents[key]
		in.IDs = slices.Clone(in.IDs)
		out = append(out, in)
	}
	return out
}

// addID adds id to ids once; an empty id (a 2xx without a completed
// transfer) is kept as such, so the audit sees the answer was wrong.
func addID(ids []string, id string) []string {
	if slices.Contains(ids, id) {
		return ids
	}
	return append(ids, id)
}
