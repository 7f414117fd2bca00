package domain

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
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

// Tokens is a new access and refresh token pair, or, after the password
// of a user with MFA on, only the ticket for the one-time code.
type Tokens struct {
	Access    AccessToken
	Refresh   string        // the opaque refresh token, shown to the client once
	ExpiresIn time.Duration // the access token's lifetime, or the ticket's
	MFAToken  string        // set instead of Access and Refresh: the ticket for LoginMFA
}

// passwordOnly is the amr of a login proven by a password alone.
var passwordOnly = []string{identity.AMRPassword}

// Login checks an email and password and issues a token pair, or, for a
// user with MFA on, a short-lived single-use ticket for LoginMFA and no
// token at all. It returns
// ErrInvalidCredentials for an unknown email or a wrong password alike, an
// errs.RateLimited error with RetryAfter while the login throttle (see
// throttle.go) refuses the account to this client, the account to everyone,
// or this client everything (even if the password is right), errs.Invalid
// for a password of no possible length, and password.ErrBusy when
// hashing capacity is exhausted.
//
// The login takes its place in the hash pool first, before any database
// work: the pool is what bounds how many logins can be served, so one it
// would refuse anyway is refused at once, without holding a connection or
// queueing on the login counters' row locks. Without
// this, a storm queued there until the callers' deadlines passed and most
// answers were 503s after seconds; now the excess gets a 429 at once. The
// place is kept until the login's last transaction, so all of a login's
// database work is bounded by the pool as well. The decision depends on load only, never on the email or
// password, so it reveals nothing about accounts; a refused attempt checks
// no password, changes no state, and is counted (reason "busy") but not
// audited.
func (s *Service) Login(ctx context.Context, in LoginInput) (Tokens, error) {
	pw, err := password.Normalize(in.Password)
	if err != nil {
		return Tokens{}, err
	}
	ticket, err := s.hash.Admit(ctx)
	if err != nil {
		s.ctr.LoginFailed(ctx, "busy")
		return Tokens{}, err
	}
	defer ticket.Release()
	email := NormalizeEmail(in.Email)
	now := s.now().UTC()
	user, hash, err := s.admitLogin(ctx, email, in.ClientIP, now)
	if err != nil {
		return Tokens{}, err
	}
	ok, rehash, err := s.verifyPassword(ctx, ticket.Verify, pw, in.Password, hash)
	if err != nil {
		if errors.Is(err, password.ErrBusy) {
			s.ctr.LoginFailed(ctx, "busy")
		}
		// Shed or cancelled before the password was checked: give the attempt back.
		if rerr := s.store.InTx(ctx, func(tx Tx) error {
			return s.releaseAttempt(ctx, tx, email, in.ClientIP, false, now)
		}); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return Tokens{}, err
	}
	if !ok || user.Disabled() {
		// A disabled user's login fails exactly as a wrong password does,
		// after the same work, and counts against the throttle as one.
		return Tokens{}, s.loginFailed(ctx, user, email, in.ClientIP, failureReason(user, ok), now)
	}
	newHash := ""
	if rehash {
		// Best effort: a busy pool only postpones the upgrade to a later login.
		newHash, _ = s.hash.Hash(ctx, pw)
	}
	// The password is proven, so the attempt is given back first, in a
	// transaction of its own: the counter rows (one of them shared by every
	// login from the client's network) are then locked only for that short
	// transaction, not also for the length of the login's own below. With
	// MFA on, the password alone does not clear the client's failures: else
	// whoever has the password could guess codes forever, clearing the
	// count with the password between guesses.
	if err := s.store.InTx(ctx, func(tx Tx) error {
		return s.releaseAttempt(ctx, tx, email, in.ClientIP, !user.MFAEnabled, now)
	}); err != nil {
		return Tokens{}, err
	}
	var out Tokens
	err = s.store.InTx(ctx, func(tx Tx) error {
		// The user was read before the password check, without a lock; a
		// role change may have committed since. Read it again under the lock
		// (the user's row comes first in the package doc's lock order), so
		// the token carries the roles the user has when it is issued.
		u, err := tx.LockUserToIssue(ctx, user.ID)
		if err != nil {
			return err
		}
		if u.Disabled() {
			return errDisabledMeanwhile
		}
		if newHash != "" {
			if err := tx.SetPasswordHash(ctx, u.ID, newHash, now); err != nil {
				return err
			}
		}
		if u.MFAEnabled {
			out, err = s.challenge(ctx, tx, u, in.ClientIP, now)
			return err
		}
		if out, err = s.startFamily(ctx, tx, u, passwordOnly, now); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventLogin, Actor: user.ID, Resource: UserResource(user.ID),
			ClientIP: in.ClientIP, Outcome: OutcomeSuccess, At: now})
	})
	if errors.Is(err, errDisabledMeanwhile) {
		return Tokens{}, s.loginFailed(ctx, user, email, in.ClientIP, "user_disabled", now)
	}
	if err != nil {
		return Tokens{}, err
	}
	if out.MFAToken != "" {
		s.ctr.Event(ctx, "login", "mfa_required")
		return out, nil
	}
	s.ctr.Event(ctx, "login", "ok")
	return out, nil
}

