package token

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

// Sign issues an access token for userID with roles.
func (s *Signer) Sign(userID string, roles []string) (string, Claims, error) {
	if userID == "" || len(roles) == 0 {
		return "", Claims{}, errors.New("token: a token needs a subject and roles")
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", Claims{}, err
	}
	id[6] = id[6]&0x0f | 0x40 // a version-4 UUID
	id[8] = id[8]&0x3f | 0x80
	jti := hex.EncodeToString(id[:4]) + "-" + hex.EncodeToString(id[4:6]) + "-" + hex.EncodeToString(id[6:8]) + "-" + hex.EncodeToString(id[8:10]) + "-" + hex.EncodeToString(id[10:])
	now := s.cfg.Now().Truncate(time.Second)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.TTL)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		Roles: append([]string(nil), roles...),
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
