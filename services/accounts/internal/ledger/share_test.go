package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/errs"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger"
)

// versioned is a LedgerServiceClient whose every GetBalances call gets a
// version, 1, 2, … in the order the calls arrive, reported as each
// balance's Held. Account "n" has a balance of n*100; an id that is not a
// number is unknown. The first hold calls wait until released.
type versioned struct {
	transactionsv1.LedgerServiceClient
	hold  int64
	err   error
	sent  atomic.Int64
	calls chan *call // every call as it arrives
}

// call is one GetBalances call the fake received.
type call struct {
	ctx     context.Context
	ids     []string
	version int64
	release chan struct{}
}

func newVersioned(hold int64) *versioned {
	return &versioned{hold: hold, calls: make(chan *call, 1000)}
}

func (v *versioned) GetBalances(ctx context.Context, in *transactionsv1.GetBalancesRequest, _ ...grpc.CallOption) (*transactionsv1.GetBalancesResponse, error) {
	c := &call{ctx: ctx, ids: in.GetAccountIds(), version: v.sent.Add(1), release: make(chan struct{})}
	v.calls <- c
	if c.version <= v.hold {
		<-c.release
	}
	if v.err != nil {
		return nil, v.err
	}
	resp := &transactionsv1.GetBalancesResponse{}
	for _, id := range c.ids {
		if n, err := strconv.Atoi(id); err == nil {
			resp.Balances = append(resp.Balances, &transactionsv1.Balance{AccountId: id, Balance: int64(n) * 100, Held: c.version})
		}
	}
	return resp, nil
}

// next is the next call the fake receives.
func (v *versioned) next(t *testing.T) *call {
	t.Helper()
	select {
	case c := <-v.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no GetBalances call arrived")
		return nil
	}
}

// answer is what Balances returned to one reader.
type answer struct {
	m   map[string]domain.Balance
	err error
}

// read starts a one-account look-up on its own goroutine.
func read(ctx context.Context, l *ledger.Client, id string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		m, err := l.Balances(ctx, []string{id})
		ch <- answer{m, err}
	}()
	return ch
}

// occupy starts ledger.InFlight look-ups and returns their calls, held
// by the fake, and their answers.
func occupy(t *testing.T, l *ledger.Client, v *versioned) ([]*call, []<-chan answer) {
	t.Helper()
	var calls []*call
	var answers []<-chan answer
	for i := range ledger.InFlight {
		answers = append(answers, read(context.Background(), l, fmt.Sprint(1000+i)))
		calls = append(calls, v.next(t))
	}
	return calls, answers
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// waitIdle checks that nothing waits and no goroutine serves shared calls.
func waitIdle(t *testing.T, l *ledger.Client) {
	t.Helper()
	waitFor(t, "idle", func() bool { return ledger.Waiting(l) == 0 && ledger.Busy(l) == 0 })
}

// got receives an answer and checks that it holds exactly id's balance.
func got(t *testing.T, id string, ch <-chan answer) domain.Balance {
	t.Helper()
	a := <-ch
	if a.err != nil {
		t.Fatalf("Balances(%s) error = %v", id, a.err)
	}
	n, _ := strconv.Atoi(id)
	if b, ok := a.m[id]; len(a.m) != 1 || !ok || b.Booked != int64(n)*100 {
		t.Fatalf("Balances(%s) = %v, want only booked %d", id, a.m, n*100)
	}
	return a.m[id]
}

func TestSequentialReadsCallEachAlone(t *testing.T) {
	t.Parallel()
	v := newVersioned(0)
	l := ledger.New(v)
	for i := range 5 {
		id := fmt.Sprint(i)
		if b := got(t, id, read(context.Background(), l, id)); b.Held != int64(i+1) {
			t.Errorf("Balances(%s) version = %d, want %d", id, b.Held, i+1)
		}
		if c := v.next(t); !slices.Equal(c.ids, []string{id}) {
			t.Errorf("call %d ids = %v, want [%s]", i+1, c.ids, id)
		}
	}
	if n := v.sent.Load(); n != 5 {
		t.Errorf("5 sequential reads made %d calls, want 5", n)
	}
	waitIdle(t, l)
}

// Readers that arrive while InFlight calls are out share calls: each gets
// its own balance, an id asked twice is asked once, and no call carries
// more than 100 ids.
func TestWaitingReadsShareCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		readers, ids int // waiting readers, distinct ids among them
		wantSizes    []int
	}{
		{"one", 1, 1, []int{1}},
		{"fifty", 50, 50, []int{50}},
		{"duplicates", 30, 3, []int{3}},
		{"hundred", 100, 100, []int{100}},
		{"over a hundred", 250, 250, []int{50, 100, 100}},
		{"over a hundred, duplicated", 500, 250, []int{50, 100, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVersioned(ledger.InFlight)
			l := ledger.New(v)
			held, first := occupy(t, l, v)
			answers := make([]<-chan answer, tt.readers)
			for i := range answers {
				answers[i] = read(context.Background(), l, fmt.Sprint(i%tt.ids))
			}
			waitFor(t, "all wait", func() bool { return ledger.Waiting(l) == tt.readers })
			for _, c := range held {
				close(c.release)
			}
			for i, ch := range answers {
				if b := got(t, fmt.Sprint(i%tt.ids), ch); b.Held <= ledger.InFlight {
					t.Errorf("reader %d got version %d, from a call sent before it arrived", i, b.Held)
				}
			}
			for i, ch := range first {
				got(t, fmt.Sprint(1000+i), ch)
			}
			var sizes []int
			for range v.sent.Load() - ledger.InFlight {
				c := v.next(t)
				if len(c.ids) != len(slices.Compact(slices.Sorted(slices.Values(c.ids)))) {
					t.Errorf("shared call ids %v repeat an id", c.ids)
				}
				sizes = append(sizes, len(c.ids))
			}
			slices.Sort(sizes)
			if !slices.Equal(sizes, tt.wantSizes) {
				t.Errorf("%d waiting readers of %d ids made calls of %v ids, want %v", tt.readers, tt.ids, sizes, tt.wantSizes)
			}
			waitIdle(t, l)
		})
	}
}

