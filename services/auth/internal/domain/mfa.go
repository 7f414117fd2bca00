package domain

import (
	"context"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
)

// totpIssuer names the bank in an authenticator app's list.
const totpIssuer = "Bastion"

// withOTP is the amr of a login proven by a password and a one-time code.
var withOTP = []string{identity.AMRPassword, identity.AMROTP}

// ErrInvalidMFAToken answers a LoginMFA whose ticket is unknown, spent or
// expired: the client starts the login again.
var ErrInvalidMFAToken = errs.Reasoned(errs.Unauthenticated, "invalid_mfa_token", "invalid or expired mfa token")

// ErrMFAReenrolment refuses a new TOTP enrolment by a session that was not
// proven with a code while MFA is on: a stolen password-only session (one
// from before MFA was turned on) must not replace the second factor.
var ErrMFAReenrolment = errs.Reasoned(errs.Permission, "mfa_required",
	"MFA is on: log in with a one-time code to enrol a new authenticator")

// ErrNoEnrolment refuses a verification when no enrolment is in progress.
var ErrNoEnrolment = errs.Reasoned(errs.Refused, "no_enrolment", "no TOTP enrolment in progress: start one first")

// Enrolment is a new TOTP secret, shown to its user once.
type Enrolment struct {
	Secret string // base32, for typing in
	URI    string // otpauth://, for a QR code
}

// EnrollTOTP starts (or restarts) the caller's TOTP enrolment: a new secret
// is stored sealed as pending, beside any active one, which keeps working
// until VerifyTOTP sees a code of the new one. While MFA is on only a
// session proven with a code may do it (ErrMFAReenrolment).
func (s *Service) EnrollTOTP(ctx context.Context, caller identity.User, clientIP string) (Enrolment, error) {
	now := s.now().UTC()
	secret := mfa.NewSecret()
	var email string
	err := s.store.InTx(ctx, func(tx Tx) error {
		u, st, err := s.lockTOTP(ctx, tx, caller.ID)
		if err != nil {
			return err
		}
		if st.Enabled() && !caller.HasAMR(identity.AMROTP) {
			return ErrMFAReenrolment
		}
		email = u.Email
		st.Pending, st.PendingAt = s.seal.Seal(u.ID, secret), now
		if err := tx.SaveTOTP(ctx, u.ID, st, now); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventMFAEnrolment, Actor: u.ID, Resource: UserResource(u.ID), ClientIP: clientIP,
			Outcome: OutcomeSuccess, At: now})
	})
	if err != nil {
		if errs.KindOf(err) == errs.Permission {
			s.ctr.Event(ctx, "mfa_enrolment", "refused")
		}
		return Enrolment{}, err
	}
	uri, err := secret.URI(totpIssuer, email)
	if err != nil {
		return Enrolment{}, errs.Wrap(errs.Internal, "", err)
	}
	s.ctr.Event(ctx, "mfa_enrolment", "started")
	return Enrolment{Secret: secret.Base32(), URI: uri}, nil
}

// VerifyTOTP checks a code of the caller's pending secret and, if it is
// right, makes that secret the active one: MFA is on from then on, and the
// code's step is spent. It returns ErrNoEnrolment, or errs.Invalid for a
// code that is not right.
func (s *Service) VerifyTOTP(ctx context.Context, caller identity.User, code, clientIP string) (User, error) {
	now := s.now().UTC()
	var out User
	wrong := false
	err := s.store.InTx(ctx, func(tx Tx) error {
		wrong = false
		u, st, err := s.lockTOTP(ctx, tx, caller.ID)
		if err != nil {
			return err
		}
		if st.Pending == nil {
			return ErrNoEnrolment
		}
		secret, err := s.seal.Open(u.ID, st.Pending)
		if err != nil {
			return errs.Wrap(errs.Internal, "", err)
		}
		step, ok := mfa.Match(secret, code, now)
		if !ok {
			wrong = true
			return tx.Audit(ctx, AuditEvent{Action: EventMFAEnabled, Actor: u.ID, Resource: UserResource(u.ID), ClientIP: clientIP,
				Outcome: OutcomeFailure, Reason: "bad_otp", At: now})
		}
		// A new secret starts a new sequence of steps: its own code is the
		// newest one spent.
		st.Secret, st.EnabledAt, st.LastStep = st.Pending, now, step
		st.Pending, st.PendingAt = nil, time.Time{}
		if err := tx.SaveTOTP(ctx, u.ID, st, now); err != nil {
			return err
		}
		out = u
		out.MFAEnabled = true
		return tx.Audit(ctx, AuditEvent{Action: EventMFAEnabled, Actor: u.ID, Resource: UserResource(u.ID), ClientIP: clientIP,
			Outcome: OutcomeSuccess, At: now})
	})
	switch {
	case err != nil:
		return User{}, err
	case wrong:
		s.ctr.Event(ctx, "mfa_enrolment", "bad_otp")
		return User{}, errs.InvalidField("code", "is not a current code of the new secret")
	}
	s.ctr.Event(ctx, "mfa_enrolment", "enabled")
	return out, nil
}

