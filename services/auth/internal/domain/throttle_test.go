package domain_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// TestLoginThrottleCountsPerAccountAndClient tries to break the failed-login
// throttle the way the API contract's "Login throttling" section says it
// must hold: failures are counted per account and client network, so that
// nobody can lock an owner out from elsewhere and a classroom behind one
// NAT does not lock itself out, while an account-wide ceiling and a
// per-network spray limit still bound what a distributed or a spraying
// attacker gets.
func TestLoginThrottleCountsPerAccountAndClient(t *testing.T) {
	t.Parallel()
	t.Run("another network cannot lock the owner out", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, domain.Config{MaxFailures: 3, Window: 10 * time.Minute})
		u, pw := f.register(t)
		attacker := randomIP()
		for range 3 {
			f.clock.Advance(time.Minute)
			f.wantFailed(t, u.Email, "not the password", attacker)
		}
		// The attacker's window began at its first failure, 3 minutes ago:
		// 7 minutes are left, and the right password does not help.
		f.clock.Advance(time.Minute)
		f.wantThrottled(t, u.Email, pw, attacker, 7*time.Minute)
		f.wantThrottled(t, u.Email, "not the password", attacker, 7*time.Minute)
		if got := f.ctr.get("login_failed:throttled_account_client"); got != 2 {
			t.Errorf("throttled_account_client counted %d times, want 2", got)
		}
		f.wantLogin(t, u.Email, pw, f.ip) // the owner, from home
		f.wantFailed(t, u.Email, "a typo of the owner", f.ip)
		f.clock.Advance(7 * time.Minute)
		f.wantLogin(t, u.Email, pw, attacker) // the window has passed
	})
	t.Run("a workshop behind one NAT", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, domain.Config{MaxFailures: 3}) // 12 accounts for the network
		nat := randomIP()
		// Seven users mistype twice and then log in: 14 failures from one
		// address, but each user proved who they were.
		for range 7 {
			u, pw := f.register(t)
			f.wantFailed(t, u.Email, "not the password", nat)
			f.wantFailed(t, u.Email, "still not it", nat)
			f.wantLogin(t, u.Email, pw, nat)
		}
		// One user runs out of attempts: only that account is throttled for
		// the room.
		x, xpw := f.register(t)
		for range 3 {
			f.wantFailed(t, x.Email, "not the password", nat)
		}
		f.wantThrottled(t, x.Email, xpw, nat, 15*time.Minute)
		y, ypw := f.register(t)
		f.wantLogin(t, y.Email, ypw, nat)
	})
	t.Run("unknown emails count like wrong passwords", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, domain.Config{MaxFailures: 2})
		ghost := "ghost-" + uuid.NewString() + "@example.com"
		a, b := randomIP(), randomIP()
		f.wantFailed(t, ghost, "whatever it is", a)
		f.wantFailed(t, ghost, "whatever it is", a)
		f.wantThrottled(t, ghost, "whatever it is", a, 15*time.Minute)
		f.wantFailed(t, ghost, "whatever it is", b) // a known account would answer b the same
	})
	t.Run("failing on a few accounts is not a spray", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, domain.Config{MaxFailures: 2}) // 8 accounts for the network
		u, pw := f.register(t)
		ip := randomIP()
		// Eight failures from one network, but on four accounts only.
		for range 4 {
			email := "someone-" + uuid.NewString() + "@example.com"
			f.wantFailed(t, email, "guess one", ip)
			f.wantFailed(t, email, "guess two", ip)
		}
		f.wantLogin(t, u.Email, pw, ip)
	})
	t.Run("a spray across accounts from one network", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, domain.Config{MaxFailures: 2}) // 8 accounts for the network
		u, pw := f.register(t)
		ip := randomIP()
		for range 8 {
			f.wantFailed(t, "spray-"+uuid.NewString()+"@example.com", "Summer2030!!", ip)
		}
		f.wantThrottled(t, u.Email, pw, ip, 15*time.Minute)
		f.wantThrottled(t, "fresh-"+uuid.NewString()+"@example.com", "Summer2030!!", ip, 15*time.Minute)
		if got := f.ctr.get("login_failed:throttled_ip"); got != 2 {
			t.Errorf("throttled_ip counted %d times, want 2", got)
		}
		f.wantLogin(t, u.Email, pw, randomIP())
	})
	t.Run("a spray of two passwords per account", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, domain.Config{MaxFailures: 2}) // 8 accounts for the network
		u, pw := f.register(t)
		ip := randomIP()
		// The second guess on an account already counted for the network
		// must leave the network's count of accounts as it is: seven
		// accounts guessed twice and an eighth once make eight.
		for range 7 {
			email := "spray-" + uuid.NewString() + "@example.com"
			f.wantFailed(t, email, "Summer2030!!", ip)
			f.wantFailed(t, email, "Winter2030!!", ip)
		}
		f.wantFailed(t, "spray-"+uuid.NewString()+"@example.com", "Summer2030!!", ip)
		f.wantThrottled(t, u.Email, pw, ip, 15*time.Minute)
		if got := f.ctr.get("login_failed:throttled_ip"); got != 1 {
			t.Errorf("throttled_ip counted %d times, want 1", got)
		}
	})
	t.Run("no client address", func(t *testing.T) {
		t.Parallel()
		// A caller that passes no client IP has no network counter: the
		// account's counters alone hold it.
		f := newFixture(t, domain.Config{MaxFailures: 2})
		u, pw := f.register(t)
		f.wantLogin(t, u.Email, pw, "")
		f.wantFailed(t, u.Email, "not the password", "")
		f.wantFailed(t, u.Email, "still not it", "")
		f.wantThrottled(t, u.Email, pw, "", 15*time.Minute)
	})
	t.Run("the account-wide ceiling", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, domain.Config{}) // 5 per client, 50 per account
		u, pw := f.register(t)
		// Ten networks, each stopping at its own limit: 50 failures.
		for range 10 {
			ip := randomIP()
			for range 5 {
				f.wantFailed(t, u.Email, "guess "+uuid.NewString(), ip)
			}
		}
		f.clock.Advance(time.Minute)
		f.wantThrottled(t, u.Email, pw, f.ip, 14*time.Minute) // everyone, the owner too
		f.wantThrottled(t, u.Email, pw, randomIP(), 14*time.Minute)
		if got := f.ctr.get("login_failed:throttled_account"); got != 2 {
			t.Errorf("throttled_account (the ceiling) counted %d times, want 2", got)
		}
		f.clock.Advance(14 * time.Minute)
		f.wantLogin(t, u.Email, pw, f.ip)
	})
}

