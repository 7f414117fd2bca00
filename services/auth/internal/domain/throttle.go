package domain

import (
	"context"
	"time"

	"github.com/bastion-bank/bastion/platform/identity"
)

// The failed-login throttle keeps three counters for an attempt, each over
// a window that starts at the first attempt it counts:
//
//   - the account from this client network (CounterAccountClient): at
//     MaxFailures that client gets 429 for that account, even with the
//     right password, while everyone else can still log in to it;
//   - the account from all clients (CounterAccount): at AccountMaxFailures
//     everyone gets 429 for it, a ceiling that bounds how many guesses a
//     botnet gets at one account in a window;
//   - the client network (CounterIP): the number of accounts it is failing
//     on; at IPMaxFailures it gets 429 on every login, which stops a spray
//     of one password across many accounts.
//
// A client network is what identity.ClientKey makes of the address, the key
// the gateway's per-IP rate limits use: an IPv4 address, or an IPv6 /64, so
// that a host gains nothing by rotating through the addresses of its own
// network. An attempt with no client address (not from the gateway) is
// counted as from one unknown client, with no network counter.
//
// The network counts accounts, not failures, so that a classroom behind one
// NAT, where many people mistype, is not taken for a spray: an account
// counts from the first failure on it in the network's window until its own
// counter for that network is cleared. Formally, the network's count is the
// number of its account-client counters that are non-zero and started
// within the network's current window; reserveAttempt and releaseAttempt
// keep it so.

// counterKeys returns the counters an attempt is charged to, always in the
// same order (account, account from client, client) so that concurrent
// logins lock them without deadlock.
func (s *Service) counterKeys(email, ip string) []Counter {
	client := ""
	if ip != "" {
		client = identity.ClientKey(ip)
	}
	keys := []Counter{
		{Scope: CounterAccount, Key: emailKey(email)},
		{Scope: CounterAccountClient, Key: accountClientKey(email, client)},
	}
	if client != "" {
		keys = append(keys, Counter{Scope: CounterIP, Key: client})
	}
	return keys
}

func (s *Service) limit(scope string) int {
	switch scope {
	case CounterAccount:
		return s.cfg.AccountMaxFailures
	case CounterIP:
		return s.cfg.IPMaxFailures
	}
	return s.cfg.MaxFailures
}

// lockAttempt locks the attempt's counters, each started afresh if its
// window has passed at now.
func (s *Service) lockAttempt(ctx context.Context, tx Tx, email, ip string, now time.Time) ([]Counter, error) {
	locked, err := tx.LockCounters(ctx, s.counterKeys(email, ip))
	if err != nil {
		return nil, err
	}
	for i := range locked {
		if c := &locked[i]; !c.WindowStart.Add(s.cfg.Window).After(now) {
			c.Count, c.WindowStart = 0, now
		}
	}
	return locked, nil
}

// reserveAttempt charges one attempt to the counters, unless one of them is
// already at its limit: then it charges nothing and returns how long until
// that counter's window passes (the longest, if several are), and which
// scope is throttled.
func (s *Service) reserveAttempt(ctx context.Context, tx Tx, email, ip string, now time.Time) (time.Duration, string, error) {
	locked, err := s.lockAttempt(ctx, tx, email, ip, now)
	if err != nil {
		return 0, "", err
	}
	var wait time.Duration
	scope := ""
	for _, c := range locked {
		if c.Count >= s.limit(c.Scope) {
			if w := c.WindowStart.Add(s.cfg.Window).Sub(now); w > wait {
				wait, scope = w, c.Scope
			}
		}
	}
	if wait > 0 {
		// Whole seconds, rounded up, as Retry-After is sent: a client that
		// waits as told never arrives a moment early.
		return (wait + time.Second - 1).Truncate(time.Second), scope, nil
	}
	charge(locked, func(c *Counter) { c.Count++ })
	return 0, "", tx.SaveCounters(ctx, locked)
}

// releaseAttempt gives back the attempt reserveAttempt charged. After a
// successful login (success true) the account's counter for this client is
// cleared altogether: the client has proved it holds the password, so its
// earlier failures were typos. The account's ceiling only gets the one
// attempt back, so that the owner's logins do not refill the budget of
// whoever is guessing from elsewhere.
func (s *Service) releaseAttempt(ctx context.Context, tx Tx, email, ip string, success bool, now time.Time) error {
	locked, err := s.lockAttempt(ctx, tx, email, ip, now)
	if err != nil {
		return err
	}
	charge(locked, func(c *Counter) {
		if success && c.Scope == CounterAccountClient {
			c.Count = 0
		} else if c.Count > 0 {
			c.Count--
		}
	})
	return tx.SaveCounters(ctx, locked)
}

// charge applies change to the account's counters (the first two of locked)
// and keeps the client network's count of accounts (the third, if any) in
// step: one more when the account-client counter starts to count in the
// network's window, one less when it stops.
func charge(locked []Counter, change func(*Counter)) {
	pair := &locked[1]
	var client *Counter
	if len(locked) > 2 {
		client = &locked[2]
	}
	before := counts(pair, client)
	change(&locked[0])
	change(pair)
	switch after := counts(pair, client); {
	case after && !before:
		client.Count++
	case before && !after && client.Count > 0:
		client.Count--
	}
}

// counts reports whether the account-client counter pair is one of the
// accounts the client network's counter counts.
func counts(pair, client *Counter) bool {
	return client != nil && pair.Count > 0 && !pair.WindowStart.Before(client.WindowStart)
}
