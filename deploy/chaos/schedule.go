package chaos

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"
)

// Action is what a fault does to its target.
type Action string

// The actions. Kill and Term end a process (a service, the gateway, or the
// gateway's Redis) and start it again once Down has passed; StopFast and
// StopImmediate stop PostgreSQL in that pg_ctl mode (immediate is a crash,
// recovered from the WAL) and start it again once Down has passed.
const (
	Kill          Action = "kill -9"
	Term          Action = "SIGTERM"
	StopFast      Action = "stop -m fast"
	StopImmediate Action = "stop -m immediate"
)

// The targets that are not processes of the stack.
const (
	Postgres = "postgres"
	Redis    = "redis"
)

// processes are the stack's programs a fault may end (devstack.Processes).
var processes = []string{"auth", "transactions", "accounts", "gateway"}

// Fault is one experiment: what it breaks, and for how long.
type Fault struct {
	Action Action
	Target string        // a process of the stack, Postgres or Redis
	Down   time.Duration // how long it stays broken; 0 brings it back at once
}

// Name is how the schedule and the table show the fault.
func (f Fault) Name() string {
	switch {
	case f.Target == Postgres && f.Down == 0:
		return fmt.Sprintf("postgres %s restart", map[Action]string{StopFast: "fast", StopImmediate: "immediate"}[f.Action])
	case f.Target == Postgres:
		return fmt.Sprintf("postgres stopped (%s) %s", f.Action, f.Down)
	case f.Action == Term && f.Down == 0:
		return fmt.Sprintf("SIGTERM %s under load", f.Target)
	}
	return fmt.Sprintf("%s %s, down %s", f.Action, f.Target, f.Down)
}

func (f Fault) validate() error {
	switch {
	case f.Down < 0:
		return fmt.Errorf("%s: negative outage", f.Name())
	case f.Target == Postgres && (f.Action == StopFast || f.Action == StopImmediate):
		return nil
	case (f.Target == Redis || slices.Contains(processes, f.Target)) && (f.Action == Kill || f.Action == Term):
		return nil
	}
	return fmt.Errorf("no fault %q for target %q", f.Action, f.Target)
}

// Schedule is a whole campaign's plan.
type Schedule struct {
	Name     string
	Baseline time.Duration // traffic before the first fault
	Settle   time.Duration // traffic after each recovery, before the next fault
	Faults   []Fault
	Users    int     // users of the stream, one account each
	Rate     float64 // arrivals per second
}

// Full is the campaign `make chaos` runs: every service killed in turn,
// briefly and (transactions, auth) for long, one outage longer than 45 s,
// SIGTERM under load, PostgreSQL restarted in both modes and stopped for
// 10 s, and the gateway's Redis gone for 10 s.
func Full() Schedule {
	return Schedule{Name: "full", Baseline: 10 * time.Second, Settle: 5 * time.Second, Users: 20, Rate: 40,
		Faults: []Fault{
			{Kill, "auth", 3 * time.Second},
			{Kill, "accounts", 3 * time.Second},
			{Kill, "transactions", 3 * time.Second},
			{Kill, "gateway", 3 * time.Second},
			{Kill, "transactions", 50 * time.Second},
			{Kill, "auth", 20 * time.Second},
			{Term, "transactions", 0},
			{Term, "accounts", 0},
			{Term, "gateway", 0},
			{StopFast, Postgres, 0},
			{StopImmediate, Postgres, 0},
			{StopFast, Postgres, 10 * time.Second},
			{Kill, Redis, 10 * time.Second},
		}}
}

// Short is the campaign CI runs on every change: each kind of fault once,
// with short outages, in about a minute and a half of traffic.
func Short() Schedule {
	return Schedule{Name: "short", Baseline: 3 * time.Second, Settle: 2 * time.Second, Users: 8, Rate: 25,
		Faults: []Fault{
			{Kill, "auth", time.Second},
			{Kill, "accounts", time.Second},
			{Kill, "transactions", 2 * time.Second},
			{Kill, "gateway", time.Second},
			{Term, "transactions", 0},
			{StopFast, Postgres, 0},
			{StopImmediate, Postgres, 0},
			{StopFast, Postgres, 5 * time.Second},
			{Kill, Redis, 5 * time.Second},
		}}
}

// Lookup returns the schedule called name.
func Lookup(name string) (Schedule, error) {
	for _, s := range []Schedule{Full(), Short()} {
		if s.Name == name {
			return s, nil
		}
	}
	return Schedule{}, fmt.Errorf("no schedule %q (want full or short)", name)
}

// Only keeps the faults whose name matches re.
func (s Schedule) Only(re *regexp.Regexp) Schedule {
	s.Faults = slices.DeleteFunc(slices.Clone(s.Faults), func(f Fault) bool { return !re.MatchString(f.Name()) })
	return s
}

// Validate refuses a schedule with no fault or a fault the lab cannot make.
func (s Schedule) Validate() error {
	if len(s.Faults) == 0 {
		return errors.New("the schedule has no fault")
	}
	var problems []error
	for _, f := range s.Faults {
		if err := f.validate(); err != nil {
			problems = append(problems, err)
		}
	}
	if s.Users < 2 || s.Rate <= 0 {
		problems = append(problems, errors.New("a schedule needs at least 2 users and a positive rate"))
	}
	return errors.Join(problems...)
}

// Planned is how long the schedule's traffic lasts if every recovery is
// instant: the baseline, each outage and each settling time.
func (s Schedule) Planned() time.Duration {
	d := s.Baseline
	for _, f := range s.Faults {
		d += f.Down + s.Settle
	}
	return d
}

// Print writes the plan: each fault at its planned offset (later in
// practice by the time each takes to stop and recover).
func (s Schedule) Print(w io.Writer) {
	fmt.Fprintf(w, "schedule %s: %d users, %.0f arrivals/s, %s baseline, %s settling after each recovery\n",
		s.Name, s.Users, s.Rate, s.Baseline, s.Settle)
	at := s.Baseline
	for i, f := range s.Faults {
		fmt.Fprintf(w, "  %2d  ~%-7s %s\n", i+1, "+"+at.Round(time.Second).String(), f.Name())
		at += f.Down + s.Settle
	}
	fmt.Fprintf(w, "  about %s of faults and traffic, then a drain and the money audit\n", at.Round(time.Second))
}
