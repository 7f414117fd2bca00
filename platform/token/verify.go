package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// Reasons a token is refused. They label metrics and logs; clients only ever
// see "invalid token".
const (
	ReasonMalformed     = "malformed"
	ReasonBadSignature  = "bad_signature"
	ReasonUnknownKid    = "unknown_kid"
	ReasonExpired       = "expired"
	ReasonNotYetValid   = "not_yet_valid"
	ReasonWrongIssuer   = "wrong_issuer"
	ReasonWrongAudience = "wrong_audience"
	ReasonWrongType     = "wrong_type"
	ReasonRevoked       = "revoked"
	ReasonTooLarge      = "too_large"
	ReasonBadClaims     = "bad_claims"
	ReasonTooLong       = "lifetime_too_long"
)

// DefaultMaxLifetime is the longest exp − iat a Verifier accepts when its
// config names none: the access-token lifetime the contract gives.
const DefaultMaxLifetime = 15 * time.Minute

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Issuer        string
	Audience      string
	Leeway        time.Duration // clock skew allowed; default 5 s
	Now           func() time.Time
	MaxTokenBytes int // default 4096
	// MaxLifetime is the longest exp − iat accepted, even with a valid
	// signature: the issuer's configured lifetime (BANK_ACCESS_TOKEN_TTL).
	// A token minted with a longer one (a leaked signing key, a bug, a
	// misconfigured issuer) is refused. Default DefaultMaxLifetime.
	MaxLifetime time.Duration
	// CacheSize bounds the verified tokens remembered to skip the signature
	// check on a token's next use (see verified); DefaultCacheSize if zero,
	// none if negative.
	CacheSize int
}

// Verifier checks access tokens.
type Verifier struct {
	keys   *KeySet
	cfg    VerifierConfig
	rev    Revocations
	parser *jwt.Parser
	cache  *verified // nil when caching is off
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// maxHeaderBytes caps the encoded JOSE header, before it is decoded.
const maxHeaderBytes = 512

// NewVerifier returns a Verifier. cfg.Issuer and cfg.Audience are required:
// without them every token is refused. rev may be nil when revocation is not
// followed (tests only).
func NewVerifier(keys *KeySet, cfg VerifierConfig, rev Revocations) *Verifier {
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxTokenBytes <= 0 {
		cfg.MaxTokenBytes = 4096
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithStrictDecoding(),
	)
	v := &Verifier{keys: keys, cfg: cfg, rev: rev, parser: p}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheSize > 0 {
		v.cache = newVerified(cfg.CacheSize)
	}
	return v
}

func refuse(reason string) error {
	return errs.Reasoned(errs.Unauthenticated, reason, "invalid token")
}

// Verify checks raw and returns the user it proves. Every failure is an
// errs.Unauthenticated error with the message "invalid token" whose Reason
// (one of the Reason constants) says why, for metrics and logs only.
func (v *Verifier) Verify(ctx context.Context, raw string) (identity.User, error) {
	// jwt skips the iss and aud checks when it expects none, so a verifier
	// configured without them would accept any issuer's tokens: refuse all.
	switch {
	case v.cfg.Issuer == "":
		return identity.User{}, refuse(ReasonWrongIssuer)
	case v.cfg.Audience == "":
		return identity.User{}, refuse(ReasonWrongAudience)
	case len(raw) > v.cfg.MaxTokenBytes:
		return identity.User{}, refuse(ReasonTooLarge)
	}
	var ck [32]byte
	if v.cache != nil {
		ck = cacheKey(raw)
		if u, ok := v.remembered(ctx, ck); ok {
			return u, nil
		}
	}
	if err := checkHeader(raw); err != nil {
		return identity.User{}, err
	}
	var c Claims
	var kid string
	var used ed25519.PublicKey
	_, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		key, err := v.keys.Key(ctx, kid)
		used = key
		return key, err
	})
	if err != nil {
		return identity.User{}, refuse(reasonOf(err))
	}
	if !uuidPattern.MatchString(c.Subject) || !uuidPattern.MatchString(c.ID) || !validRoles(c.Roles) || !validAMR(c.AMR) ||
		c.IssuedAt == nil || c.NotBefore == nil {
		return identity.User{}, refuse(ReasonBadClaims)
	}
	if c.ExpiresAt.Sub(c.IssuedAt.Time) > v.cfg.MaxLifetime {
		return identity.User{}, refuse(ReasonTooLong)
	}
	if v.rev != nil && v.rev.IsRevoked(c.ID) {
		return identity.User{}, refuse(ReasonRevoked)
	}
	u := identity.User{ID: c.Subject, Roles: c.Roles, AMR: c.AMR, TokenID: c.ID, ExpiresAt: c.ExpiresAt.Time}
	if v.cache != nil {
		v.cache.put(ck, verifiedEntry{user: u, kid: kid, key: used, nbf: c.NotBefore.Time}, v.cfg.Now())
	}
	return u, nil
}

