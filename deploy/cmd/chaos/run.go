package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/deploy/chaos"
	"github.com/bastion-bank/bastion/deploy/devstack"
)

// run is the whole campaign: settings, the lab, set-up, the stream under
// the schedule, the audit, the report.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parseSettings(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	runID := strings.ToLower(rand.Text()[:8])
	began := time.Now()
	fmt.Fprintf(stdout, "Bastion fault campaign, run %s\n", runID)
	s.Schedule.Print(stdout)
	l, err := startLab(ctx, root, baseEnv(getenv), stdout)
	if err != nil {
		return fmt.Errorf("start the campaign's stack: %w", err)
	}
	passed := false
	defer func() { l.close(s.Keep || !passed) }()
	fmt.Fprintf(stdout, "Stack up in %s: gateway https://%s, PostgreSQL %s (throw-away), Redis %s; logs in %s\n",
		time.Since(began).Round(time.Second), l.cfg.Addrs.Gateway, strings.TrimPrefix(l.cfg.DatabaseURL, "postgres://postgres@"), l.redis.addr, l.stack.LogDir)

	findings, err := campaign(ctx, s, l, runID, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nCampaign took %s.\n", time.Since(began).Round(time.Second))
	if len(findings) > 0 {
		fmt.Fprintf(stdout, "\nFAILED: %d findings\n", len(findings))
		var kinds []string
		for _, line := range chaos.Summarize(findings, 5) {
			fmt.Fprintln(stdout, "  "+line)
			if !strings.HasPrefix(line, " ") {
				kinds = append(kinds, line)
			}
		}
		return fmt.Errorf("the campaign failed: %s (logs kept in %s)", strings.Join(kinds, "; "), l.dir)
	}
	fmt.Fprintln(stdout, "\nPASSED: no money lost or duplicated, no 5xx other than 503, audit chains intact, every recovery within", s.Budget)
	passed = true
	return nil
}

// Kinds of findings about the campaign's own run.
const (
	exitedAlone = "process exited on its own"
	refusedCall = "well-formed call refused"
	unanswered  = "calls never answered"
)

// campaign plays the schedule under the stream, then judges what it left
// behind; it returns every finding. An error is the campaign itself
// failing to run.
func campaign(ctx context.Context, s settings, l *lab, runID string, out io.Writer) ([]chaos.Finding, error) {
	p, err := play(ctx, s, l, runID, out)
	if err != nil {
		return nil, err
	}
	return judge(ctx, s, l, p, out)
}

// played is what the campaign's traffic left behind, for the audit.
type played struct {
	bank  *chaos.Bank
	users []chaos.User
	keys  *chaos.Keys
	rec   *chaos.Recorder
	stats chaos.StreamStats
}

// play sets up the users, then runs the stream while the schedule plays,
// and lets the stream drain.
func play(ctx context.Context, s settings, l *lab, runID string, out io.Writer) (played, error) {
	client, err := devstack.HTTPClient(l.prepared.CAFile)
	if err != nil {
		return played{}, err
	}
	p := played{bank: &chaos.Bank{HTTP: client, Base: "https://" + l.cfg.Addrs.Gateway}, keys: chaos.NewKeys(), rec: &chaos.Recorder{}}
	if p.users, err = chaos.Setup(ctx, p.bank, p.keys, runID, s.Schedule.Users, l.admin[0], l.admin[1]); err != nil {
		return played{}, fmt.Errorf("set-up: %w", err)
	}
	fmt.Fprintf(out, "Set-up: %d users, each account funded with %d cents.\n\n", len(p.users), chaos.Seed)

	// The stream stops when the schedule ends; its bound allows every
	// recovery ten minutes of slack.
	bound := int(s.Schedule.Rate * (s.Schedule.Planned() + 10*time.Minute).Seconds())
	stream := &chaos.Stream{Bank: p.bank, Users: p.users, RunID: runID, Rate: s.Schedule.Rate, MaxInFlight: s.MaxInFlight,
		MaxArrivals: bound, Rec: p.rec, Keys: p.keys}
	stop := make(chan struct{})
	stats := make(chan chaos.StreamStats, 1)
	go func() { stats <- stream.Run(ctx, stop, s.Drain) }()
	c := &chaos.Campaign{Schedule: s.Schedule, Lab: l, Rec: p.rec, Verify: l.verifyChains, Log: out,
		Probes: &chaos.Probes{Bank: p.bank, Rec: p.rec, Keys: p.keys, RunID: runID, From: p.users[0], To: p.users[1]}}
	runErr := c.Run(ctx)
	p.rec.Begin("drain", nil)
	close(stop)
	p.stats = <-stats
	if runErr != nil {
		return played{}, fmt.Errorf("the campaign stopped early: %w", runErr)
	}
	return p, nil
}

