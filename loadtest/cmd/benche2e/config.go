package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
)

// settings is the whole configuration of a measurement, read once from the flags.
type settings struct {
	Rounds      int
	Duration    time.Duration // each measured phase
	Rate        float64       // transfers offered per second
	ReadRate    float64       // balance reads offered per second
	HistoryRate float64       // history reads offered per second
	Half        bool          // the half-saturation phases after each stack's saturation phases
	Users       int
	MaxInFlight int
	Clients     int // pgbench -c (and the client count the issue compares at)
	Scale       int // pgbench -s
	Bin         string
	BaselineBin string
	BaselineRev string
	Overload    bool
	ProfileDir  string
	Keep        bool
	Set         map[string]string // -set KEY=VALUE: extra settings for every stack
}

// setFlag collects -set KEY=VALUE, for BANK_* settings and the Go runtime's
// GOGC, GOMEMLIMIT and GODEBUG only (GODEBUG=gctrace=1 puts each GC cycle
// in the processes' logs, to set against latency): a knob to measure, never
// a way to hand the processes anything else.
type setFlag map[string]string

func (f setFlag) String() string { return fmt.Sprint(map[string]string(f)) }

func (f setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || !(strings.HasPrefix(k, "BANK_") || k == "GOGC" || k == "GOMEMLIMIT" || k == "GODEBUG") {
		return errors.New("want KEY=VALUE with KEY a BANK_* variable, GOGC, GOMEMLIMIT or GODEBUG")
	}
	f[k] = val
	return nil
}

func parseSettings(args []string, stderr io.Writer) (settings, error) {
	fs := flag.NewFlagSet("benche2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	fs.IntVar(&s.Rounds, "rounds", 3, "interleaved rounds (pgbench, then each stack's transfers, reads and history reads, and with -half the same at half saturation)")
	fs.DurationVar(&s.Duration, "duration", 15*time.Second, "length of each measured phase")
	fs.Float64Var(&s.Rate, "rate", offeredRate, "transfers offered per second (open model; past saturation the excess is dropped and counted)")
	fs.Float64Var(&s.ReadRate, "read-rate", offeredRate, "balance reads offered per second")
	fs.Float64Var(&s.HistoryRate, "history-rate", offeredRate, "history reads (first page of an account's transactions) offered per second")
	fs.BoolVar(&s.Half, "half", true, "after each stack's saturation phases, run transfers, balance reads and history reads each at half the rate it reached, then transfers and history reads mixed at half load, and judge issue 15's latency bar (-half=false skips these four phases a round)")
	fs.IntVar(&s.Users, "users", 50, "users, each with two accounts; transfers cycle over them")
	fs.IntVar(&s.MaxInFlight, "max-in-flight", defaultInFlight, "requests outstanding at once in the measured phases; arrivals beyond are dropped and counted (the -overload phase sends up to "+strconv.Itoa(overloadInFlight)+")")
	fs.IntVar(&s.Clients, "clients", 16, "pgbench clients (-c; -j 2)")
	fs.IntVar(&s.Scale, "scale", 10, "pgbench scale factor (-s)")
	fs.StringVar(&s.Bin, "bin", "", "directory holding the stack's binaries (auth, accounts, transactions, gateway); default: build this working tree")
	fs.StringVar(&s.BaselineBin, "baseline-bin", "", "directory of a second set of binaries, measured as \"before\" in the same rounds")
	fs.StringVar(&s.BaselineRev, "baseline-rev", "", "a git revision to build as \"before\" (git archive into the temporary directory; the repository is not touched)")
	fs.BoolVar(&s.Overload, "overload", false, "after the rounds, offer the first stack 3× its measured transfer saturation and report shedding, health and recovery")
	fs.StringVar(&s.ProfileDir, "profile", "", "write CPU profiles of the first stack's gateway, transactions and accounts (BANK_PPROF=1) taken in round 1 to this directory")
	s.Set = map[string]string{}
	fs.Var(setFlag(s.Set), "set", "KEY=VALUE for every stack (BANK_* variables, GOGC, GOMEMLIMIT, GODEBUG; repeatable), e.g. -set BANK_LEDGER_QUEUE_MAX=128")
	fs.BoolVar(&s.Keep, "keep", false, "keep the temporary directory (logs, database cluster)")
	if err := fs.Parse(args[1:]); err != nil {
		return settings{}, err
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return s, s.validate()
}

// offeredRate is the measured phases' default offered rate of each kind:
// above what the stack serves on the 2-core VM (up to 3,750 transfers/s and
// 4,500 balance reads/s), so that the bound on requests in flight, not the
// rate, decides the load; more would only make the generator count more
// dropped arrivals, CPU taken from the stack it measures.
const offeredRate = 5000

// defaultInFlight is the measured phases' bound on requests outstanding:
// the gateway's own admission bound (BANK_GATEWAY_MAX_IN_FLIGHT's default,
// edge.DefaultMaxInFlight). The offered rates are far above what the stack
// serves, so each phase keeps this many requests
// outstanding, as pgbench keeps its clients busy, and measures what the
// stack serves at that concurrency. More than the gateway admits would
// measure its shedding instead: each request past the bound waits up to
// BANK_GATEWAY_ADMISSION_WAIT and is answered 503, CPU the served requests
// are then charged for. The overload phase exists to measure exactly that,
// and sends more (overloadInFlight).
const defaultInFlight = 128

// overloadInFlight is the -overload phase's bound on requests outstanding:
// four times the gateway's admission bound, so the gateway sheds.
const overloadInFlight = 512

// Bounds: the tool starts processes and loads the machine it runs on, so a
// mistyped flag must not turn into an hour of load.
const (
	maxRounds = 10
	maxPhase  = 2 * time.Minute
)

func (s settings) validate() error {
	var problems []error
	if s.Rounds < 1 || s.Rounds > maxRounds {
		problems = append(problems, fmt.Errorf("-rounds must be in [1, %d]", maxRounds))
	}
	if s.Duration < time.Second || s.Duration > maxPhase {
		problems = append(problems, fmt.Errorf("-duration must be in [1s, %s]", maxPhase))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"-rate", s.Rate}, {"-read-rate", s.ReadRate}, {"-history-rate", s.HistoryRate}} {
		if !(r.v > 0 && r.v <= load.MaxRate) {
			problems = append(problems, fmt.Errorf("%s must be in (0, %.0f]", r.name, load.MaxRate))
		}
	}
	if s.Users < 1 || s.Users > scenario.MaxUsers {
		problems = append(problems, fmt.Errorf("-users must be in [1, %d]", scenario.MaxUsers))
	}
	if s.MaxInFlight < 1 || s.MaxInFlight > load.MaxInFlight {
		problems = append(problems, fmt.Errorf("-max-in-flight must be in [1, %d]", load.MaxInFlight))
	}
	if s.Clients < 1 || s.Clients > 64 {
		problems = append(problems, errors.New("-clients must be in [1, 64]"))
	}
	if s.Scale < 1 || s.Scale > 100 {
		problems = append(problems, errors.New("-scale must be in [1, 100]"))
	}
	if s.BaselineBin != "" && s.BaselineRev != "" {
		problems = append(problems, errors.New("-baseline-bin and -baseline-rev: one or the other"))
	}
	return errors.Join(problems...)
}

// stackLabels names the stacks measured: "after" alone, or "after" and
// "before" when a baseline is given.
func (s settings) stackLabels() []string {
	if s.BaselineBin != "" || s.BaselineRev != "" {
		return []string{"after", "before"}
	}
	return []string{"after"}
}
