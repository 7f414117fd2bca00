package domain

import (
	"context"
	"errors"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// ErrInvalidCredentials is the one answer to a failed login, whether the
// email is unknown or the password wrong, so the two cannot be told apart.
var ErrInvalidCredentials = errs.Reasoned(errs.Unauthenticated, "invalid_credentials", "invalid credentials")

// LoginInput is a login request.
type LoginInput struct {
	Email, Password string
	ClientIP        string // "" when the caller is not the gateway
}

// Tokens is a new access and refresh token pair.
type Tokens struct {
	Access    AccessToken
	Refresh   string        // the opaque refresh token, shown to the client once
	ExpiresIn time.Duration // the access token's lifetime
}

// Login checks an email and password and issues a token pair. It returns
// ErrInvalidCredentials for an unknown email or a wrong password alike, an
// errs.RateLimited error with RetryAfter while the account or client IP is
// throttled (even if the password is right), and password.ErrBusy when
// hashing capacity is exhausted.
func (s *Service) Login(ctx context.Context, in LoginInput) (Tokens, error) {
	if err := password.CheckLength(in.Password); err != nil {
		return Tokens{}, err
	}
	email := NormalizeEmail(in.Email)
	now := s.now().UTC()
	user, hash, err := s.admitLogin(ctx, email, in.ClientIP, now)
	if err != nil {
		return Tokens{}, err
	}
	ok, rehash, err := s.hash.Verify(ctx, in.Password, hash)
	if err != nil {
		// Shed or cancelled before the password was checked: give the attempt back.
		if rerr := s.repo.InTx(ctx, func(tx Tx) error {
			return s.releaseAttempt(ctx, tx, email, in.ClientIP, false, now)
		}); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return Tokens{}, err
	}
	if !ok {
		return Tokens{}, s.loginFailed(ctx, user, email, in.ClientIP, now)
	}
	newHash := ""
	if rehash {
		// Best effort: a busy pool only postpones the upgrade to a later login.
		newHash, _ = s.hash.Hash(ctx, in.Password)
	}
	var out Tokens
	err = s.repo.InTx(ctx, func(tx Tx) error {
		if err := s.releaseAttempt(ctx, tx, email, in.ClientIP, true, now); err != nil {
			return err
		}
		if newHash != "" {
			if err := tx.SetPasswordHash(ctx, user.ID, newHash, now); err != nil {
				return err
			}
		}
		var err error
		if out, err = s.startFamily(ctx, tx, user, now); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Type: EventLogin, ActorID: user.ID, TargetID: user.ID,
			ClientIP: in.ClientIP, Outcome: OutcomeSuccess, At: now})
	})
	if err != nil {
		return Tokens{}, err
	}
	s.ctr.Event(ctx, "login", "ok")
	return out, nil
}

// admitLogin counts the attempt against the account and the client IP, or
// refuses it if either is throttled, and loads the user. hash is "" when no
// user has the email.
func (s *Service) admitLogin(ctx context.Context, email, ip string, now time.Time) (User, string, error) {
	var (
		user      User
		hash      string
		throttled error
		scope     string
	)
	err := s.repo.InTx(ctx, func(tx Tx) error {
		user, hash, throttled = User{}, "", nil
		var (
			wait time.Duration
			err  error
		)
		wait, scope, err = s.reserveAttempt(ctx, tx, email, ip, now)
		if err != nil {
			return err
		}
		if wait > 0 {
			throttled = errs.Throttled("login_throttled", "too many failed logins; try again later", wait)
			// The audit row commits with the counters; nothing else changes.
			return tx.Audit(ctx, AuditEvent{Type: EventLoginThrottled, ClientIP: ip, Outcome: OutcomeDenied, Reason: "throttled_" + scope,
				Details: map[string]string{"email": email}, At: now})
		}
		user, hash, err = tx.UserByEmail(ctx, email)
		if errs.KindOf(err) == errs.NotFound {
			return nil
		}
		return err
	})
	if err != nil {
		return User{}, "", err
	}
	if throttled != nil {
		s.ctr.LoginFailed(ctx, "throttled_"+scope)
		return User{}, "", throttled
	}
	return user, hash, nil
}

// loginFailed records a failed login and returns ErrInvalidCredentials.
func (s *Service) loginFailed(ctx context.Context, user User, email, ip string, now time.Time) error {
	reason := "bad_password"
	if user.ID == "" {
		reason = "unknown_email"
	}
	err := s.repo.InTx(ctx, func(tx Tx) error {
		return tx.Audit(ctx, AuditEvent{Type: EventLoginFailed, TargetID: user.ID, ClientIP: ip,
			Outcome: OutcomeFailure, Reason: reason, Details: map[string]string{"email": email}, At: now})
	})
	s.ctr.LoginFailed(ctx, reason)
	if err != nil {
		return err
	}
	return ErrInvalidCredentials
}

// counterKeys returns the counters an attempt is charged to, always in the
// same order (account, then IP) so that concurrent logins lock them without
// deadlock.
func (s *Service) counterKeys(email, ip string) []Counter {
	keys := []Counter{{Scope: CounterAccount, Key: emailKey(email)}}
	if ip != "" {
		keys = append(keys, Counter{Scope: CounterIP, Key: ip})
	}
	return keys
}

func (s *Service) limit(scope string) int {
	if scope == CounterIP {
		return s.cfg.IPMaxFailures
	}
	return s.cfg.MaxFailures
}

// reserveAttempt charges one attempt to each counter, unless one of them is
// already at its limit: then it charges nothing and returns how long until
// that counter's window passes, and which scope is throttled.
func (s *Service) reserveAttempt(ctx context.Context, tx Tx, email, ip string, now time.Time) (time.Duration, string, error) {
	var locked []Counter
	var wait time.Duration
	scope := ""
	for _, k := range s.counterKeys(email, ip) {
		c, err := tx.LockCounter(ctx, k.Scope, k.Key)
		if err != nil {
			return 0, "", err
		}
		if !c.WindowStart.Add(s.cfg.Window).After(now) {
			c.Count, c.WindowStart = 0, now // the window has passed: start afresh
		}
		if c.Count >= s.limit(c.Scope) {
			if w := c.WindowStart.Add(s.cfg.Window).Sub(now); w > wait {
				wait, scope = w, c.Scope
			}
		}
		locked = append(locked, c)
	}
	if wait > 0 {
		// Whole seconds, rounded up, as Retry-After is sent: a client that
		// waits as told never arrives a moment early.
		return (wait + time.Second - 1).Truncate(time.Second), scope, nil
	}
	for _, c := range locked {
		c.Count++
		if err := tx.SaveCounter(ctx, c); err != nil {
			return 0, "", err
		}
	}
	return 0, "", nil
}

// releaseAttempt gives back the attempt reserveAttempt charged. After a
// successful login (success true) the account's counter is cleared
// altogether; the IP only gets its one attempt back.
func (s *Service) releaseAttempt(ctx context.Context, tx Tx, email, ip string, success bool, now time.Time) error {
	for _, k := range s.counterKeys(email, ip) {
		c, err := tx.LockCounter(ctx, k.Scope, k.Key)
		if err != nil {
			return err
		}
		switch {
		case !c.WindowStart.Add(s.cfg.Window).After(now):
			c.Count = 0
		case success && c.Scope == CounterAccount:
			c.Count = 0
		case c.Count > 0:
			c.Count--
		}
		if err := tx.SaveCounter(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
