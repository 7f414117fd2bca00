package scenario

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

// Transfers scenario numbers.
const (
	// SeedAmount is each user's starting balance in cents: 9 999.99 EUR,
	// far more than a 10-minute run at the rate cap can move, and one cent
	// below the default BANK_APPROVAL_THRESHOLD, so one staff account can
	// seed a run alone (a larger deposit waits for a second manager). One
	// admin's deposits of a day are capped (BANK_DEPOSIT_DAILY_LIMIT, by
	// default enough for 1 000 users' seeds).
	SeedAmount = 999_999
	// MaxTransferAmount keeps every transfer far below the approval
	// threshold, so none waits for a manager.
	MaxTransferAmount = 100
	// HistoryPageSize is the page asked for on history reads.
	HistoryPageSize = 20
)

// Transfers is the transfers scenario's generator.
type Transfers struct {
	RunID string
	Users []User // each with two accounts; the first is funded
}

// Next cycles over the users; each user's own requests go, in tens:
// seven transfers from the funded account to the other, two balance reads,
// one history read.
func (g *Transfers) Next(i int) load.Request {
	u := g.Users[i%len(g.Users)]
	switch (i / len(g.Users)) % 10 {
	case 7, 8:
		return bank.GetAccount(u.Token, u.Accounts[0])
	case 9:
		return bank.History(u.Token, u.Accounts[0], HistoryPageSize)
	}
	return bank.Transfer(u.Token, g.Key(i), bank.TransferBody{
		From: u.Accounts[0], To: u.Accounts[1],
		Amount:   int64(1 + i%MaxTransferAmount),
		Currency: "EUR", Description: "bankload " + strconv.Itoa(i),
	})
}

// Key is the Idempotency-Key of the i-th request: unique within the run and
// across runs, so no transfer is a replay of another.
func (g *Transfers) Key(i int) string {
	return "bankload-" + g.RunID + "-" + strconv.Itoa(i)
}

// SetupTransfers registers env.Users users with two EUR accounts each and
// funds the first through deposits made by the admin.
func SetupTransfers(ctx context.Context, env Env) (load.Generator, error) {
	if err := checkUsers(env.Users); err != nil {
		return nil, err
	}
	if env.AdminEmail == "" || env.AdminPassword == "" {
		return nil, errNoAdmin
	}
	admin, err := env.Client.LoginWithCode(ctx, env.AdminEmail, env.AdminPassword, env.AdminOTP)
	if errors.Is(err, bank.ErrMFARequired) {
		return nil, fmt.Errorf("admin login: %w: pass its current code, e.g. -admin-otp $(go run ./deploy/cmd/totp) "+
			"for the admin `make run` made", err)
	}
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	users, err := createUsers(ctx, env, 0, env.Users, true, 2)
	if err != nil {
		return nil, err
	}
	for n, u := range users {
		key := "bankload-" + env.RunID + "-seed-" + strconv.Itoa(n)
		err := env.Client.Deposit(ctx, admin, key, u.Accounts[0], SeedAmount, "EUR", "bankload seed")
		var se *bank.StatusError
		if errors.As(err, &se) && se.Status == 403 {
			return nil, fmt.Errorf("deposit: %w (is %s a manager or admin, and, with BANK_STAFF_MFA=required, "+
				"logged in with a one-time code: -admin-otp?)", err, env.AdminEmail)
		}
		if errors.Is(err, bank.ErrDepositHeld) {
			return nil, fmt.Errorf("deposit of %d: %w: run the bank with BANK_APPROVAL_THRESHOLD above it", SeedAmount, err)
		}
		if errors.As(err, &se) && se.Status == 422 {
			return nil, fmt.Errorf("deposit: %w (past %s's deposit cap of the day? raise BANK_DEPOSIT_DAILY_LIMIT for large runs)", err, env.AdminEmail)
		}
		if err != nil {
			return nil, fmt.Errorf("deposit: %w", err)
		}
	}
	fmt.Fprintf(env.Log, "set-up: funded %d accounts with %d cents each\n", len(users), SeedAmount)
	return &Transfers{RunID: env.RunID, Users: users}, nil
}
