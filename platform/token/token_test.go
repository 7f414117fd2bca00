package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/token"
)

const (
	issuer   = "bastion"
	audience = "bastion-api"
	userID   = "0b6e2f5c-7a51-4d0e-9c3b-2d8f1a4e6b70"
	tokenID  = "7c1d1f2e-59a8-4a3a-9f4e-0c1b2d3e4f50"
)

// newClock returns a settable time source to share between the signer, the
// key set and the verifier, so time-based tests neither sleep nor flake at
// second boundaries.
func newClock() *grpctest.Clock { return grpctest.NewClock(time.Unix(1_900_000_000, 0)) }

// fixture is one auth service (key store, signer) and one verifier that
// fetches the auth service's JWKS directly.
type fixture struct {
	clock    *grpctest.Clock
	ks       *token.KeyStore
	signer   *token.Signer
	keys     *token.KeySet
	verifier *token.Verifier
	rev      *token.RevocationList
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	c := newClock()
	ks, err := token.OpenKeyStore(t.TempDir(), c.Now)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: c, ks: ks, rev: token.NewRevocationList()}
	f.signer = token.NewSigner(ks, token.SignerConfig{Issuer: issuer, Audience: audience, Now: c.Now})
	f.keys = token.NewKeySet(func(context.Context) ([]token.JWK, error) { return ks.PublicKeys(), nil }, token.KeySetConfig{Now: c.Now})
	f.verifier = token.NewVerifier(f.keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: c.Now}, f.rev)
	return f
}

// sign issues a token for userID, failing the test on error.
func (f *fixture) sign(t testing.TB, roles ...string) (string, token.Claims) {
	t.Helper()
	raw, c, err := f.signer.Sign(userID, roles)
	if err != nil {
		t.Fatalf("Sign(%q, %v) = %v", userID, roles, err)
	}
	return raw, c
}

// claims returns a valid claim set at the fixture's time, changed by mut.
func (f *fixture) claims(mut func(map[string]any)) map[string]any {
	now := f.clock.Now().Unix()
	c := map[string]any{"iss": issuer, "aud": []string{audience}, "sub": userID, "exp": now + 900, "iat": now, "nbf": now, "jti": tokenID, "roles": []string{"user"}}
	if mut != nil {
		mut(c)
	}
	return c
}

// header returns a valid JOSE header naming the signing key, changed by mut.
func (f *fixture) header(mut func(map[string]any)) map[string]any {
	kid, _ := f.ks.Active()
	h := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
	if mut != nil {
		mut(h)
	}
	return h
}

func b64(v any) string {
	raw, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// forge builds a token with any header and claims: unsigned for alg "none",
// HMAC-SHA256 with hmacKey for "HS256", Ed25519 with priv otherwise. It is
// what an attacker can do without the auth service.
func forge(header, claims map[string]any, priv ed25519.PrivateKey, hmacKey []byte) string {
	signing := b64(header) + "." + b64(claims)
	switch header["alg"] {
	case "none":
		return signing + "."
	case "HS256":
		m := hmac.New(sha256.New, hmacKey)
		m.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	default:
		return signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(signing)))
	}
}

// wantRefused fails t unless err is the generic unauthenticated refusal with
// the given reason.
func wantRefused(t *testing.T, what string, err error, reason string) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || e.Kind != errs.Unauthenticated || e.Reason != reason {
		t.Fatalf("%s = %v, want unauthenticated %q", what, err, reason)
	}
	if e.Msg != "invalid token" || e.Err != nil || errs.SafeMessage(err) != "invalid token" {
		t.Errorf("%s: message %q (cause %v) says more than \"invalid token\"", what, e.Msg, e.Err)
	}
}