// A page of several accounts never waits behind one-account look-ups.
func TestPagesGoDirect(t *testing.T) {
	t.Parallel()
	v := newVersioned(ledger.InFlight)
	l := ledger.New(v)
	held, first := occupy(t, l, v)
	m, err := l.Balances(context.Background(), []string{"1", "2", "unknown"})
	if err != nil || len(m) != 2 || m["2"].Booked != 200 {
		t.Errorf("Balances(page) = %v, %v; want 1 and 2 at once", m, err)
	}
	if c := v.next(t); !slices.Equal(c.ids, []string{"1", "2", "unknown"}) {
		t.Errorf("page call ids = %v", c.ids)
	}
	for i, c := range held {
		close(c.release)
		got(t, fmt.Sprint(1000+i), first[i])
	}
	waitIdle(t, l)
}

// An unknown account reads as absent, whoever shares its call.
func TestSharedUnknownAccount(t *testing.T) {
	t.Parallel()
	v := newVersioned(ledger.InFlight)
	l := ledger.New(v)
	held, _ := occupy(t, l, v)
	unknown, known := read(context.Background(), l, "unknown"), read(context.Background(), l, "7")
	waitFor(t, "both wait", func() bool { return ledger.Waiting(l) == 2 })
	for _, c := range held {
		close(c.release)
	}
	if a := <-unknown; a.err != nil || len(a.m) != 0 {
		t.Errorf("Balances(unknown) = %v, %v; want empty", a.m, a.err)
	}
	got(t, "7", known)
	waitIdle(t, l)
}

