package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
	"github.com/bastion-bank/bastion/loadtest/internal/target"
)

// run is the whole program: settings, client, set-up, load, report.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parseSettings(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	client, err := newHTTPClient(s)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	runID, err := newRunID()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bankload %s against %s, run %s: setting up …\n", s.Scenario.Name, s.Target, runID)
	setupCtx, cancel := context.WithTimeout(ctx, s.SetupTimeout)
	gen, err := s.Scenario.Setup(setupCtx, scenario.Env{
		Client: &bank.Client{HTTP: client, Base: s.Target, Retries: 5, MaxWait: 30 * time.Second},
		RunID:  runID, Users: s.Users, AdminEmail: s.AdminEmail, AdminPassword: s.AdminPassword, AdminOTP: s.AdminOTP, Log: stderr,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("set-up: %w%s", err, throttleHint(err))
	}
	fmt.Fprintf(stderr, "sending %d requests at %.1f/s for %s …\n", s.Load.Requests(), s.Load.Rate, s.Load.Duration)
	rec := report.NewRecorder()
	elapsed, runErr := load.Run(ctx, client, s.Target, gen, s.Load, rec)
	sum := rec.Summarize(elapsed)
	if err := write(stdout, s, sum); err != nil {
		return err
	}
	if sum.Total > 0 && sum.Throttled*10 > sum.Total {
		fmt.Fprintf(stderr, "note: over 10%% of requests were refused with 429%s\n", throttledNote(sum.ThrottledBy))
	}
	if runErr != nil {
		return fmt.Errorf("run cut short: %w", runErr)
	}
	if s.Scenario.Attack && sum.Unexpected > 0 {
		return fmt.Errorf("%d attack requests were not refused as docs/api.md promises: see the unexpected column", sum.Unexpected)
	}
	return nil
}

func write(w io.Writer, s settings, sum report.Summary) error {
	if !s.JSON {
		return report.WriteText(w, s.Scenario.Name, sum)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Scenario string  `json:"scenario"`
		Rate     float64 `json:"rate"`
		report.Summary
	}{s.Scenario.Name, s.Load.Rate, sum})
}

// newHTTPClient trusts only the given CA, uses no proxy from the
// environment (a proxy would carry the traffic off this host), follows no
// redirect (it could point anywhere) and checks at every dial that the
// connection is to loopback unless the target was claimed as owned.
func newHTTPClient(s settings) (*http.Client, error) {
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file (start the stack with `make run` first, or pass -ca): %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", s.CAFile)
	}
	inFlight := s.Load.MaxInFlight
	if inFlight == 0 {
		inFlight = load.DefaultInFlight
	}
	// Each simulated user gets connections of their own, as a real
	// client has (target.PerCaller says what one shared connection would
	// cost the gateway instead).
	tr := target.NewPerCaller(pool, s.AllowRemote, inFlight)
	return &http.Client{
		Transport:     tr,
		Timeout:       s.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

func newRunID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func throttleHint(err error) string {
	var se *bank.StatusError
	if errors.As(err, &se) && se.Status == http.StatusTooManyRequests {
		return " (still rate limited after retries: raise BANK_RATE_LIMIT_AUTH / BANK_RATE_LIMIT_TRANSFERS for `make run`, or use fewer -users)"
	}
	return ""
}

// throttledNote says which knob, if any, would remove the 429s of a run,
// from the problem named by the largest share of them: the gateway's own
// limits, auth's failed-login throttle, and auth's password-hash pool need
// different answers, and raising a limit does nothing for the last.
func throttledNote(by map[string]int) string {
	top, most := "", 0
	for name, n := range by {
		if n > most || (n == most && name < top) {
			top, most = name, n
		}
	}
	switch top {
	case "auth", "user", "transfers", "public":
		return fmt.Sprintf(", mostly by the gateway's %q limit; raise BANK_RATE_LIMIT_* for `make run` to measure the services rather than the limiter (loadtest/README.md)", top)
	case "login-throttled":
		return ", mostly by auth's failed-login throttle; raise BANK_LOGIN_MAX_FAILURES or shorten BANK_LOGIN_WINDOW for `make run` (loadtest/README.md)"
	case "hash-pool-busy":
		return ", mostly shed by auth's password-hash pool: the CPU is the limit, no setting raises it; lower -rate, and compare bank_login_failures_total{reason=\"busy\"} (loadtest/README.md, \"Login storm\")"
	default:
		return "; see the problem types in the responses and loadtest/README.md"
	}
}