// failureReason is the audit and counter reason of a failed password check
// (or a right password of a disabled user, passwordOK).
func failureReason(user User, passwordOK bool) string {
	switch {
	case user.ID == "":
		return "unknown_email"
	case passwordOK:
		return "user_disabled"
	}
	return "bad_password"
}

// errDisabledMeanwhile ends the transaction of a login whose user was
// disabled after the password check: it issues nothing.
var errDisabledMeanwhile = errors.New("user disabled during the login")

// verifyPassword checks pw, the normalised form of typed, against the
// stored hash (hash "" stands for an unknown account and is checked against
// a dummy). A password set before passwords were normalised was hashed as
// typed, so if pw does not match and typed differs from it, typed is
// checked too, and a match asks for a rehash, which stores the normalised
// form. Whether the second check runs depends on the input only, never on
// the account, so the time taken reveals nothing. verify is Hasher.Verify or
// a Ticket's.
func (s *Service) verifyPassword(ctx context.Context, verify func(context.Context, string, string) (bool, bool, error),
	pw, typed, hash string) (ok, rehash bool, err error) {
	ok, rehash, err = verify(ctx, pw, hash)
	if ok || err != nil || typed == pw || utf8.RuneCountInString(typed) > password.MaxLength {
		return ok, rehash, err
	}
	ok, _, err = verify(ctx, typed, hash)
	return ok, ok, err
}

// admitLogin loads the user and counts the attempt against the account, the
// account from the client's network, and that network, or refuses it if any
// of them is throttled. hash is "" when no user has the email.
//
// The counter rows stay locked until the transaction ends, and every login
// from one network shares one of them, so the transaction does as little as
// it can while they are locked: the user is read first, the counters are
// locked in one statement and saved in one round trip, and a refusal is
// audited afterwards, in a transaction of its own (a refusal changes no
// counter, so nothing is lost by not committing the two together).
func (s *Service) admitLogin(ctx context.Context, email, ip string, now time.Time) (User, string, error) {
	var (
		user  User
		hash  string
		wait  time.Duration
		scope string
	)
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		user, hash, err = tx.UserByEmail(ctx, email)
		if errs.KindOf(err) == errs.NotFound {
			user, hash, err = User{}, "", nil
		}
		if err != nil {
			return err
		}
		wait, scope, err = s.reserveAttempt(ctx, tx, email, ip, now)
		return err
	})
	if err != nil {
		return User{}, "", err
	}
	if wait > 0 {
		err := s.store.InTx(ctx, func(tx Tx) error {
			return tx.Audit(ctx, AuditEvent{Action: EventLoginThrottled, ClientIP: ip, Outcome: OutcomeDenied, Reason: "throttled_" + scope,
				Detail: map[string]string{"email": email}, At: now})
		})
		if err != nil {
			return User{}, "", err
		}
		s.ctr.LoginFailed(ctx, "throttled_"+scope)
		return User{}, "", errs.Throttled("login_throttled", "too many failed logins; try again later", wait)
	}
	return user, hash, nil
}

// loginFailed records a failed login for reason (failureReason's, or a
// one-time code's: "bad_otp", "otp_replayed") and returns
// ErrInvalidCredentials.
func (s *Service) loginFailed(ctx context.Context, user User, email, ip, reason string, now time.Time) error {
	err := s.store.InTx(ctx, func(tx Tx) error {
		return tx.Audit(ctx, AuditEvent{Action: EventLoginFailed, Resource: UserResource(user.ID), ClientIP: ip,
			Outcome: OutcomeFailure, Reason: reason, Detail: map[string]string{"email": email}, At: now})
	})
	s.ctr.LoginFailed(ctx, reason)
	if err != nil {
		return err
	}
	return ErrInvalidCredentials
}
