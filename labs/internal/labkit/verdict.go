package labkit

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Verdict is an exploit's result: whether the attack worked, a one-line
// summary and the evidence behind it.
type Verdict struct {
	Exploited bool
	Summary   string
	Evidence  []string
}

// Exploited returns a verdict saying the attack worked.
func Exploited(summary string, evidence ...string) Verdict {
	return Verdict{Exploited: true, Summary: summary, Evidence: evidence}
}

// Blocked returns a verdict saying the control stopped the attack.
func Blocked(summary string, evidence ...string) Verdict {
	return Verdict{Summary: summary, Evidence: evidence}
}

// Print writes the verdict: one line "EXPLOITED: …" or "BLOCKED: …", which
// the runner and CI read, then the evidence, indented.
func (v Verdict) Print(w io.Writer) {
	word := "BLOCKED"
	if v.Exploited {
		word = "EXPLOITED"
	}
	fmt.Fprintf(w, "%s: %s\n", word, v.Summary)
	for _, e := range v.Evidence {
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(e, "\n", "\n  "))
	}
}

// Attack is an exploit's body: it runs against the stack st describes and
// returns its verdict, or an error when it could not run at all (the stack
// is down, a setup step failed), which is neither verdict.
type Attack func(ctx context.Context, st State, log io.Writer) (Verdict, error)

// Main is the main of every exploit: it reads -state (default: the file the
// runner writes for LAB, or the LAB_STATE variable), runs attack with a
// deadline and prints the verdict. Exit status 0 means a verdict was
// printed, 2 that the exploit could not run.
func Main(attack Attack) {
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	statePath := fs.String("state", os.Getenv("LAB_STATE"), "the running lab's state file (.labs/run/NN/state.json)")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	_ = fs.Parse(os.Args[1:])
	if *statePath == "" {
		fmt.Fprintln(os.Stderr, "exploit: -state is required (make lab-exploit LAB=NN passes it)")
		os.Exit(2)
	}
	st, err := ReadState(*statePath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "exploit:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	v, err := attack(ctx, st, os.Stderr)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "exploit: could not run:", err)
		os.Exit(2)
	}
	v.Print(os.Stdout)
}
