// Command totp prints the current TOTP code (RFC 6238: SHA-1, six digits,
// 30-second steps) of a secret file: by default the bootstrap admin's, which
// `make run` writes to .dev/secrets/admin-totp, so that the quick start's
// admin can log in with a one-time code:
//
//	go run ./deploy/cmd/totp [secret-file]
//
// Each code is accepted once. The command remembers the last step it printed
// for a file (in <file>.last-step) and prints the next step's code when the
// current one was printed already, which the service accepts as well (one
// step of clock skew); past that it waits for the clock, at most 30 s. It is
// a development tool: in production the secret lives in the user's
// authenticator app, never in a file.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// period is the TOTP time step.
const period = 30 * time.Second

func main() {
	if err := run(os.Args, os.Stdout, time.Now, time.Sleep); err != nil {
		fmt.Fprintln(os.Stderr, "totp:", err)
		os.Exit(1)
	}
}

// run prints one code for the secret file named by args[1] (default
// .dev/secrets/admin-totp under the repository root).
func run(args []string, stdout io.Writer, now func() time.Time, sleep func(time.Duration)) error {
	path := ""
	switch len(args) {
	case 1:
		root, err := repoRoot()
		if err != nil {
			return err
		}
		path = filepath.Join(root, ".dev", "secrets", "admin-totp")
	case 2:
		path = args[1]
	default:
		return errors.New("usage: totp [secret-file]")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (does `make run` have a bootstrap admin?)", err)
	}
	secret := strings.ToUpper(strings.TrimSpace(string(raw)))
	step := nextStep(path+".last-step", now, sleep)
	code, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return fmt.Errorf("%s: not a base32 TOTP secret", path)
	}
	if err := os.WriteFile(path+".last-step", []byte(strconv.FormatInt(step, 10)), 0o600); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, code)
	return err
}

// nextStep returns the step to print: the current one, or, if that was
// printed before, the next one, which the service accepts a step early;
// past that it sleeps until the clock catches up.
func nextStep(state string, now func() time.Time, sleep func(time.Duration)) int64 {
	last := int64(-1)
	if b, err := os.ReadFile(state); err == nil {
		last, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	for {
		current := now().Unix() / int64(period/time.Second)
		switch {
		case current > last:
			return current
		case current+1 > last:
			return current + 1
		}
		sleep(time.Unix(last*int64(period/time.Second), 0).Sub(now()) + 100*time.Millisecond)
	}
}

// repoRoot is the nearest directory up from here that holds go.work.
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
			return "", errors.New("run me from inside the Bastion repository, or name the secret file")
		}
		dir = parent
	}
}
