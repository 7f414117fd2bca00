package chaos

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Seed is each user's deposit, in cents: one below the default
// BANK_APPROVAL_THRESHOLD, so the admin can make it alone (a larger one
// waits for a second manager), and far more than a campaign's transfers of
// at most 1.00 EUR can drain.
const Seed = 999_999

// setupWorkers bounds set-up concurrency: each registration and login is
// an argon2id hash.
const setupWorkers = 4

// Setup registers n users, logs each in, opens one EUR account each, and
// has the admin deposit Seed into it under a key recorded in keys.
func Setup(ctx context.Context, bank *Bank, keys *Keys, runID string, n int, adminEmail, adminPassword string) ([]User, error) {
	var admin struct{ AccessToken string }
	if err := bank.MustDo(ctx, Login(adminEmail, adminPassword), &admin); err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	users := make([]User, n)
	errs := make([]error, n)
	sem := make(chan struct{}, setupWorkers)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			users[i], errs[i] = setupUser(ctx, bank, keys, runID, i, admin.AccessToken)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return users, nil
}

func setupUser(ctx context.Context, bank *Bank, keys *Keys, runID string, i int, admin string) (User, error) {
	u := User{Email: fmt.Sprintf("chaos-%s-%d@example.com", runID, i), Password: rand.Text()}
	if err := bank.MustDo(ctx, Register(u.Email, u.Password), nil); err != nil {
		return User{}, fmt.Errorf("user %d: %w", i, err)
	}
	var login struct{ AccessToken string }
	if err := bank.MustDo(ctx, Login(u.Email, u.Password), &login); err != nil {
		return User{}, fmt.Errorf("user %d: %w", i, err)
	}
	u.Token = login.AccessToken
	var opened struct{ Account struct{ ID string } }
	if err := bank.MustDo(ctx, OpenAccount(u.Token), &opened); err != nil {
		return User{}, fmt.Errorf("user %d: %w", i, err)
	}
	u.Account = opened.Account.ID
	in := Intent{Key: fmt.Sprintf("chaos-%s-seed-%d", runID, i), To: u.Account, Amount: Seed, Deposit: true}
	keys.Add(in)
	c := Deposit(admin, in.Key, in.To, in.Amount)
	var a Answer
	for attempt := range 20 {
		if a = bank.Do(ctx, c); a.Final() || sleep(ctx, time.Duration(attempt+1)*100*time.Millisecond) != nil {
			break
		}
	}
	keys.Answered(in.Key, a)
	switch {
	case !a.OK():
		return User{}, fmt.Errorf("user %d: deposit: %w", i, a.Error())
	case a.TransferID() == "":
		return User{}, fmt.Errorf("user %d: the deposit of %d was held for approval: is BANK_APPROVAL_THRESHOLD at or below it?", i, Seed)
	}
	return u, nil
}

// minor is an amount in minor units as protojson writes an int64: a
// decimal string (a number is accepted too).
type minor int64

func (m *minor) UnmarshalJSON(b []byte) error {
	s := string(b)
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	n, err := strconv.ParseInt(s, 10, 64)
	*m = minor(n)
	return err
}

// historyPage is the largest page docs/api.md allows.
const historyPage = 100

// ReadAPI reads the books through the public API, each user reading their
// own account and its whole history.
func ReadAPI(ctx context.Context, bank *Bank, users []User) (Books, error) {
	b := Books{Source: "api", History: map[string][]Entry{}}
	for _, u := range users {
		var acct struct {
			Account struct {
				ID                        string
				Balance, AvailableBalance struct{ Amount minor }
			}
		}
		if err := bank.MustDo(ctx, GetAccount(u.Token, u.Account), &acct); err != nil {
			return Books{}, err
		}
		a := acct.Account
		b.Accounts = append(b.Accounts, Account{ID: a.ID, Balance: int64(a.Balance.Amount), Available: int64(a.AvailableBalance.Amount)})
		entries, err := readHistory(ctx, bank, u)
		if err != nil {
			return Books{}, err
		}
		b.History[u.Account] = entries
	}
	return b, nil
}

// readHistory pages through an account's history, newest first, and
// returns it oldest first.
func readHistory(ctx context.Context, bank *Bank, u User) ([]Entry, error) {
	var all []Entry
	token := ""
	for {
		var page struct {
			Entries []struct {
				TransferID           string
				Amount, BalanceAfter minor
				Description          string
			}
			NextPageToken string
		}
		if err := bank.MustDo(ctx, History(u.Token, u.Account, historyPage, token), &page); err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			all = append(all, Entry{TransferID: e.TransferID, Amount: int64(e.Amount), BalanceAfter: int64(e.BalanceAfter), Description: e.Description})
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	slices.Reverse(all)
	return all, nil
}
