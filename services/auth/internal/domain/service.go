package domain

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// AccessToken is a signed access token and the claims the service must
// remember about it.
type AccessToken struct {
	Raw       string    // the compact JWT
	ID        string    // its jti
	IssuedAt  time.Time // its iat
	ExpiresAt time.Time // its exp
}

// Issuer signs access tokens (platform/token.Signer, adapted).
type Issuer interface {
	// Issue signs an access token for userID with roles and amr, the
	// methods the login was proven with (identity.AMRPassword, AMROTP).
	Issue(userID string, roles, amr []string) (AccessToken, error)
}

// Counters records security events for the dashboards
// (platform/telemetry.Security satisfies it; nil is allowed).
type Counters interface {
	LoginFailed(ctx context.Context, reason string)
	TokenRejected(ctx context.Context, reason string)
	Event(ctx context.Context, event, reason string)
}

// Config holds the service's policy knobs. The login throttle's three
// limits are explained in throttle.go.
type Config struct {
	MaxFailures        int           // failed logins on one account from one client network per window; default 5
	AccountMaxFailures int           // failed logins on one account from all clients per window; default 50, or MaxFailures if higher
	IPMaxFailures      int           // accounts one client network may fail on per window; default 4×MaxFailures
	Window             time.Duration // the counting window; default 15 min
	RefreshTTL         time.Duration // refresh-token lifetime; default 30 days
	MFATicketTTL       time.Duration // how long a login's MFA ticket lasts; default 5 min
}

func (c Config) withDefaults() Config {
	if c.MaxFailures <= 0 {
		c.MaxFailures = 5
	}
	if c.AccountMaxFailures <= 0 {
		// A load test that raises MaxFailures to keep its logins unthrottled
		// should not then meet a lower ceiling it never set.
		c.AccountMaxFailures = max(50, c.MaxFailures)
	}
	if c.IPMaxFailures <= 0 {
		c.IPMaxFailures = 4 * c.MaxFailures
	}
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.MFATicketTTL <= 0 {
		c.MFATicketTTL = 5 * time.Minute
	}
	return c
}

// Deps are the service's collaborators.
type Deps struct {
	Store       Store
	Hasher      *password.Hasher
	Policy      *password.Policy // the rule for new passwords
	Issuer      Issuer
	Sealer      *mfa.Sealer      // seals TOTP secrets at rest (BANK_TOTP_KEY_FILE)
	Revocations *Revocations     // told about every revocation after its commit
	PageTokens  *pagetoken.Codec // optional: a random key, so tokens last as long as the process
	Counters    Counters         // optional
	Now         func() time.Time
}

// Service implements the auth use cases.
type Service struct {
	cfg   Config
	store Store
	hash  *password.Hasher
	pol   *password.Policy
	iss   Issuer
	seal  *mfa.Sealer
	revs  *Revocations
	pages *pagetoken.Codec
	ctr   Counters
	now   func() time.Time
}

// New returns a Service. Repo, Hasher, Policy, Issuer, Sealer and
// Revocations are required.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Hasher == nil || d.Policy == nil || d.Issuer == nil || d.Sealer == nil || d.Revocations == nil {
		return nil, errors.New("domain: Repo, Hasher, Policy, Issuer, Sealer and Revocations are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Counters == nil {
		d.Counters = nopCounters{}
	}
	if d.PageTokens == nil {
		key := make([]byte, pagetoken.MinKeySize)
		_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
		d.PageTokens, _ = pagetoken.New(key)
	}
	return &Service{cfg: cfg.withDefaults(), store: d.Store, hash: d.Hasher, pol: d.Policy, iss: d.Issuer, seal: d.Sealer,
		revs: d.Revocations, pages: d.PageTokens, ctr: d.Counters, now: d.Now}, nil
}

// Config returns the effective configuration, defaults applied.
func (s *Service) Config() Config { return s.cfg }

// RegisterInput is a registration request.
type RegisterInput struct {
	Email, Password, DisplayName string
	ClientIP                     string
}

// Register creates a user with the role "user". It returns errs.Conflict if
// the email (case-insensitively) is taken, errs.Invalid for a password the
// password.Policy refuses, and password.ErrBusy when hashing capacity is
// exhausted. The password is stored in its normalised form.
func (s *Service) Register(ctx context.Context, in RegisterInput) (User, error) {
	email := NormalizeEmail(in.Email)
	if email == "" || in.DisplayName == "" {
		return User{}, errs.New(errs.Invalid, "email and display name are required")
	}
	pw, err := s.pol.Check(in.Password)
	if err != nil {
		return User{}, err
	}
	hash, err := s.hash.Hash(ctx, pw)
	if err != nil {
		return User{}, err
	}
	now := s.now().UTC()
	u := User{ID: uuid.NewString(), Email: email, DisplayName: in.DisplayName,
		Roles: []string{identity.RoleUser}, Status: StatusActive, CreatedAt: now, UpdatedAt: now}
	err = s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.CreateUser(ctx, u, hash); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEvent{Action: EventRegistered, Actor: u.ID, Resource: UserResource(u.ID),
			ClientIP: in.ClientIP, Outcome: OutcomeSuccess, At: now})
	})
	if errs.KindOf(err) == errs.Conflict {
		s.ctr.Event(ctx, "registration", "duplicate")
		return User{}, errs.Wrap(errs.Conflict, "email already registered", err)
	}
	if err != nil {
		return User{}, err
	}
	s.ctr.Event(ctx, "registration", "ok")
	return u, nil
}

// GetMe returns the calling user. It returns errs.Unauthenticated if the
// token's user no longer exists.
func (s *Service) GetMe(ctx context.Context, caller identity.User) (User, error) {
	var u User
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		u, err = tx.UserByID(ctx, caller.ID)
		return err
	})
	if errs.KindOf(err) == errs.NotFound {
		return User{}, errs.Wrap(errs.Unauthenticated, "invalid token", err)
	}
	return u, err
}

type nopCounters struct{}

func (nopCounters) LoginFailed(context.Context, string)   {}
func (nopCounters) TokenRejected(context.Context, string) {}
func (nopCounters) Event(context.Context, string, string) {}
