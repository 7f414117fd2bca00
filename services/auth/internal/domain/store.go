package domain

import (
	"context"
	"time"
)

// Family is the chain of refresh tokens descended from one login. Reuse of a
// spent token revokes the whole family.
type Family struct {
	ID        string
	UserID    string
	AMR       []string // how the login that began it was proven; its refreshes keep it
	CreatedAt time.Time
	RevokedAt time.Time // zero while the family is alive
}

// TOTPState is a user's TOTP enrolment. The secrets are sealed
// (mfa.Sealer): the store never sees one in clear.
type TOTPState struct {
	Secret    []byte    // the active secret, sealed; nil while MFA is off
	Pending   []byte    // the secret of an enrolment not yet verified, sealed; nil if none
	PendingAt time.Time // when that enrolment began
	EnabledAt time.Time // when MFA was turned on; zero while it is off
	LastStep  int64     // the newest time step accepted: its code, and every older one, are refused
}

// Enabled reports whether MFA is on.
func (s TOTPState) Enabled() bool { return s.Secret != nil }

// MFATicket is the stored form of the ticket a login with the right
// password gets when MFA is on: only the SHA-256 of its value.
type MFATicket struct {
	Hash      []byte
	UserID    string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// RefreshToken is the stored form of an opaque refresh token: only the
// SHA-256 of its value, never the value. It remembers the access token
// issued beside it, so that revoking the family can revoke that too.
type RefreshToken struct {
	Hash            []byte // SHA-256 of the raw token bytes
	FamilyID        string
	UserID          string
	IssuedAt        time.Time
	ExpiresAt       time.Time
	UsedAt          time.Time // zero until it is spent
	AccessTokenID   string    // jti of the access token issued with it
	AccessExpiresAt time.Time // exp of that access token
}

// Session is a live refresh-token family as its user sees it.
type Session struct {
	ID         string    // the family's id
	CreatedAt  time.Time // the login that began it
	LastUsedAt time.Time // its newest token: the login or the latest refresh
}

// UserCursor is where a page of the user list starts: after this user in
// the list's order (created_at, id).
type UserCursor struct {
	CreatedAt time.Time
	ID        string
}

// Revocation is one revoked access token, kept until it would have expired.
type Revocation struct {
	TokenID   string
	ExpiresAt time.Time
}

// Counter is a failed-login counter: for one account, for one account from
// one client network, or for one client network (an IPv4 address or an IPv6
// /64). Its window starts at the first attempt it counts.
type Counter struct {
	Scope       string // CounterAccount, CounterAccountClient or CounterIP
	Key         string
	Count       int
	WindowStart time.Time
}

// The scopes of login counters, in the order a login locks them.
const (
	CounterAccount       = "account"        // failures on the account, from all clients
	CounterAccountClient = "account_client" // failures on the account from one client network
	CounterIP            = "ip"             // accounts one client network has failed on
)

// UserResource names a user as an audit event's Resource.
func UserResource(id string) string { return "user/" + id }

// AuditEvent is a security event written to the audit log in the same
// transaction as the change it records.
type AuditEvent struct {
	Action   string            // one of the Event* constants
	Actor    string            // the user who acted, if known
	Resource string            // the user acted on (UserResource), if any
	ClientIP string            // the end client's IP, if known
	Outcome  string            // OutcomeSuccess, OutcomeFailure or OutcomeDenied
	Reason   string            // a stable code such as "bad_password"; may be empty
	Detail   map[string]string // never secrets
	At       time.Time
}

// The outcomes of audited events.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// The audit event types.
const (
	EventRegistered     = "auth.registered"
	EventLogin          = "auth.login"
	EventLoginFailed    = "auth.login_failed"
	EventLoginThrottled = "auth.login_throttled"
	EventRefreshReuse   = "auth.refresh_reuse"
	EventLogout         = "auth.logout"
	EventRolesChanged   = "auth.roles_changed"
	EventAdminBootstrap = "auth.admin_bootstrap"
	EventUserDisabled   = "auth.user_disabled"
	EventUserEnabled    = "auth.user_enabled"
	EventPasswordChange = "auth.password_changed"
	EventSessionRevoked = "auth.session_revoked"
	EventMFAEnrolment   = "auth.mfa_enrolment" // a TOTP enrolment began
	EventMFAEnabled     = "auth.mfa_enabled"   // a code of it was verified: MFA is on
)

// Store stores the auth service's state. Each method documents the
// error kinds it returns; anything else is Internal.
type Store interface {
	// InTx runs fn in one transaction and commits it if fn returns nil. fn
	// may run more than once if the database asks for a retry, so it must not
	// have effects outside the transaction.
	InTx(ctx context.Context, fn func(Tx) error) error
	// ActiveRevocations returns every revoked access token that has not
	// expired at now.
	ActiveRevocations(ctx context.Context, now time.Time) ([]Revocation, error)
	// PurgeExpired deletes what can no longer matter at now: expired
	// revocations, login counters whose window has passed (older than
	// window), and refresh tokens and families that have expired.
	PurgeExpired(ctx context.Context, now time.Time, window time.Duration) error
}

// Tx is the work that can be done inside one transaction.
type Tx interface {
	// CreateUser stores a new user and its password hash. It returns
	// errs.Conflict if the email is taken.
	CreateUser(ctx context.Context, u User, passwordHash string) error
	// UserByEmail returns the user with the (normalised) email and its
	// password hash, or errs.NotFound.
	UserByEmail(ctx context.Context, email string) (User, string, error)
	// UserByID returns the user, or errs.NotFound.
	UserByID(ctx context.Context, id string) (User, error)
	// LockAdmins locks every admin's row, in id order, and returns the ids
	// of the active ones, so that two role changes or disables cannot both
	// remove "the other" last active admin.
	LockAdmins(ctx context.Context) ([]string, error)
	// LockUser locks the user's row for update and returns the user, or
	// errs.NotFound. Whoever changes what a user's tokens may carry (roles,
	// status, password) takes this lock first: it waits for the
	// login or refresh of the user holding the row and holds off later ones.
	LockUser(ctx context.Context, id string) (User, error)
	// LockUserToIssue locks the user's row against change and returns the
	// user, or errs.NotFound. A login takes it before it issues tokens, so
	// that the roles it signs stay the user's until it commits. The lock
	// also serialises one user's logins and refreshes, so that a waiting
	// LockUser gets its turn.
	LockUserToIssue(ctx context.Context, id string) (User, error)
	// LockTokenOwner does LockUserToIssue for the user the refresh token with
	// the hash was issued to, or returns errs.NotFound if there is no such
	// token. It is the first lock a refresh takes.
	LockTokenOwner(ctx context.Context, hash []byte) (User, error)
	// SetRoles replaces the user's roles and returns the changed user.
	SetRoles(ctx context.Context, id string, roles []string, now time.Time) (User, error)
	// SetPasswordHash replaces the user's password hash.
	SetPasswordHash(ctx context.Context, id, hash string, now time.Time) error
	// SetStatus sets the user's status (StatusActive or StatusDisabled) and
	// returns the changed user.
	SetStatus(ctx context.Context, id, status string, now time.Time) (User, error)
	// ListUsers returns up to limit users in the order (created_at, id),
	// starting after after (nil: from the first), only the one with email
	// when email is not "".
	ListUsers(ctx context.Context, after *UserCursor, email string, limit int) ([]User, error)

	// LockCounters locks the counters named by the Scope and Key of each of
	// keys (which must be distinct), in that order, creating empty ones
	// (Count 0) where there are none, and returns them in that order. It is
	// one round trip, since a login holds these locks until it commits.
	LockCounters(ctx context.Context, keys []Counter) ([]Counter, error)
	// SaveCounters stores the counters, in one round trip; a Count of 0
	// deletes one.
	SaveCounters(ctx context.Context, cs []Counter) error

	// CreateFamily stores a new refresh-token family.
	CreateFamily(ctx context.Context, f Family) error
	// InsertRefreshToken stores a refresh token.
	InsertRefreshToken(ctx context.Context, t RefreshToken) error
	// LockRefreshToken locks the family of the token with the hash and then
	// the token, or returns errs.NotFound. Concurrent callers for one token
	// are serialised.
	LockRefreshToken(ctx context.Context, hash []byte) (RefreshToken, Family, error)
	// MarkRefreshTokenUsed spends the token.
	MarkRefreshTokenUsed(ctx context.Context, hash []byte, at time.Time) error
	// FamilyOfAccessToken returns the id of the family whose refresh token
	// was issued to userID beside the access token tokenID, or errs.NotFound.
	FamilyOfAccessToken(ctx context.Context, userID, tokenID string) (string, error)
	// FamilyOfRefreshToken returns the id of the family of userID's refresh
	// token with the hash, or errs.NotFound if there is none: the token is
	// unknown or another user's.
	FamilyOfRefreshToken(ctx context.Context, userID string, hash []byte) (string, error)
	// RevokeFamily locks the family, marks it revoked and returns the access
	// tokens issued in it that are still unexpired at now. The tokens are
	// read once the lock is held, so they include one issued by a refresh of
	// the family that committed while RevokeFamily waited for the lock.
	RevokeFamily(ctx context.Context, familyID string, now time.Time) ([]Revocation, error)
	// RevokeFamilies does RevokeFamily for each of ids, locking them in id
	// order, and also returns, in id order, the ids of the families it
	// revoked: those still live.
	RevokeFamilies(ctx context.Context, ids []string, now time.Time) ([]string, []Revocation, error)
	// RevokeUserFamilies does RevokeFamily for every live family of a user.
	// The caller must hold the user's row (LockUser), so that no login or
	// refresh of the user can commit a family or token it would not see.
	RevokeUserFamilies(ctx context.Context, userID string, now time.Time) ([]Revocation, error)
	// RevokeUserFamiliesExcept does RevokeUserFamilies but leaves the family
	// keep alive ("" keeps none), under the same condition.
	RevokeUserFamiliesExcept(ctx context.Context, userID, keep string, now time.Time) ([]Revocation, error)
	// Sessions returns up to limit of the user's live families, most
	// recently used first: not revoked, with a refresh token that is unspent
	// and unexpired at now.
	Sessions(ctx context.Context, userID string, now time.Time, limit int) ([]Session, error)
	// LiveFamily returns the user's family with id if it is live at now (as
	// Sessions counts them), or errs.NotFound: no such family, another
	// user's, revoked or expired.
	LiveFamily(ctx context.Context, userID, id string, now time.Time) (Family, error)
	// RevokeAccessTokens records revocations and announces them to every
	// replica once the transaction commits. Known ids are left as they are.
	RevokeAccessTokens(ctx context.Context, revs []Revocation) error

	// TOTP returns the user's TOTP enrolment, or errs.NotFound if they never
	// began one. The caller holds the user's row (LockUser,
	// LockUserToIssue), which every change of it takes first, so what it
	// reads stays true until the caller commits.
	TOTP(ctx context.Context, userID string) (TOTPState, error)
	// SaveTOTP stores the user's TOTP enrolment, creating it if needed. The
	// caller holds the user's row.
	SaveTOTP(ctx context.Context, userID string, st TOTPState, now time.Time) error
	// CreateMFATicket stores a new ticket.
	CreateMFATicket(ctx context.Context, t MFATicket) error
	// SpendMFATicket marks the ticket with the hash used at now and returns
	// it, or returns errs.NotFound if there is no such ticket or it was used
	// before: of concurrent spends of one ticket, exactly one succeeds. The
	// caller checks the expiry.
	SpendMFATicket(ctx context.Context, hash []byte, now time.Time) (MFATicket, error)

	// Audit appends a security event to the audit log.
	Audit(ctx context.Context, e AuditEvent) error
}
