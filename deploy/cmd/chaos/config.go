package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/bastion-bank/bastion/deploy/chaos"
)

// settings is the whole configuration of a campaign, read once from the flags.
type settings struct {
	Schedule    chaos.Schedule
	Budget      time.Duration // the longest recovery allowed after what a fault broke listens again
	MaxInFlight int           // calls of the stream outstanding at once
	Drain       time.Duration // how long calls still being retried may finish after the last fault
	Keep        bool          // keep the stack's directory (logs, database) even when the campaign passes
}

// Bounds that keep a mistyped flag from turning the campaign into a load
// test of the machine it runs on.
const (
	maxUsers = 200
	maxRate  = 500.0
)

func parseSettings(args []string, stderr io.Writer) (settings, error) {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		s      settings
		name   = fs.String("schedule", "full", "full (make chaos) or short (CI)")
		only   = fs.String("faults", "", "run only the faults whose name matches this regular expression")
		users  = fs.Int("users", 0, "users of the stream, one account each (default: the schedule's)")
		rate   = fs.Float64("rate", 0, "arrivals per second (default: the schedule's)")
		inFlgt = fs.Int("max-in-flight", 100, "calls outstanding at once; arrivals beyond are dropped and counted")
	)
	fs.DurationVar(&s.Budget, "budget", 5*time.Second, "the longest recovery allowed after what a fault broke listens again")
	fs.DurationVar(&s.Drain, "drain", 30*time.Second, "how long calls still being retried may finish after the last fault")
	fs.BoolVar(&s.Keep, "keep", false, "keep the stack's directory (logs, database cluster) even when the campaign passes")
	if err := fs.Parse(args[1:]); err != nil {
		return settings{}, err
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var problems []error
	sched, err := chaos.Lookup(*name)
	if err != nil {
		problems = append(problems, err)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			problems = append(problems, fmt.Errorf("-faults: %w", err))
		} else {
			sched = sched.Only(re)
		}
	}
	if *users != 0 {
		sched.Users = *users
	}
	if *rate != 0 {
		sched.Rate = *rate
	}
	s.Schedule, s.MaxInFlight = sched, *inFlgt
	if err == nil {
		if err := sched.Validate(); err != nil {
			problems = append(problems, err)
		}
	}
	if sched.Users > maxUsers || sched.Rate > maxRate {
		problems = append(problems, fmt.Errorf("at most %d users and %.0f arrivals/s", maxUsers, maxRate))
	}
	if s.MaxInFlight < 1 || s.MaxInFlight > 1000 {
		problems = append(problems, errors.New("-max-in-flight must be in [1, 1000]"))
	}
	if s.Budget <= 0 || s.Drain <= 0 {
		problems = append(problems, errors.New("-budget and -drain must be positive"))
	}
	return s, errors.Join(problems...)
}
