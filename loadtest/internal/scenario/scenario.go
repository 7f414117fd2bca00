// Package scenario holds bankload's scenarios. Each prepares what its
// stream needs through the public API (users, tokens, accounts, money) and
// returns a generator whose i-th request is a pure function of i and that
// preparation, so the mix is reproducible and testable without a server.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

// MaxUsers bounds -users: set-up registers every one of them, and each
// registration costs the server an argon2id hash.
const MaxUsers = 1000

// Env is what a scenario's set-up works with.
type Env struct {
	Client        *bank.Client
	RunID         string // makes this run's emails and idempotency keys unique
	Users         int    // how many users to create (scenarios that need them)
	AdminEmail    string // a manager or admin, for deposits
	AdminPassword string
	AdminOTP      string    // its current one-time code, when its MFA is on
	Log           io.Writer // progress lines for the operator
}

// Scenario is one named load shape.
type Scenario struct {
	Name        string
	Description string
	// NeedsAdmin says whether Setup logs in as a manager or admin.
	NeedsAdmin bool
	// Attack marks a scenario whose every request should be refused: an
	// answer outside the expected refusals is a finding, and bankload
	// exits non-zero on it.
	Attack bool
	Setup  func(ctx context.Context, env Env) (load.Generator, error)
}

// All returns the scenarios, in the order the usage text lists them.
func All() []Scenario {
	return []Scenario{
		{Name: "transfers", NeedsAdmin: true, Setup: SetupTransfers,
			Description: "users move small sums between their own EUR accounts (70%) and read balances (20%) and history (10%)"},
		{Name: "login", Setup: SetupLogin,
			Description: "a login storm: right passwords (50%), wrong ones (25%) and unknown emails (25%); watch failed-login throttling and argon2 load shedding"},
		{Name: "attack", Attack: true, Setup: SetupAttack,
			Description: "traffic monitoring must see: forged and missing tokens, BOLA probes, oversized and mistyped bodies, credential stuffing over the limits"},
	}
}

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, error) {
	all := All()
	if i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == name }); i >= 0 {
		return all[i], nil
	}
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q (want one of %v)", name, names)
}

// User is a user created by a set-up.
type User struct {
	ID       string
	Email    string
	Password string
	Token    string
	Accounts []string
}

// Email is the address of the n-th user of a run: unique per run, on a
// domain reserved for examples so it can never reach a real mailbox.
func Email(runID string, n int) string {
	return fmt.Sprintf("bankload-%s-%d@example.com", runID, n)
}

// Password is the n-th user's password: 12 to 128 characters as docs/api.md asks.
func Password(runID string, n int) string {
	return fmt.Sprintf("bankload-%s-%d-secret", runID, n)
}

// setupWorkers bounds set-up concurrency: each registration and login is an
// argon2id hash, and set-up should not itself be a login storm.
const setupWorkers = 4

// createUsers registers, logs in and opens accounts (EUR) for users
// first..first+n-1. login and accounts may be 0 to skip those steps.
func createUsers(ctx context.Context, env Env, first, n int, login bool, accounts int) ([]User, error) {
	users := make([]User, n)
	errCh := make(chan error, n)
	sem := make(chan struct{}, setupWorkers)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errCh <- ctx.Err()
				return
			}
			defer func() { <-sem }()
			u, err := createUser(ctx, env, first+i, login, accounts)
			if err != nil {
				errCh <- fmt.Errorf("user %d: %w", first+i, err)
				return
			}
			users[i] = u
		})
	}
	wg.Wait()
	close(errCh)
	if err := <-errCh; err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "set-up: %d users ready\n", n)
	return users, nil
}

func createUser(ctx context.Context, env Env, n int, login bool, accounts int) (User, error) {
	u := User{Email: Email(env.RunID, n), Password: Password(env.RunID, n)}
	id, err := env.Client.Register(ctx, u.Email, u.Password, fmt.Sprintf("Load user %d", n))
	if err != nil {
		return User{}, err
	}
	u.ID = id
	if !login {
		return u, nil
	}
	if u.Token, err = env.Client.Login(ctx, u.Email, u.Password); err != nil {
		return User{}, err
	}
	for a := range accounts {
		id, err := env.Client.OpenAccount(ctx, u.Token, "EUR", fmt.Sprintf("Load %d", a))
		if err != nil {
			return User{}, err
		}
		u.Accounts = append(u.Accounts, id)
	}
	return u, nil
}

// checkUsers validates env.Users against the bounds.
func checkUsers(n int) error {
	if n < 1 || n > MaxUsers {
		return fmt.Errorf("users %d must be in [1, %d]", n, MaxUsers)
	}
	return nil
}

// errNoAdmin explains what deposits need.
var errNoAdmin = errors.New("this scenario deposits money, which only a manager or admin may do: " +
	"pass -admin-email and -admin-password (or BANK_ADMIN_EMAIL and BANK_ADMIN_PASSWORD), as printed by `make run`")
