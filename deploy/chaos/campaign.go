package chaos

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Lab makes and mends the faults of a schedule on a stack of its own.
type Lab interface {
	// Break injects f and returns once it has taken effect: the process
	// has exited, the database has stopped.
	Break(ctx context.Context, f Fault) error
	// Restore undoes f and returns when what it broke listens again.
	Restore(ctx context.Context, f Fault) (listening time.Time, err error)
}

// Campaign plays a schedule against a lab while a stream runs.
type Campaign struct {
	Schedule Schedule
	Lab      Lab
	Probes   *Probes
	Rec      *Recorder
	// Verify checks the audit chains after each fault (the read-only
	// verifier) and returns its verdict in a few words.
	Verify func(ctx context.Context) (string, bool)
	Log    io.Writer
}

// Run plays the schedule: the baseline, then each fault in turn, its
// recovery timed from when what it broke listens again, the traffic left to
// settle, and the audit chains verified. An error is the lab failing to
// make or mend a fault, which ends the campaign early.
func (c *Campaign) Run(ctx context.Context) error {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(c.Log, "%8s  %s\n", time.Since(start).Round(100*time.Millisecond), fmt.Sprintf(format, args...))
	}
	c.Rec.Begin("baseline", nil)
	logf("baseline")
	if err := sleep(ctx, c.Schedule.Baseline); err != nil {
		return err
	}
	for i := range c.Schedule.Faults {
		f := c.Schedule.Faults[i]
		p := c.Rec.Begin(f.Name(), &f)
		logf("%s", f.Name())
		if err := c.Lab.Break(ctx, f); err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
		if err := sleep(ctx, f.Down); err != nil {
			return err
		}
		listening, err := c.Lab.Restore(ctx, f)
		if err != nil {
			return fmt.Errorf("%s: restore: %w", f.Name(), err)
		}
		p.Listening = listening
		p.Recovery, p.Recovered = c.Probes.Recover(ctx, listening)
		if err := sleep(ctx, c.Schedule.Settle); err != nil {
			return err
		}
		p.Chain, p.ChainOK = c.Verify(ctx)
		logf("  %s listening again %s after the fault began; recovered %s later%s; audit chains %s (auth/accounts/ledger rows)",
			f.Target, listening.Sub(p.Start).Round(100*time.Millisecond), p.Recovery.Round(10*time.Millisecond),
			map[bool]string{false: " (NOT within the probe window)"}[p.Recovered], p.Chain)
	}
	return nil
}
