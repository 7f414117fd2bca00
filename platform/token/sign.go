package token

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Type is the JOSE typ of an access token (RFC 9068). Tokens of any other
// type (a refresh token, an ID token) can never pass as access tokens.
const Type = "at+jwt"

// DefaultTTL is the lifetime of an access token.
const DefaultTTL = 15 * time.Minute

// Claims are the claims of an access token.
type Claims struct {
	jwt.RegisteredClaims
	Roles []string `json:"roles"`
	// AMR names how the login was proven (RFC 8176): "pwd", and "otp" after a
	// one-time code. Staff operations need "otp" (platform/rbac).
	AMR []string `json:"amr,omitempty"`
}

// SignerConfig configures a Signer.
type SignerConfig struct {
	Issuer   string
	Audience string
	TTL      time.Duration // DefaultTTL if zero
	Now      func() time.Time
}

// Signer issues access tokens with the active key of a KeyStore.
type Signer struct {
	ks  *KeyStore
	cfg SignerConfig
}

// NewSigner returns a Signer.
func NewSigner(ks *KeyStore, cfg SignerConfig) *Signer {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Signer{ks: ks, cfg: cfg}
}

// TTL returns the lifetime of the tokens the signer issues.
func (s *Signer) TTL() time.Duration { return s.cfg.TTL }

// Sign issues an access token for userID (a user UUID) with roles. It refuses
// what every verifier would refuse (a subject that is not a lower-case UUID,
// no roles, an empty role, no issuer or audience), so a wiring mistake fails
// here, loudly, instead of as a stream of 401s.
func (s *Signer) Sign(userID string, roles []string) (string, Claims, error) {
	return s.SignAMR(userID, roles, nil)
}

// SignAMR is Sign with an amr claim: the authentication methods the login
// used (identity.AMRPassword, identity.AMROTP). It refuses an empty method,
// which every verifier would refuse.
func (s *Signer) SignAMR(userID string, roles, amr []string) (string, Claims, error) {
	if !uuidPattern.MatchString(userID) || !validRoles(roles) {
		return "", Claims{}, errors.New("token: a token needs a user UUID and non-empty roles")
	}
	if !validAMR(amr) {
		return "", Claims{}, errors.New("token: an amr claim names no empty method")
	}
	if s.cfg.Issuer == "" || s.cfg.Audience == "" {
		return "", Claims{}, errors.New("token: the signer has no issuer or audience")
	}
	jti, err := uuid.NewRandom()
	if err != nil {
		return "", Claims{}, err
	}
	now := s.cfg.Now().Truncate(time.Second)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.TTL)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti.String(),
		},
		Roles: append([]string(nil), roles...),
		AMR:   append([]string(nil), amr...),
	}
	kid, priv := s.ks.Active()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	t.Header["typ"] = Type
	raw, err := t.SignedString(priv)
	if err != nil {
		return "", Claims{}, err
	}
	return raw, c, nil
}
