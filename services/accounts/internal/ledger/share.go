package ledger

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/grpcerr"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// Balance reads share the ledger hop, with the discipline of the ledger's
// group commit: a look-up of one account's balance (GET /v1/accounts/{id},
// most of the accounts service's reads) is sent at once while fewer than
// inFlight are out, with no timer; one that arrives while inFlight are out
// waits, and when one of them returns every look-up waiting (up to maxBatch
// distinct ids) goes in one GetBalances call. Under load one call of the
// ledger's gRPC chain then answers many readers; idle, nothing changes.
//
// Read-your-writes holds as with a call of one's own: a look-up only ever
// joins a call taken from the queue after it was queued, so the ledger
// reads the balance after the look-up began, and so after any transfer the
// reader saw committed.
//
// Only one-account look-ups share: a page of several ids is already one
// call, and mixing pages into shared calls would split them across calls
// (100 ids at most) and tie a page's latency to other readers'.
//
// Sharing crosses no security boundary: GetBalances carries no user
// identity (accounts decided ownership before asking), and each reader gets
// back only its own account's balance. One id the ledger refused would fail
// the whole call; the domain only asks for ids of accounts it has stored
// (UUIDs, as GetBalances requires).

// inFlight is how many one-account look-ups may be out before the next
// wait to share a call. Two: one call is being answered while the next
// collects what arrives meanwhile, so a reader waits at most about one
// round trip more than it would alone. (The ledger's batches run one at a
// time by default because they wait on each other's row locks; reads take
// none.)
const inFlight = 2

// lookup is one reader's balance look-up waiting for a shared call.
type lookup struct {
	ctx  context.Context
	id   string
	done chan shared // buffered, so a call never waits for a reader that left
}

// shared is the outcome of a shared call: the balances the ledger knows of
// its ids, or the call's error unmapped. Readers only read it.
type shared struct {
	balances map[string]domain.Balance
	err      error
}

// balance looks up one account's balance: under the reader's own context on
// its own goroutine while fewer than inFlight are out (exactly the call of
// old), else in a shared call. A reader whose context ends stops waiting at
// once, without cancelling a call others wait for.
func (l *Client) balance(ctx context.Context, id string) (map[string]domain.Balance, error) {
	l.mu.Lock()
	if l.busy < inFlight {
		l.busy++
		l.mu.Unlock()
		defer l.release()
		return l.balances(ctx, []string{id})
	}
	w := &lookup{ctx: ctx, id: id, done: make(chan shared, 1)}
	l.queue = append(l.queue, w)
	l.mu.Unlock()
	select {
	case r := <-w.done:
		return r.of(id)
	case <-ctx.Done():
	}
	l.mu.Lock()
	if i := slices.Index(l.queue, w); i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
	}
	l.mu.Unlock()
	// As the connection answers a call whose context ended.
	return nil, mapErr("get balances", grpcerr.FromError(status.FromContextError(ctx.Err()).Err()))
}

// of is one reader's answer: its own account's balance only, in a map of
// its own, and the call's error mapped as for a call of one's own.
func (r shared) of(id string) (map[string]domain.Balance, error) {
	if r.err != nil {
		return nil, mapErr("get balances", r.err)
	}
	out := make(map[string]domain.Balance, 1)
	if b, ok := r.balances[id]; ok {
		out[id] = b
	}
	return out, nil
}

// release gives back a look-up's place in flight: to a goroutine that
// serves the waiting look-ups if any wait, so none is left behind.
func (l *Client) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		l.busy--
		return
	}
	go l.serve()
}

// serve sends shared calls until nothing waits, then exits: no goroutine
// runs while the service is idle.
func (l *Client) serve() {
	for {
		l.mu.Lock()
		batch, ids := l.take()
		if len(batch) == 0 {
			l.busy--
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		ctx, cancel := shareContext(batch)
		r := shared{balances: make(map[string]domain.Balance, len(ids))}
		r.err = l.get(ctx, ids, r.balances)
		cancel()
		for _, w := range batch {
			w.done <- r
		}
	}
}

// take removes from the queue the look-ups one call can carry: those of
// the oldest maxBatch distinct ids, every look-up of an id in the call
// riding along free. The rest keep their order. The caller holds mu.
func (l *Client) take() ([]*lookup, []string) {
	seen := make(map[string]bool)
	var ids []string
	var batch []*lookup
	kept := l.queue[:0]
	for _, w := range l.queue {
		if !seen[w.id] && len(ids) < maxBatch {
			seen[w.id] = true
			ids = append(ids, w.id)
		}
		if seen[w.id] {
			batch = append(batch, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(l.queue[len(kept):])
	l.queue = kept
	return batch, ids
}

// shareContext is the context of a shared call: no one reader's
// cancellation ends it, since the others still wait for it, but it ends by
// the latest of their deadlines; if a reader has none, the connection's
// default timeout bounds the call, as it bounds that reader's call today.
// It carries the first reader's values (trace). A call for one reader runs
// under that reader's context, as the ledger's batch of one does.
func shareContext(batch []*lookup) (context.Context, context.CancelFunc) {
	if len(batch) == 1 {
		return batch[0].ctx, func() {}
	}
	ctx := context.WithoutCancel(batch[0].ctx)
	var last time.Time
	for _, w := range batch {
		d, ok := w.ctx.Deadline()
		if !ok {
			return ctx, func() {}
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(ctx, last)
}