// remembered returns the user of a token verified before, if it still
// passes everything that can change after a first check: the clock, the
// key its kid names, revocation. An entry that fails any of them is dropped
// and the token goes through the full check, which says why it fails.
func (v *Verifier) remembered(ctx context.Context, ck [32]byte) (identity.User, bool) {
	e, ok := v.cache.get(ck)
	if !ok {
		return identity.User{}, false
	}
	now := v.cfg.Now()
	live := now.Before(e.user.ExpiresAt.Add(v.cfg.Leeway)) && !now.Before(e.nbf.Add(-v.cfg.Leeway))
	if live && (v.rev == nil || !v.rev.IsRevoked(e.user.TokenID)) {
		if key, err := v.keys.Key(ctx, e.kid); err == nil && key.Equal(e.key) {
			return e.user, true
		}
	}
	v.cache.drop(ck)
	return identity.User{}, false
}

// validRoles reports whether roles names at least one role and no empty one.
func validRoles(roles []string) bool {
	return len(roles) > 0 && !slices.Contains(roles, "")
}

// maxAMR bounds the amr claim: RFC 8176 names a dozen methods, a login
// uses two.
const maxAMR = 8

// validAMR reports whether amr (which may be absent) names no empty method
// and not too many.
func validAMR(amr []string) bool {
	return len(amr) <= maxAMR && !slices.Contains(amr, "")
}

// checkHeader inspects the token's form and its JOSE header before any key
// is looked up: three base64url segments, exactly EdDSA, typ at+jwt, a kid,
// and none of the headers that would make a verifier fetch or trust a key
// named by the token itself.
func checkHeader(raw string) error {
	seg, _, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(raw, ".") != 2 || !compactJWS(raw) {
		return refuse(ReasonMalformed)
	}
	if len(seg) > maxHeaderBytes {
		return refuse(ReasonTooLarge)
	}
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return refuse(ReasonMalformed)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		return refuse(ReasonMalformed)
	}
	for _, forbidden := range []string{"jku", "x5u", "jwk", "x5c", "crit"} {
		if _, ok := h[forbidden]; ok {
			return refuse(ReasonMalformed)
		}
	}
	if alg, _ := h["alg"].(string); alg != "EdDSA" {
		return refuse(ReasonBadSignature)
	}
	if typ, _ := h["typ"].(string); !strings.EqualFold(typ, Type) && !strings.EqualFold(typ, "application/"+Type) {
		return refuse(ReasonWrongType)
	}
	if kid, _ := h["kid"].(string); !kidPattern.MatchString(kid) {
		return refuse(ReasonUnknownKid)
	}
	return nil
}

// compactJWS reports whether raw uses only the characters of a compact JWS:
// the base64url alphabet and the dots between segments. Go's base64
// decoders, even in strict mode, skip CR and LF, so without this a token
// with a line break in its signature would still verify: one credential
// with many spellings, which no cache or log keyed by the token expects.
func compactJWS(raw string) bool {
	for i := range len(raw) {
		c := raw[i]
		ok := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

func reasonOf(err error) string {
	var e *errs.Error
	switch {
	case errors.As(err, &e) && e.Reason != "":
		return e.Reason
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonWrongAudience
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonBadSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, jwt.ErrTokenInvalidClaims):
		return ReasonBadClaims
	default:
		return ReasonMalformed
	}
}

// ParseBearer extracts the token from an Authorization header value of the
// form "Bearer <token>" (scheme case-insensitive).
func ParseBearer(authorization string) (string, bool) {
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", false
	}
	return tok, true
}