// lockTOTP locks the user's row, as everything that reads or changes a
// TOTP enrolment does first, and returns the user and the enrolment (zero
// if there is none). A user who is gone or disabled is Unauthenticated: the
// token outlived them by less than a second.
func (s *Service) lockTOTP(ctx context.Context, tx Tx, userID string) (User, TOTPState, error) {
	u, err := tx.LockUser(ctx, userID)
	if errs.KindOf(err) == errs.NotFound || err == nil && u.Disabled() {
		return User{}, TOTPState{}, errs.Wrap(errs.Unauthenticated, "invalid token", err)
	} else if err != nil {
		return User{}, TOTPState{}, err
	}
	st, err := tx.TOTP(ctx, u.ID)
	if errs.KindOf(err) == errs.NotFound {
		return u, TOTPState{}, nil
	}
	return u, st, err
}

// challenge ends the password step of a login of u, whose MFA is on and
// whose row the caller holds: it stores a ticket for LoginMFA and returns
// it, with no token.
func (s *Service) challenge(ctx context.Context, tx Tx, u User, clientIP string, now time.Time) (Tokens, error) {
	raw, hash := newRefreshToken() // the same opaque form: 32 random bytes, stored hashed
	err := tx.CreateMFATicket(ctx, MFATicket{Hash: hash, UserID: u.ID, IssuedAt: now, ExpiresAt: now.Add(s.cfg.MFATicketTTL)})
	if err != nil {
		return Tokens{}, err
	}
	err = tx.Audit(ctx, AuditEvent{Action: EventLogin, Actor: u.ID, Resource: UserResource(u.ID), ClientIP: clientIP,
		Outcome: OutcomeSuccess, Reason: "mfa_required", At: now})
	return Tokens{MFAToken: raw, ExpiresIn: s.cfg.MFATicketTTL}, err
}

// LoginMFAInput is the second step of a login with MFA.
type LoginMFAInput struct {
	Ticket   string // the MFAToken Login returned
	Code     string // the authenticator's code now
	ClientIP string
}