// A request never joins a call sent before it arrived: whatever the
// interleaving, the version it gets is of a call sent after it started.
// All read one account, where joining a call in flight would be tempting.
func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	v := newVersioned(0)
	go func() {
		for range v.calls { // drain
		}
	}()
	t.Cleanup(func() { close(v.calls) })
	l := ledger.New(v)
	var wg sync.WaitGroup
	for r := range 16 {
		wg.Go(func() {
			for range 200 {
				sentBefore := v.sent.Load()
				m, err := l.Balances(context.Background(), []string{"5"})
				if err != nil {
					t.Errorf("Balances() error = %v", err)
					return
				}
				if m["5"].Held <= sentBefore {
					t.Errorf("reader %d started after call %d was sent and got version %d", r, sentBefore, m["5"].Held)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := v.sent.Load(); n >= 16*200 {
		t.Logf("16 readers × 200 made %d calls (no sharing this run)", n)
	}
	waitIdle(t, l)
}

// A reader whose context ends stops waiting with its context's error,
// mapped as for a call of its own; whether it still waited for a call or
// was already in one, the others' call goes on and answers them.
func TestCancelledReaderLeavesAlone(t *testing.T) {
	t.Parallel()
	v := newVersioned(ledger.InFlight + 1)
	l := ledger.New(v)
	held, first := occupy(t, l, v)
	queued, cancelQueued := context.WithCancel(context.Background())
	inCall, cancelInCall := context.WithTimeout(context.Background(), time.Hour)
	later, cancelLater := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancelLater()
	leaves := read(queued, l, "1")
	sharer, stayer := read(inCall, l, "2"), read(later, l, "3")
	waitFor(t, "three wait", func() bool { return ledger.Waiting(l) == 3 })

	cancelQueued()
	wantCancelled(t, <-leaves)
	close(held[0].release) // the shared call of the two still waiting goes
	shared := v.next(t)
	if !slices.Equal(slices.Sorted(slices.Values(shared.ids)), []string{"2", "3"}) {
		t.Fatalf("shared call ids = %v, want [2 3] (the cancelled reader out)", shared.ids)
	}
	if d, _ := later.Deadline(); !hasDeadline(shared.ctx, d) {
		t.Errorf("shared call deadline is not the latest reader's %v", d)
	}

	cancelInCall()
	wantCancelled(t, <-sharer)
	if err := shared.ctx.Err(); err != nil {
		t.Errorf("a reader's cancellation ended the shared call: %v", err)
	}
	close(shared.release)
	got(t, "3", stayer)
	close(held[1].release)
	for i, ch := range first {
		got(t, fmt.Sprint(1000+i), ch)
	}
	waitIdle(t, l)
}

func hasDeadline(ctx context.Context, want time.Time) bool {
	d, ok := ctx.Deadline()
	return ok && d.Equal(want)
}

func wantCancelled(t *testing.T, a answer) {
	t.Helper()
	if a.err == nil || errs.KindOf(a.err) != errs.Unavailable || errs.SafeMessage(a.err) != "ledger unavailable, try again" {
		t.Errorf("cancelled Balances() = %v, %v; want the ledger-unavailable error", a.m, a.err)
	}
}

// A reader without a deadline leaves the shared call to the connection's
// default timeout, as its own call would be.
func TestSharedCallWithoutDeadline(t *testing.T) {
	t.Parallel()
	v := newVersioned(ledger.InFlight)
	l := ledger.New(v)
	held, _ := occupy(t, l, v)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	a, b := read(ctx, l, "1"), read(context.Background(), l, "2")
	waitFor(t, "both wait", func() bool { return ledger.Waiting(l) == 2 })
	for _, c := range held {
		close(c.release)
	}
	shared := v.next(t)
	if d, ok := shared.ctx.Deadline(); ok {
		t.Errorf("shared call deadline = %v, want none", d)
	}
	got(t, "1", a)
	got(t, "2", b)
	waitIdle(t, l)
}

// The shared call's error reaches every reader, mapped as for a call of
// its own.
func TestSharedErrorsReachEveryReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want errs.Kind
	}{
		{"unavailable", errs.New(errs.Unavailable, "upstream unavailable"), errs.Unavailable},
		{"rate limited", errs.New(errs.RateLimited, "slow down"), errs.Unavailable},
		{"permission", errs.New(errs.Permission, "permission denied"), errs.Internal},
		{"invalid", errs.InvalidField("accountIds", "must be UUIDs"), errs.Internal},
		{"plain", errors.New("socket: secret detail"), errs.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVersioned(ledger.InFlight)
			v.err = tt.err
			l := ledger.New(v)
			held, first := occupy(t, l, v)
			answers := []<-chan answer{read(context.Background(), l, "1"), read(context.Background(), l, "2"), read(context.Background(), l, "2")}
			waitFor(t, "all wait", func() bool { return ledger.Waiting(l) == len(answers) })
			for _, c := range held {
				close(c.release)
			}
			for i, ch := range slices.Concat(answers, first) {
				a := <-ch
				if errs.KindOf(a.err) != tt.want || a.m != nil {
					t.Errorf("reader %d: Balances(ledger says %v) = %v, kind %v; want kind %v", i, tt.err, a.m, errs.KindOf(a.err), tt.want)
				}
				if msg := errs.SafeMessage(a.err); msg != "internal error" && msg != "ledger unavailable, try again" {
					t.Errorf("reader %d: safe message = %q", i, msg)
				}
			}
			if n := v.sent.Load(); n != ledger.InFlight+1 {
				t.Errorf("made %d calls, want %d", n, ledger.InFlight+1)
			}
			waitIdle(t, l)
		})
	}
}
