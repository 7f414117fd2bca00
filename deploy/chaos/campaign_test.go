package chaos

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"
)

// fakeLab breaks the fake bank's reads from Break until a while after
// Restore, as a service that listens before it serves.
type fakeLab struct {
	bank    *fakeBank
	serveIn time.Duration // from listening to serving
	calls   []string
}

func (l *fakeLab) Break(_ context.Context, f Fault) error {
	l.calls = append(l.calls, "break "+f.Name())
	l.bank.upAt.Store(time.Now().Add(time.Hour).UnixNano())
	return nil
}

func (l *fakeLab) Restore(_ context.Context, f Fault) (time.Time, error) {
	l.calls = append(l.calls, "restore "+f.Name())
	now := time.Now()
	l.bank.upAt.Store(now.Add(l.serveIn).UnixNano())
	return now, nil
}

// TestCampaignPlaysTheSchedule: each fault is broken, held for its
// outage, restored, timed from when it listened again, and verified, each
// in a phase of its own after the baseline.
func TestCampaignPlaysTheSchedule(t *testing.T) {
	t.Parallel()
	fb, bank := startFake(t, 0)
	lab := &fakeLab{bank: fb, serveIn: 300 * time.Millisecond}
	rec, keys := &Recorder{}, NewKeys()
	verified := 0
	c := &Campaign{
		Schedule: Schedule{Baseline: 50 * time.Millisecond, Settle: 50 * time.Millisecond, Users: 2, Rate: 1,
			Faults: []Fault{{Kill, "auth", 200 * time.Millisecond}, {StopFast, Postgres, 0}}},
		Lab: lab, Rec: rec, Log: io.Discard,
		Probes: &Probes{Bank: bank, Rec: rec, Keys: keys, RunID: "test", From: User{Account: "a0"}, To: User{Account: "a1"}},
		Verify: func(context.Context) (string, bool) { verified++; return fmt.Sprint("ok ", verified), true },
	}
	if err := c.Run(t.Context()); err != nil {
		t.Fatalf("Run = %v", err)
	}
	want := []string{"break kill -9 auth, down 200ms", "restore kill -9 auth, down 200ms", "break postgres fast restart", "restore postgres fast restart"}
	if fmt.Sprint(lab.calls) != fmt.Sprint(want) {
		t.Errorf("lab calls = %v, want %v", lab.calls, want)
	}
	phases := rec.Phases()
	if len(phases) != 3 || phases[0].Name != "baseline" || phases[1].Fault == nil || phases[2].Chain != "ok 2" {
		t.Fatalf("phases = %+v, want the baseline and one verified phase per fault", phases)
	}
	for _, p := range phases[1:] {
		if !p.Recovered || p.Recovery < lab.serveIn || p.Recovery > lab.serveIn+10*time.Second {
			t.Errorf("%s: recovery %v (recovered %v), want timed from listening, about %v", p.Name, p.Recovery, p.Recovered, lab.serveIn)
		}
		if down := p.Listening.Sub(p.Start); down < p.Fault.Down {
			t.Errorf("%s: listening %v after its start, want at least its outage %v", p.Name, down, p.Fault.Down)
		}
	}
}
