package domain_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

func TestRevocationsSnapshotThenUpdates(t *testing.T) {
	t.Parallel()
	clk := grpctest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	r := domain.NewRevocations(clk.Now)
	a := domain.Revocation{TokenID: "a", ExpiresAt: clk.Now().Add(time.Minute)}
	b := domain.Revocation{TokenID: "b", ExpiresAt: clk.Now().Add(2 * time.Minute)}
	expired := domain.Revocation{TokenID: "old", ExpiresAt: clk.Now().Add(-time.Second)}
	r.Add([]domain.Revocation{a, expired})

	snap, sub := r.Subscribe()
	defer sub.Close()
	if diff := cmp.Diff([]domain.Revocation{a}, snap); diff != "" {
		t.Errorf("snapshot mismatch, expired ones must be left out (-want +got):\n%s", diff)
	}
	var hooked [][]domain.Revocation
	r.OnAdd(func(revs []domain.Revocation) { hooked = append(hooked, revs) })

	r.Add([]domain.Revocation{a, b}) // a is known: only b is news
	select {
	case got := <-sub.Updates():
		if diff := cmp.Diff([]domain.Revocation{b}, got); diff != "" {
			t.Errorf("update mismatch (-want +got):\n%s", diff)
		}
	case <-time.After(time.Second):
		t.Fatal("no update")
	}
	if diff := cmp.Diff([][]domain.Revocation{{a}, {b}}, hooked); diff != "" {
		t.Errorf("OnAdd calls mismatch: want the current set, then each batch (-want +got):\n%s", diff)
	}
	if !r.Contains("b") || r.Contains("old") || r.Contains("nope") {
		t.Error("Contains is wrong")
	}
	clk.Advance(90 * time.Second)
	if r.Contains("a") {
		t.Error("Contains(a) after its expiry = true, want false")
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	t.Parallel()
	r := domain.NewRevocations(time.Now)
	_, slow := r.Subscribe()
	_, fast := r.Subscribe()
	defer fast.Close()
	for i := range 300 {
		r.Add([]domain.Revocation{{TokenID: fmt.Sprint("id-", i), ExpiresAt: time.Now().Add(time.Hour)}})
		select {
		case <-fast.Updates():
		default:
		}
	}
	n := 0
	for range slow.Updates() {
		n++
	}
	if n == 0 || n >= 300 {
		t.Errorf("slow subscriber got %d batches before being dropped, want its buffer's worth then a closed channel", n)
	}
	slow.Close() // closing a dropped subscription is harmless
}

// failingRepo fails ActiveRevocations and PurgeExpired, each with an error
// of its own.
type failingRepo struct{ domain.Store }

var (
	errSyncDown  = errors.New("resync: database down")
	errPurgeDown = errors.New("purge: database down")
)

func (failingRepo) ActiveRevocations(context.Context, time.Time) ([]domain.Revocation, error) {
	return nil, errSyncDown
}

func TestSyncReportsErrors(t *testing.T) {
	t.Parallel()
	r := domain.NewRevocations(time.Now)
	if err := r.Sync(context.Background(), failingRepo{}); err == nil {
		t.Error("Sync(failing repo) = nil, want the error")
	}
}

func TestSyncLoadsFromTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	if err := f.svc.Logout(ctx, identity.User{ID: u.ID, TokenID: tok.Access.ID, ExpiresAt: tok.Access.ExpiresAt}, tok.Refresh, f.ip); err != nil {
		t.Fatal(err)
	}
	// A second replica, which heard no notification, catches up by Sync.
	other := domain.NewRevocations(f.clock.Now)
	if err := other.Sync(ctx, f.repo); err != nil {
		t.Fatal(err)
	}
	if !other.Contains(tok.Access.ID) {
		t.Error("Sync() did not load a revocation stored by another replica")
	}
}

func (failingRepo) PurgeExpired(context.Context, time.Time, time.Duration) error {
	return errPurgeDown
}

func TestMaintenanceKeepsGoingThroughErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, domain.Config{})
	svc, err := domain.New(domain.Config{}, domain.Deps{Store: failingRepo{}, Hasher: mustHasher(t), Policy: mustPolicy(t), Issuer: issuer{f.clock}, Sealer: sealer(),
		Revocations: domain.NewRevocations(nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan error, 100)
	done := make(chan struct{})
	go func() { svc.RunMaintenance(ctx, 5*time.Millisecond, func(err error) { reports <- err }); close(done) }()
	// Two ticks at least, each reporting the resync's and the purge's
	// failure. The deadline only turns a report that never comes into a
	// failure rather than a hang.
	seen := map[error]int{}
	deadline := time.After(30 * time.Second)
	for seen[errSyncDown] < 2 || seen[errPurgeDown] < 2 {
		select {
		case err := <-reports:
			seen[err]++
		case <-deadline:
			t.Fatalf("RunMaintenance reported the resync's failure %d times and the purge's %d times, want each at least twice",
				seen[errSyncDown], seen[errPurgeDown])
		}
	}
	cancel()
	<-done
}

// TestMaintenanceReportsOnlyErrors: while the database is well, the resync
// and the purge report nothing; report is for errors, which are logged. A
// second replica on the same database revokes a token twice over; once the
// second has reached this replica by the resync, a whole tick has run, its
// purge included.
func TestMaintenanceReportsOnlyErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIsolatedFixture(t)
	other := newFixtureOn(t, f.url, domain.Config{}, cheapParams, password.PoolConfig{Queue: 1000})
	synced := make(chan string, 100)
	f.revs.OnAdd(func(revs []domain.Revocation) {
		for _, r := range revs {
			select {
			case synced <- r.TokenID:
			default:
			}
		}
	})
	runCtx, cancel := context.WithCancel(ctx)
	var (
		mu      sync.Mutex
		reports []error // never blocks the loop, however many
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.svc.RunMaintenance(runCtx, time.Millisecond, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, err)
		})
	}()
	for round := range 2 {
		u, pw := other.register(t)
		tok := other.login(t, u.Email, pw)
		if err := other.svc.Logout(ctx, caller(u, tok), tok.Refresh, other.ip); err != nil {
			t.Fatal(err)
		}
		// A generous deadline, only so that a resync that never comes fails
		// the test rather than hanging it.
		deadline := time.After(30 * time.Second)
		for seen := false; !seen; {
			select {
			case id := <-synced:
				seen = id == tok.Access.ID
			case <-deadline:
				t.Fatalf("round %d: the revocation stored by another replica never reached this one by the resync", round)
			}
		}
	}
	cancel()
	<-done
	if len(reports) != 0 {
		t.Errorf("RunMaintenance reported %d times with the database well (first: %v), want nothing reported", len(reports), reports[0])
	}
}
