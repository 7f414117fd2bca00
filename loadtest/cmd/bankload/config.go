package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
	"github.com/bastion-bank/bastion/loadtest/internal/target"
)

// settings is the whole configuration of a run, read once from the flags
// and the environment.
type settings struct {
	Target        *url.URL
	CAFile        string
	Scenario      scenario.Scenario
	Load          load.Options
	Users         int
	AdminEmail    string
	AdminPassword string
	AdminOTP      string
	AllowRemote   bool
	JSON          bool
	SetupTimeout  time.Duration
	Timeout       time.Duration // per request
}

// maxSetupTimeout bounds the set-up phase the way load.MaxDuration bounds the run.
const maxSetupTimeout = 10 * time.Minute

// parseSettings reads the flags, taking the admin's credentials from the
// environment when the flags do not give them (a password on a command line
// is visible to every user of the machine through ps).
func parseSettings(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	fs := flag.NewFlagSet("bankload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		s        settings
		rawURL   = fs.String("target", "https://127.0.0.1:8443", "the gateway's base URL (https only)")
		name     = fs.String("scenario", "transfers", "transfers, login or attack")
		rate     = fs.Float64("rate", 50, fmt.Sprintf("arrivals per second, at most %.0f", load.MaxRate))
		duration = fs.Duration("duration", 30*time.Second, fmt.Sprintf("length of the arrival window, at most %s", load.MaxDuration))
	)
	fs.StringVar(&s.CAFile, "ca", ".dev/pki/ca.pem", "PEM file of the CA to trust for the gateway's certificate")
	fs.IntVar(&s.Users, "users", 10, fmt.Sprintf("users to create for the transfers and login scenarios, at most %d", scenario.MaxUsers))
	fs.IntVar(&s.Load.MaxInFlight, "max-in-flight", load.DefaultInFlight, "requests outstanding at once; arrivals beyond it are dropped and counted")
	fs.StringVar(&s.AdminEmail, "admin-email", getenv("BANK_ADMIN_EMAIL"), "a manager or admin, for deposits (default $BANK_ADMIN_EMAIL)")
	fs.StringVar(&s.AdminPassword, "admin-password", "", "its password (default $BANK_ADMIN_PASSWORD; prefer the variable)")
	fs.StringVar(&s.AdminOTP, "admin-otp", "", "its current one-time code, when its MFA is on (make run's admin: $(go run ./deploy/cmd/totp))")
	fs.BoolVar(&s.AllowRemote, "i-own-this-target", false, "allow a target that is not loopback: only for a system you own or may test in writing")
	fs.BoolVar(&s.JSON, "json", false, "print the report as JSON")
	fs.DurationVar(&s.SetupTimeout, "setup-timeout", 3*time.Minute, "bound on the set-up phase (registrations, logins, deposits)")
	fs.DurationVar(&s.Timeout, "timeout", 10*time.Second, "bound on each request")
	if err := fs.Parse(args[1:]); err != nil {
		return settings{}, err
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if s.AdminPassword == "" {
		s.AdminPassword = getenv("BANK_ADMIN_PASSWORD")
	}
	s.Load.Rate, s.Load.Duration = *rate, *duration
	return s, s.resolve(*rawURL, *name)
}

// resolve parses the target and the scenario into s and checks every bound,
// reporting all problems at once.
func (s *settings) resolve(rawURL, name string) error {
	var problems []error
	var err error
	if s.Target, err = target.Parse(rawURL, s.AllowRemote); err != nil {
		problems = append(problems, err)
	}
	if s.Scenario, err = scenario.Lookup(name); err != nil {
		problems = append(problems, err)
	}
	if err := s.Load.Validate(); err != nil {
		problems = append(problems, err)
	}
	if s.Users < 1 || s.Users > scenario.MaxUsers {
		problems = append(problems, fmt.Errorf("-users %d must be in [1, %d]", s.Users, scenario.MaxUsers))
	}
	if s.SetupTimeout <= 0 || s.SetupTimeout > maxSetupTimeout {
		problems = append(problems, fmt.Errorf("-setup-timeout must be in (0, %s]", maxSetupTimeout))
	}
	if s.Timeout <= 0 || s.Timeout > load.DrainGrace {
		problems = append(problems, fmt.Errorf("-timeout must be in (0, %s]", load.DrainGrace))
	}
	return errors.Join(problems...)
}