// judge verifies the audit chains once more, audits the books, prints the
// table and returns every finding.
func judge(ctx context.Context, s settings, l *lab, p played, out io.Writer) ([]chaos.Finding, error) {
	var findings []chaos.Finding
	for _, e := range l.exits.Unexpected() {
		findings = append(findings, chaos.Finding{Kind: exitedAlone,
			Detail: fmt.Sprintf("%s (%v); see %s", e.Name, e.Err, filepath.Join(l.stack.LogDir, e.Name+".log"))})
	}
	fmt.Fprintln(out, "\nMoney audit …")
	verdict, ok := l.verifyChains(ctx)
	fmt.Fprintln(out, "  audit verifier:", verdict)
	if !ok {
		findings = append(findings, chaos.Finding{Kind: chaos.ChainBroken, Detail: "at the end: " + verdict})
	}
	money, summary, err := audit(ctx, p.bank, l, p.users, p.keys.Intents())
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out, summary)
	findings = append(findings, money...)

	st := p.stats
	fmt.Fprintf(out, "\nStream: %d arrivals at %.0f/s, %d dropped (over %d in flight), %d still unanswered after the %s drain\n",
		st.Arrivals, s.Schedule.Rate, st.Dropped, s.MaxInFlight, st.Unresolved, s.Drain)
	for what, n := range st.Refused {
		findings = append(findings, chaos.Finding{Kind: refusedCall, Detail: fmt.Sprintf("%s × %d", what, n)})
	}
	if st.Unresolved > 0 {
		findings = append(findings, chaos.Finding{Kind: unanswered, Detail: fmt.Sprintf("%d still retried %s after the last fault", st.Unresolved, s.Drain)})
	}
	fmt.Fprintln(out)
	if err := chaos.WriteTable(out, p.rec.Phases(), s.Budget); err != nil {
		return nil, err
	}
	return append(findings, chaos.Failures(p.rec.Phases(), s.Budget)...), nil
}

// audit reads the books through the API and in the database and checks
// both against what the campaign sent.
func audit(ctx context.Context, bank *chaos.Bank, l *lab, users []chaos.User, intents []chaos.Intent) ([]chaos.Finding, string, error) {
	api, err := chaos.ReadAPI(ctx, bank, users)
	if err != nil {
		return nil, "", fmt.Errorf("read the books through the API: %w", err)
	}
	db, err := readDatabase(ctx, l.cfg.DatabaseURL)
	if err != nil {
		return nil, "", err
	}
	accounts := make([]string, len(users))
	for i, u := range users {
		accounts[i] = u.Account
	}
	findings := append(chaos.Audit(accounts, intents, api), chaos.Audit(accounts, intents, db)...)
	var n [3]int
	var resent int
	for _, in := range intents {
		n[in.Outcome]++
		resent += in.Resent
	}
	entries := 0
	for _, h := range db.History {
		entries += len(h)
	}
	summary := fmt.Sprintf("  %d keys: %d succeeded, %d refused, %d unresolved; %d succeeded keys sent again on purpose\n"+
		"  books: %d accounts through the API, %d accounts and %d entries in the database: %d findings",
		len(intents), n[chaos.Succeeded], n[chaos.Refused], n[chaos.Unresolved], resent,
		len(api.Accounts), len(db.Accounts), entries, len(findings))
	return findings, summary, nil
}

// baseEnv is what every process inherits besides its BANK_* settings.
func baseEnv(getenv func(string) string) []string {
	var out []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ"} {
		if v := getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// repoRoot finds the repository from the working directory, as the dev
// runner does: the programs are built from it.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run me from inside the Bastion repository (no go.work found)")
		}
		dir = parent
	}
}