// wantFailed logs in and wants ErrInvalidCredentials.
func (f *fixture) wantFailed(t *testing.T, email, pw, ip string) {
	t.Helper()
	if _, err := f.svc.Login(context.Background(), domain.LoginInput{Email: email, Password: pw, ClientIP: ip}); !errors.Is(err, domain.ErrInvalidCredentials) {
		t.Fatalf("Login(%s, wrong password, from %s) = %v, want invalid credentials", email, ip, err)
	}
}

// wantThrottled logs in and wants a RateLimited error with RetryAfter retry.
func (f *fixture) wantThrottled(t *testing.T, email, pw, ip string, retry time.Duration) {
	t.Helper()
	_, err := f.svc.Login(context.Background(), domain.LoginInput{Email: email, Password: pw, ClientIP: ip})
	if e, ok := errs.As(err); !ok || e.Kind != errs.RateLimited || e.RetryAfter != retry {
		t.Fatalf("Login(%s from %s) = %v, want rate limited with RetryAfter %v", email, ip, err, retry)
	}
}

// wantLogin logs in and wants success.
func (f *fixture) wantLogin(t *testing.T, email, pw, ip string) {
	t.Helper()
	tok, err := f.svc.Login(context.Background(), domain.LoginInput{Email: email, Password: pw, ClientIP: ip})
	if err != nil {
		t.Fatalf("Login(%s, right password, from %s) = %v, want success", email, ip, err)
	}
	// A success issues a token pair, or with MFA on a ticket: never nothing.
	if (tok.Access.Raw == "" || tok.Refresh == "") && tok.MFAToken == "" {
		t.Fatalf("Login(%s, right password, from %s) = %+v, want a token pair or an MFA ticket", email, ip, tok)
	}
}