// LoginMFA spends the ticket of a login whose password was right and, if
// the code is right, issues a token pair with amr ["pwd","otp"], which
// staff operations need. The ticket is spent whatever the code: a wrong
// code means the password again. It returns ErrInvalidMFAToken for a ticket
// that is unknown, spent or expired; and, as a wrong password does,
// ErrInvalidCredentials for a code that is wrong, or right but already used
// (each code is accepted once: its step must be newer than the last one
// accepted), or when the user was disabled meanwhile, counting the attempt
// against the login throttle, which can refuse it with errs.RateLimited.
func (s *Service) LoginMFA(ctx context.Context, in LoginMFAInput) (Tokens, error) {
	hash, ok := hashRefreshToken(in.Ticket)
	if !ok {
		s.ctr.TokenRejected(ctx, "mfa_ticket_malformed")
		return Tokens{}, ErrInvalidMFAToken
	}
	now := s.now().UTC()
	var user User
	err := s.store.InTx(ctx, func(tx Tx) error {
		t, err := tx.SpendMFATicket(ctx, hash, now)
		if err != nil {
			return err
		}
		if !t.ExpiresAt.After(now) {
			return errs.New(errs.NotFound, "expired")
		}
		user, err = tx.UserByID(ctx, t.UserID)
		return err
	})
	if errs.KindOf(err) == errs.NotFound {
		s.ctr.TokenRejected(ctx, "mfa_ticket_invalid")
		return Tokens{}, ErrInvalidMFAToken
	} else if err != nil {
		return Tokens{}, err
	}
	if _, _, err := s.admitLogin(ctx, user.Email, in.ClientIP, now); err != nil {
		return Tokens{}, err
	}
	var (
		out    Tokens
		reason string // why the code was refused; "" on success
	)
	err = s.store.InTx(ctx, func(tx Tx) error {
		out, reason = Tokens{}, ""
		u, why, err := s.spendCode(ctx, tx, user.ID, in.Code, now)
		if reason = why; err != nil || reason != "" {
			return err
		}
		if out, err = s.startFamily(ctx, tx, u, withOTP, now); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventLogin, Actor: u.ID, Resource: UserResource(u.ID), ClientIP: in.ClientIP,
			Outcome: OutcomeSuccess, At: now, Detail: map[string]string{"amr": "pwd,otp"}})
	})
	if err != nil {
		return Tokens{}, err
	}
	if reason != "" {
		return Tokens{}, s.loginFailed(ctx, user, user.Email, in.ClientIP, reason, now)
	}
	if err := s.store.InTx(ctx, func(tx Tx) error {
		return s.releaseAttempt(ctx, tx, user.Email, in.ClientIP, true, now)
	}); err != nil {
		return Tokens{}, err
	}
	s.ctr.Event(ctx, "login", "ok_mfa")
	return out, nil
}

// spendCode checks code against the user's active secret under the user's
// row lock (taken here, as a login takes it, so the roles it returns are
// the ones to sign) and records its step as spent. It returns the locked
// user and the reason a code is refused, or "": "bad_otp", "otp_replayed"
// (a step not newer than the last accepted), "user_disabled", "mfa_off".
func (s *Service) spendCode(ctx context.Context, tx Tx, userID, code string, now time.Time) (User, string, error) {
	u, err := tx.LockUserToIssue(ctx, userID)
	if err != nil {
		return User{}, "", err
	}
	if u.Disabled() {
		return u, "user_disabled", nil
	}
	st, err := tx.TOTP(ctx, u.ID)
	if errs.KindOf(err) == errs.NotFound || err == nil && !st.Enabled() {
		return u, "mfa_off", nil
	} else if err != nil {
		return User{}, "", err
	}
	secret, err := s.seal.Open(u.ID, st.Secret)
	if err != nil {
		return User{}, "", errs.Wrap(errs.Internal, "", err)
	}
	step, ok := mfa.Match(secret, code, now)
	switch {
	case !ok:
		return u, "bad_otp", nil
	case step <= st.LastStep:
		return u, "otp_replayed", nil
	}
	st.LastStep = step
	return u, "", tx.SaveTOTP(ctx, u.ID, st, now)
}

// EnsureAdminTOTP turns MFA on for the admin with email, with secret, if
// it is off: the dev runner enrols its bootstrap admin this way, so that
// staff operations work from the first start with BANK_STAFF_MFA required.
// An admin whose MFA is on already keeps their secret (it reports false),
// as EnsureAdmin never changes an existing password.
func (s *Service) EnsureAdminTOTP(ctx context.Context, email string, secret mfa.Secret) (bool, error) {
	now := s.now().UTC()
	enrolled := false
	err := s.store.InTx(ctx, func(tx Tx) error {
		enrolled = false
		found, _, err := tx.UserByEmail(ctx, NormalizeEmail(email))
		if err != nil {
			return err
		}
		u, st, err := s.lockTOTP(ctx, tx, found.ID)
		if err != nil || st.Enabled() {
			return err
		}
		if !u.IsAdmin() {
			return errs.New(errs.Conflict, "the admin email is not an admin's")
		}
		st.Secret, st.EnabledAt = s.seal.Seal(u.ID, secret), now
		if err := tx.SaveTOTP(ctx, u.ID, st, now); err != nil {
			return err
		}
		enrolled = true
		return tx.Audit(ctx, AuditEvent{Action: EventAdminBootstrap, Resource: UserResource(u.ID), Outcome: OutcomeSuccess, Reason: "totp_enrolled", At: now})
	})
	return enrolled, err
}
