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
	// SeedAmount is each user's starting balance in cents: 100 000 EUR, far
	// more than a 10-minute run at the rate cap can move, and a deposit
	// (never held for approval) below the default BANK_MAX_TRANSFER.
	SeedAmount = 10_000_000
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
	admin, err := env.Client.Login(ctx, env.AdminEmail, env.AdminPassword)
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
			return nil, fmt.Errorf("deposit: %w (is %s a manager or admin?)", err, env.AdminEmail)
		}
		if err != nil {
			return nil, fmt.Errorf("deposit: %w", err)
		}
	}
	fmt.Fprintf(env.Log, "set-up: funded %d accounts with %d cents each\n", len(users), SeedAmount)
	return &Transfers{RunID: env.RunID, Users: users}, nil
}
