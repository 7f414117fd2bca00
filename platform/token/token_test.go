package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/token"
)

const (
	issuer   = "bastion"
	audience = "bastion-api"
	userID   = "0b6e2f5c-7a51-4d0e-9c3b-2d8f1a4e6b70"
)

type fixture struct {
	ks       *token.KeyStore
	signer   *token.Signer
	verifier *token.Verifier
	rev      *token.RevocationList
	now      time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ks, err := token.OpenKeyStore(t.TempDir(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ks: ks, rev: token.NewRevocationList(), now: time.Now()}
	f.signer = token.NewSigner(ks, token.SignerConfig{Issuer: issuer, Audience: audience})
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) { return ks.PublicKeys(), nil }, token.KeySetConfig{})
	f.verifier = token.NewVerifier(keys, token.VerifierConfig{Issuer: issuer, Audience: audience}, f.rev)
	return f
}

func b64(v any) string {
	raw, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// forge builds a token with any header and claims, signed with priv (or with
// HMAC key hmacKey when alg is HS256, or unsigned for "none").
func forge(t *testing.T, header, claims map[string]any, priv ed25519.PrivateKey, hmacKey []byte) string {
	t.Helper()
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

func (f *fixture) claims(mut func(map[string]any)) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"iss": issuer, "aud": []string{audience}, "sub": userID, "exp": now + 900, "iat": now, "nbf": now, "jti": "7c1d1f2e-59a8-4a3a-9f4e-0c1b2d3e4f50", "roles": []string{"user"}}
	if mut != nil {
		mut(c)
	}
	return c
}

func (f *fixture) header(mut func(map[string]any)) map[string]any {
	kid, _ := f.ks.Active()
	h := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
	if mut != nil {
		mut(h)
	}
	return h
}

func TestVerifyRefusesAttacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, priv := f.ks.Active()
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	pub := priv.Public().(ed25519.PublicKey)
	good, _, err := f.signer.Sign(userID, []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"user"`, `"admin"`, 1)))
	f.rev.Add("11111111-2222-4333-8444-555555555555", time.Now().Add(time.Hour))
	now := time.Now().Unix()

	tests := []struct {
		name   string
		raw    string
		reason string
	}{
		{"alg none", forge(t, f.header(func(h map[string]any) { h["alg"] = "none" }), f.claims(nil), nil, nil), token.ReasonBadSignature},
		{"HS256 with the public key as secret", forge(t, f.header(func(h map[string]any) { h["alg"] = "HS256" }), f.claims(nil), nil, pub), token.ReasonBadSignature},
		{"signed by a foreign key", forge(t, f.header(nil), f.claims(nil), foreign, nil), token.ReasonBadSignature},
		{"tampered payload", parts[0] + "." + tamperedPayload + "." + parts[2], token.ReasonBadSignature},
		{"unknown kid", forge(t, f.header(func(h map[string]any) { h["kid"] = "nope" }), f.claims(nil), priv, nil), token.ReasonUnknownKid},
		{"missing kid", forge(t, f.header(func(h map[string]any) { delete(h, "kid") }), f.claims(nil), priv, nil), token.ReasonUnknownKid},
		{"wrong typ (refresh)", forge(t, f.header(func(h map[string]any) { h["typ"] = "refresh+jwt" }), f.claims(nil), priv, nil), token.ReasonWrongType},
		{"no typ", forge(t, f.header(func(h map[string]any) { delete(h, "typ") }), f.claims(nil), priv, nil), token.ReasonWrongType},
		{"jku header", forge(t, f.header(func(h map[string]any) { h["jku"] = "https://evil.example/jwks" }), f.claims(nil), priv, nil), token.ReasonMalformed},
		{"x5u header", forge(t, f.header(func(h map[string]any) { h["x5u"] = "https://evil.example/cert" }), f.claims(nil), priv, nil), token.ReasonMalformed},
		{"embedded jwk", forge(t, f.header(func(h map[string]any) { h["jwk"] = map[string]string{"kty": "OKP"} }), f.claims(nil), priv, nil), token.ReasonMalformed},
		{"expired", forge(t, f.header(nil), f.claims(func(c map[string]any) { c["exp"] = now - 60; c["iat"] = now - 1000; c["nbf"] = now - 1000 }), priv, nil), token.ReasonExpired},
		{"missing exp", forge(t, f.header(nil), f.claims(func(c map[string]any) { delete(c, "exp") }), priv, nil), token.ReasonBadClaims},
		{"not yet valid", forge(t, f.header(nil), f.claims(func(c map[string]any) { c["nbf"] = now + 600 }), priv, nil), token.ReasonNotYetValid},
		{"issued in the future", forge(t, f.header(nil), f.claims(func(c map[string]any) { c["iat"] = now + 600 }), priv, nil), token.ReasonNotYetValid},
		{"wrong issuer", forge(t, f.header(nil), f.claims(func(c map[string]any) { c["iss"] = "evil" }), priv, nil), token.ReasonWrongIssuer},
		{"wrong audience", forge(t, f.header(nil), f.claims(func(c map[string]any) { c["aud"] = []string{"other-api"} }), priv, nil), token.ReasonWrongAudience},
		{"subject not a uuid", forge(t, f.header(nil), f.claims(func(c map[string]any) { c["sub"] = "admin" }), priv, nil), token.ReasonBadClaims},
		{"no roles", forge(t, f.header(nil), f.claims(func(c map[string]any) { delete(c, "roles") }), priv, nil), token.ReasonBadClaims},
		{"no jti", forge(t, f.header(nil), f.claims(func(c map[string]any) { delete(c, "jti") }), priv, nil), token.ReasonBadClaims},
		{"revoked", forge(t, f.header(nil), f.claims(func(c map[string]any) { c["jti"] = "11111111-2222-4333-8444-555555555555" }), priv, nil), token.ReasonRevoked},
		{"oversized token", good + strings.Repeat("A", 5000), token.ReasonTooLarge},
		{"oversized header", forge(t, f.header(func(h map[string]any) { h["pad"] = strings.Repeat("x", 600) }), f.claims(nil), priv, nil), token.ReasonTooLarge},
		{"two segments", parts[0] + "." + parts[1], token.ReasonMalformed},
		{"garbage", "not-a-token", token.ReasonMalformed},
		{"opaque refresh token", base64.RawURLEncoding.EncodeToString(make([]byte, 32)), token.ReasonMalformed},
		{"empty", "", token.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := f.verifier.Verify(context.Background(), tt.raw)
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Unauthenticated || e.Reason != tt.reason {
				t.Fatalf("Verify(%s) = %+v, %v; want unauthenticated %q", tt.name, u, err, tt.reason)
			}
			if e.Msg != "invalid token" {
				t.Errorf("Verify(%s) message %q reveals the reason", tt.name, e.Msg)
			}
		})
	}
}

func TestVerifyAcceptsGoodToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	raw, c, err := f.signer.Sign(userID, []string{"user", "manager"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify(good) = %v", err)
	}
	if u.ID != userID || !u.HasRole("manager") || u.TokenID != c.ID || u.ExpiresAt.Sub(time.Now()) > token.DefaultTTL {
		t.Errorf("Verify(good) = %+v", u)
	}
	f.rev.Add(c.ID, c.ExpiresAt.Time)
	if _, err := f.verifier.Verify(context.Background(), raw); errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("Verify(after revocation) = %v, want unauthenticated", err)
	}
}

// TestRotation: a token signed by an old key verifies while the key is
// published and is refused once the key is dropped.
func TestRotation(t *testing.T) {
	t.Parallel()
	clock := time.Now()
	now := func() time.Time { return clock }
	ks, err := token.OpenKeyStore(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	signer := token.NewSigner(ks, token.SignerConfig{Issuer: issuer, Audience: audience})
	old, _, _ := signer.Sign(userID, []string{"user"})
	oldKid, _ := ks.Active()
	if _, err := ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) { return ks.PublicKeys(), nil }, token.KeySetConfig{MinRefetchInterval: time.Nanosecond, TTL: time.Nanosecond})
	v := token.NewVerifier(keys, token.VerifierConfig{Issuer: issuer, Audience: audience}, nil)
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatalf("old-key token while the key is published: %v", err)
	}
	if got := ks.Prune(16 * time.Minute); len(got) != 0 {
		t.Fatalf("Prune right after rotation dropped %v", got)
	}
	clock = clock.Add(17 * time.Minute)
	if got := ks.Prune(16 * time.Minute); len(got) != 1 || got[0] != oldKid {
		t.Fatalf("Prune after retention = %v, want [%s]", got, oldKid)
	}
	if _, err := v.Verify(context.Background(), old); err == nil {
		t.Fatal("old-key token verified after its key was dropped")
	}
	if err := ks.Retire(func() string { k, _ := ks.Active(); return k }()); err == nil {
		t.Error("Retire(active key) succeeded")
	}
}

func TestKeyStorePersistsPrivately(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := token.OpenKeyStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := a.Active()
	info, err := os.Stat(filepath.Join(dir, kid+".key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	b, err := token.OpenKeyStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kid2, _ := b.Active(); kid2 != kid {
		t.Errorf("reopened store signs with %s, want %s", kid2, kid)
	}
	for _, j := range b.PublicKeys() {
		raw, _ := json.Marshal(j)
		if strings.Contains(string(raw), `"d"`) || j.Kty != "OKP" || j.Alg != "EdDSA" {
			t.Errorf("JWKS entry %s", raw)
		}
	}
	os.Chmod(filepath.Join(dir, kid+".key"), 0o644)
	if _, err := token.OpenKeyStore(dir, nil); err == nil {
		t.Error("OpenKeyStore accepted a world-readable key file")
	}
}

// TestUnknownKidRefetchIsRateCapped: a flood of tokens with made-up kids
// costs the auth service at most one fetch per interval.
func TestUnknownKidRefetchIsRateCapped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var fetches atomic.Int32
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) {
		fetches.Add(1)
		time.Sleep(10 * time.Millisecond)
		return f.ks.PublicKeys(), nil
	}, token.KeySetConfig{MinRefetchInterval: time.Hour})
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := keys.Key(context.Background(), "made-up"); err == nil {
				t.Error("Key(made-up) succeeded")
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}

func TestKeySetKeepsLastGoodKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fail := false
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) {
		if fail {
			return nil, errors.New("auth down")
		}
		return f.ks.PublicKeys(), nil
	}, token.KeySetConfig{MinRefetchInterval: time.Nanosecond, TTL: time.Nanosecond})
	kid, _ := f.ks.Active()
	if _, err := keys.Key(context.Background(), kid); err != nil {
		t.Fatal(err)
	}
	fail = true
	if _, err := keys.Key(context.Background(), kid); err != nil {
		t.Errorf("Key after a failed refresh = %v, want the last good key", err)
	}
}

func TestRevocationList(t *testing.T) {
	t.Parallel()
	r := token.NewRevocationList()
	r.Add("a", time.Now().Add(time.Hour))
	r.Add("old", time.Now().Add(-time.Hour))
	if !r.IsRevoked("a") || r.IsRevoked("b") {
		t.Error("IsRevoked wrong after Add")
	}
	r.Prune()
	if r.IsRevoked("old") || r.Len() != 1 {
		t.Errorf("Prune kept an expired revocation (len %d)", r.Len())
	}
	r.Replace(map[string]time.Time{"b": time.Now().Add(time.Hour)})
	if r.IsRevoked("a") || !r.IsRevoked("b") {
		t.Error("Replace did not replace the set")
	}
}

func TestParseBearer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := token.ParseBearer(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSignRefusesEmptyIdentity(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, _, err := f.signer.Sign("", []string{"user"}); err == nil {
		t.Error("Sign without subject succeeded")
	}
	if _, _, err := f.signer.Sign(userID, nil); err == nil {
		t.Error("Sign without roles succeeded")
	}
	raw, _, _ := f.signer.Sign(userID, []string{"user"})
	tok, _, _ := jwt.NewParser().ParseUnverified(raw, &token.Claims{})
	if tok.Header["typ"] != "at+jwt" || tok.Header["alg"] != "EdDSA" {
		t.Errorf("header = %v", tok.Header)
	}
}

func BenchmarkVerify(b *testing.B) {
	ks, _ := token.OpenKeyStore(b.TempDir(), nil)
	signer := token.NewSigner(ks, token.SignerConfig{Issuer: issuer, Audience: audience})
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) { return ks.PublicKeys(), nil }, token.KeySetConfig{})
	v := token.NewVerifier(keys, token.VerifierConfig{Issuer: issuer, Audience: audience}, token.NewRevocationList())
	raw, _, _ := signer.Sign(userID, []string{"user"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	ks, _ := token.OpenKeyStore(b.TempDir(), nil)
	signer := token.NewSigner(ks, token.SignerConfig{Issuer: issuer, Audience: audience})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := signer.Sign(userID, []string{"user"}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKeyStoreFromKeys(t *testing.T) {
	t.Parallel()
	_, a, _ := ed25519.GenerateKey(rand.Reader)
	_, b, _ := ed25519.GenerateKey(rand.Reader)
	ks, err := token.NewKeyStoreFromKeys(map[string]ed25519.PrivateKey{"k1": a, "k2": b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := ks.Active(); kid != "k2" || len(ks.PublicKeys()) != 2 || ks.ActiveSince().IsZero() {
		t.Errorf("Active() = %s with %d keys", kid, len(ks.PublicKeys()))
	}
	for name, keys := range map[string]map[string]ed25519.PrivateKey{
		"none":    {},
		"bad kid": {"../evil": a},
		"short":   {"k": a[:10]},
	} {
		if _, err := token.NewKeyStoreFromKeys(keys, nil); err == nil {
			t.Errorf("NewKeyStoreFromKeys(%s) succeeded", name)
		}
	}
	if err := ks.Retire("missing"); err == nil {
		t.Error("Retire(missing) succeeded")
	}
	if err := ks.Retire("k1"); err != nil {
		t.Errorf("Retire(k1) = %v", err)
	}
	signer := token.NewSigner(ks, token.SignerConfig{Issuer: issuer, Audience: audience, TTL: time.Minute})
	if signer.TTL() != time.Minute {
		t.Errorf("TTL() = %v", signer.TTL())
	}
}

func TestKeySetRefreshAndForeignKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	jwks := append(f.ks.PublicKeys(),
		token.JWK{Kty: "RSA", Kid: "rsa"},
		token.JWK{Kty: "OKP", Crv: "Ed25519", X: "!!", Kid: "broken"},
		token.JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(make([]byte, 32)), Kid: "enc", Use: "enc"})
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) { return jwks, nil }, token.KeySetConfig{})
	if err := keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"rsa", "broken", "enc"} {
		if _, err := keys.Key(context.Background(), kid); err == nil {
			t.Errorf("Key(%s) accepted an unusable key", kid)
		}
	}
}

func TestOpenKeyStoreRejectsJunk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "junk.key"), []byte("not pem"), 0o600)
	if _, err := token.OpenKeyStore(dir, nil); err == nil {
		t.Error("OpenKeyStore accepted a junk key file")
	}
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "x.key"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	if _, err := token.OpenKeyStore(dir2, nil); err == nil {
		t.Error("OpenKeyStore accepted a bad PKCS#8 key")
	}
}

// TestPublishBeforeSigning: a rotated key is in the JWKS before it signs, so a
// verifier that fetched the keys a moment ago can check the first token it signs.
func TestPublishBeforeSigning(t *testing.T) {
	t.Parallel()
	clock := time.Now()
	ks, err := token.OpenKeyStore(t.TempDir(), func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	ks.SetPublishDelay(45 * time.Second)
	clock = clock.Add(time.Hour)
	old, _ := ks.Active()
	fresh, err := ks.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	published := false
	for _, j := range ks.PublicKeys() {
		published = published || j.Kid == fresh
	}
	if kid, _ := ks.Active(); kid != old || !published {
		t.Fatalf("right after rotation: signing with %s (want the old %s), new key published %v", kid, old, published)
	}
	if got := ks.Prune(time.Minute); len(got) != 0 {
		t.Errorf("Prune retired %v while the old key still signs", got)
	}
	if err := ks.Retire(old); err == nil {
		t.Error("Retire(the signing key) succeeded")
	}
	clock = clock.Add(46 * time.Second)
	if kid, _ := ks.Active(); kid != fresh {
		t.Errorf("after the publish delay: signing with %s, want %s", kid, fresh)
	}
}
