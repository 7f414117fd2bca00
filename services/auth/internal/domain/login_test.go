package domain_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	tok := f.login(t, strings.ToUpper(u.Email), pw)
	if tok.Access.ID == "" || tok.ExpiresIn != 15*time.Minute {
		t.Errorf("Login() = %+v, want an access token living 15 min", tok)
	}
	if len(tok.Refresh) != 43 || strings.ContainsAny(tok.Refresh, "+/=") {
		t.Errorf("refresh token %q, want 32 random bytes in unpadded base64url", tok.Refresh)
	}
	if again := f.login(t, u.Email, pw); again.Refresh == tok.Refresh || again.Access.ID == tok.Access.ID {
		t.Error("two logins returned the same tokens")
	}
}

func TestLoginFailuresLookTheSame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, _ := f.register(t)
	_, errWrong := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: "wrong password!", ClientIP: f.ip})
	_, errUnknown := f.svc.Login(ctx, domain.LoginInput{Email: "nobody-" + uuid.NewString() + "@example.com", Password: "wrong password!", ClientIP: f.ip})
	if !errors.Is(errWrong, domain.ErrInvalidCredentials) || !errors.Is(errUnknown, domain.ErrInvalidCredentials) {
		t.Fatalf("Login(wrong) = %v, Login(unknown) = %v; want ErrInvalidCredentials for both", errWrong, errUnknown)
	}
	a, _ := errs.As(errWrong)
	b, _ := errs.As(errUnknown)
	if a.Kind != b.Kind || a.Msg != b.Msg || a.Reason != b.Reason || errs.SafeMessage(a) != errs.SafeMessage(b) {
		t.Errorf("wrong password gives %+v, unknown email %+v: a client can tell them apart", a, b)
	}
	// The dashboards may tell them apart; the client may not.
	if f.ctr.get("login_failed:bad_password") != 1 || f.ctr.get("login_failed:unknown_email") != 1 {
		t.Errorf("counters = %v, want one bad_password and one unknown_email", f.ctr.events)
	}
}

func TestLoginRefusesOverlongPasswordBeforeHashing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, domain.Config{})
	u, _ := f.register(t)
	_, err := f.svc.Login(context.Background(), domain.LoginInput{Email: u.Email, Password: strings.Repeat("a", 1<<20), ClientIP: f.ip})
	if errs.KindOf(err) != errs.Invalid {
		t.Errorf("Login(1 MiB password) = %v, want invalid", err)
	}
}

func TestLoginThrottling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 3, Window: 10 * time.Minute})
	u, pw := f.register(t)
	wrong := domain.LoginInput{Email: u.Email, Password: "not the password", ClientIP: f.ip}
	right := domain.LoginInput{Email: u.Email, Password: pw, ClientIP: f.ip}

	for i := range 3 {
		f.clock.Advance(time.Minute)
		if _, err := f.svc.Login(ctx, wrong); !errors.Is(err, domain.ErrInvalidCredentials) {
			t.Fatalf("wrong login %d = %v, want invalid credentials", i+1, err)
		}
	}
	// The window began at the first failure, 2 minutes ago: 8 minutes left.
	f.clock.Advance(time.Minute)
	for _, in := range []domain.LoginInput{right, wrong, {Email: strings.ToUpper(u.Email), Password: pw, ClientIP: f.ip}} {
		_, err := f.svc.Login(ctx, in)
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.RateLimited || e.RetryAfter != 7*time.Minute {
			t.Fatalf("Login(over the limit, email %q) = %+v, want rate limited with RetryAfter 7m, even with the right password", in.Email, err)
		}
	}
	if got := f.ctr.get("login_failed:throttled_account_client"); got != 3 {
		t.Errorf("throttled logins counted %d times, want 3", got)
	}
	f.clock.Advance(7 * time.Minute)
	if _, err := f.svc.Login(ctx, right); err != nil {
		t.Fatalf("Login(after the window) = %v, want success", err)
	}
}

func TestSuccessfulLoginResetsAccountCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 3})
	u, pw := f.register(t)
	wrong := domain.LoginInput{Email: u.Email, Password: "not the password", ClientIP: f.ip}
	for round := range 3 {
		for range 2 {
			if _, err := f.svc.Login(ctx, wrong); !errors.Is(err, domain.ErrInvalidCredentials) {
				t.Fatalf("round %d: wrong login = %v, want invalid credentials", round, err)
			}
		}
		f.login(t, u.Email, pw)
	}
}

func TestUnknownEmailIsThrottledLikeAKnownOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 2})
	in := domain.LoginInput{Email: "ghost-" + uuid.NewString() + "@example.com", Password: "whatever it is", ClientIP: f.ip}
	for range 2 {
		f.svc.Login(ctx, in)
	}
	if _, err := f.svc.Login(ctx, in); errs.KindOf(err) != errs.RateLimited {
		t.Errorf("Login(unknown email, over the limit) = %v, want rate limited like a real account", err)
	}
}

func TestIPThrottledAtHigherThreshold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 2, IPMaxFailures: 4})
	u, pw := f.register(t)
	// A password spray: one guess each at many accounts from one IP.
	for i := range 4 {
		in := domain.LoginInput{Email: "spray-" + uuid.NewString() + "@example.com", Password: "Summer2030!!", ClientIP: f.ip}
		if _, err := f.svc.Login(ctx, in); !errors.Is(err, domain.ErrInvalidCredentials) {
			t.Fatalf("spray %d = %v, want invalid credentials", i, err)
		}
	}
	if _, err := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: f.ip}); errs.KindOf(err) != errs.RateLimited {
		t.Errorf("Login(from the spraying IP) = %v, want rate limited", err)
	}
	if got := f.ctr.get("login_failed:throttled_ip"); got != 1 {
		t.Errorf("throttled_ip counted %d, want 1", got)
	}
	if _, err := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: randomIP()}); err != nil {
		t.Errorf("Login(from another IP) = %v, want success: the account itself is not locked", err)
	}
}

func TestConcurrentGuessesCannotPassTheLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	for _, tc := range []struct {
		name string
		cfg  domain.Config
		ip   func(f *fixture) string
	}{
		{"from one network", domain.Config{MaxFailures: limit}, func(f *fixture) string { return f.ip }},
		{"from many networks, the ceiling", domain.Config{MaxFailures: 2, AccountMaxFailures: limit}, func(*fixture) string { return randomIP() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.cfg)
			u, _ := f.register(t)
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				guessed int
			)
			for range 30 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := f.svc.Login(context.Background(), domain.LoginInput{Email: u.Email, Password: "guess " + uuid.NewString(), ClientIP: tc.ip(f)})
					switch {
					case errors.Is(err, domain.ErrInvalidCredentials):
						mu.Lock()
						guessed++
						mu.Unlock()
					case errs.KindOf(err) != errs.RateLimited:
						t.Errorf("Login(concurrent guess) = %v, want invalid credentials or rate limited", err)
					}
				}()
			}
			wg.Wait()
			if guessed != limit {
				t.Errorf("%d concurrent guesses had their password checked, want exactly %d", guessed, limit)
			}
		})
	}
}

func TestLoginShedsWhenHashPoolIsFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A pool with one worker and no queue, and a real (slow) hash, so
	// concurrent logins overflow it.
	f := newFixtureWith(t, domain.Config{MaxFailures: 100}, password.OWASP(), password.PoolConfig{Workers: 1, Queue: -1})
	u, pw := f.register(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	served, shed := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: randomIP()})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				served++
			case errors.Is(err, password.ErrBusy):
				shed++
			default:
				t.Errorf("Login() = %v, want success or ErrBusy", err)
			}
		}()
	}
	wg.Wait()
	if served == 0 || shed == 0 {
		t.Errorf("%d served, %d shed; want some of each", served, shed)
	}
	// Shed attempts gave their reservation back: the account is not locked.
	f.login(t, u.Email, pw)
}
