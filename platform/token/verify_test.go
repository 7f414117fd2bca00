package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
)

// TestVerifyRefusesAttacks forges every kind of token an attacker (or a
// confused client) can present and checks each is refused for the right reason.
func TestVerifyRefusesAttacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, priv := f.ks.Active()
	pub := priv.Public().(ed25519.PublicKey)
	pkix, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	jwkX := []byte(f.ks.PublicKeys()[0].X)
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	good, _ := f.sign(t, "user")
	other, _ := f.sign(t, "admin")
	parts, otherParts := strings.Split(good, "."), strings.Split(other, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	asAdmin := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"user"`, `"admin"`, 1)))
	const revokedID = "11111111-2222-4333-8444-555555555555"
	f.rev.Add(revokedID, f.clock.Now().Add(time.Hour))
	now := f.clock.Now().Unix()
	h := f.header
	c := f.claims
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }

	tests := []struct {
		name   string
		raw    string
		reason string
	}{
		{"alg none", forge(h(set("alg", "none")), c(nil), nil, nil), token.ReasonBadSignature},
		{"alg None", forge(h(set("alg", "None")), c(nil), priv, nil), token.ReasonBadSignature},
		{"HS256 with a guessed secret", forge(h(set("alg", "HS256")), c(nil), nil, []byte("secret")), token.ReasonBadSignature},
		{"HS256 with the raw public key as secret", forge(h(set("alg", "HS256")), c(nil), nil, pub), token.ReasonBadSignature},
		{"HS256 with the JWK x as secret", forge(h(set("alg", "HS256")), c(nil), nil, jwkX), token.ReasonBadSignature},
		{"HS256 with the PEM public key as secret", forge(h(set("alg", "HS256")), c(nil), nil, pubPEM), token.ReasonBadSignature},
		{"RS256 header on an Ed25519 signature", forge(h(set("alg", "RS256")), c(nil), priv, nil), token.ReasonBadSignature},
		{"alg missing", forge(h(del("alg")), c(nil), priv, nil), token.ReasonBadSignature},
		{"signed by a foreign key under our kid", forge(h(nil), c(nil), foreign, nil), token.ReasonBadSignature},
		{"tampered payload", parts[0] + "." + asAdmin + "." + parts[2], token.ReasonBadSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + otherParts[2], token.ReasonBadSignature},
		{"payload of another token", parts[0] + "." + otherParts[1] + "." + parts[2], token.ReasonBadSignature},
		{"signature stripped", parts[0] + "." + parts[1] + ".", token.ReasonBadSignature},
		{"revoked jti on a forged token", forge(h(nil), c(set("jti", revokedID)), foreign, nil), token.ReasonBadSignature},
		{"unknown kid", forge(h(set("kid", "nope")), c(nil), priv, nil), token.ReasonUnknownKid},
		{"missing kid", forge(h(del("kid")), c(nil), priv, nil), token.ReasonUnknownKid},
		{"kid as a path", forge(h(set("kid", "../../etc/passwd")), c(nil), priv, nil), token.ReasonUnknownKid},
		{"kid not a string", forge(h(set("kid", 7)), c(nil), priv, nil), token.ReasonUnknownKid},
		{"refresh token type", forge(h(set("typ", "refresh+jwt")), c(nil), priv, nil), token.ReasonWrongType},
		{"plain JWT type (an ID token)", forge(h(set("typ", "JWT")), c(nil), priv, nil), token.ReasonWrongType},
		{"no typ", forge(h(del("typ")), c(nil), priv, nil), token.ReasonWrongType},
		{"typ not a string", forge(h(set("typ", 1)), c(nil), priv, nil), token.ReasonWrongType},
		{"jku header", forge(h(set("jku", "https://evil.example/jwks")), c(nil), priv, nil), token.ReasonMalformed},
		{"x5u header", forge(h(set("x5u", "https://evil.example/cert")), c(nil), priv, nil), token.ReasonMalformed},
		{"embedded jwk", forge(h(set("jwk", map[string]string{"kty": "OKP", "crv": "Ed25519", "x": string(jwkX)})), c(nil), priv, nil), token.ReasonMalformed},
		{"x5c header", forge(h(set("x5c", []string{"MIIB"})), c(nil), priv, nil), token.ReasonMalformed},
		{"crit header", forge(h(set("crit", []string{"exp"})), c(nil), priv, nil), token.ReasonMalformed},
		{"expired", forge(h(nil), c(func(m map[string]any) { m["exp"] = now - 60; m["iat"] = now - 960; m["nbf"] = now - 960 }), priv, nil), token.ReasonExpired},
		{"expired just past the leeway", forge(h(nil), c(set("exp", now-6)), priv, nil), token.ReasonExpired},
		{"missing exp", forge(h(nil), c(del("exp")), priv, nil), token.ReasonBadClaims},
		{"exp not a number", forge(h(nil), c(set("exp", "never")), priv, nil), token.ReasonMalformed},
		{"not yet valid", forge(h(nil), c(set("nbf", now+600)), priv, nil), token.ReasonNotYetValid},
		{"not yet valid just past the leeway", forge(h(nil), c(set("nbf", now+6)), priv, nil), token.ReasonNotYetValid},
		{"issued in the future", forge(h(nil), c(set("iat", now+600)), priv, nil), token.ReasonNotYetValid},
		{"missing nbf", forge(h(nil), c(del("nbf")), priv, nil), token.ReasonBadClaims},
		{"missing iat", forge(h(nil), c(del("iat")), priv, nil), token.ReasonBadClaims},
		{"wrong issuer", forge(h(nil), c(set("iss", "evil")), priv, nil), token.ReasonWrongIssuer},
		{"issuer in another case", forge(h(nil), c(set("iss", "Bastion")), priv, nil), token.ReasonWrongIssuer},
		{"missing issuer", forge(h(nil), c(del("iss")), priv, nil), token.ReasonBadClaims},
		{"wrong audience", forge(h(nil), c(set("aud", []string{"other-api"})), priv, nil), token.ReasonWrongAudience},
		{"audience prefix", forge(h(nil), c(set("aud", audience+"-admin")), priv, nil), token.ReasonWrongAudience},
		{"missing audience", forge(h(nil), c(del("aud")), priv, nil), token.ReasonBadClaims},
		{"subject not a uuid", forge(h(nil), c(set("sub", "admin")), priv, nil), token.ReasonBadClaims},
		{"subject an upper-case uuid", forge(h(nil), c(set("sub", strings.ToUpper(userID))), priv, nil), token.ReasonBadClaims},
		{"no subject", forge(h(nil), c(del("sub")), priv, nil), token.ReasonBadClaims},
		{"no roles", forge(h(nil), c(del("roles")), priv, nil), token.ReasonBadClaims},
		{"empty roles", forge(h(nil), c(set("roles", []string{})), priv, nil), token.ReasonBadClaims},
		{"an empty role", forge(h(nil), c(set("roles", []string{"user", ""})), priv, nil), token.ReasonBadClaims},
		{"roles as a string", forge(h(nil), c(set("roles", "admin")), priv, nil), token.ReasonMalformed},
		{"an empty amr method", forge(h(nil), c(set("amr", []string{"pwd", ""})), priv, nil), token.ReasonBadClaims},
		{"an amr of many methods", forge(h(nil), c(set("amr", strings.Split("a,b,c,d,e,f,g,h,i", ","))), priv, nil), token.ReasonBadClaims},
		{"amr as a string", forge(h(nil), c(set("amr", "otp")), priv, nil), token.ReasonMalformed},
		{"no jti", forge(h(nil), c(del("jti")), priv, nil), token.ReasonBadClaims},
		{"jti not a uuid", forge(h(nil), c(set("jti", "1")), priv, nil), token.ReasonBadClaims},
		{"revoked", forge(h(nil), c(set("jti", revokedID)), priv, nil), token.ReasonRevoked},
		// Signed with the real key, but living longer than the issuer's
		// configured lifetime (15 min here): a leaked key or a bug minting
		// year-long tokens must not get them accepted.
		{"a year-long token", forge(h(nil), c(set("exp", now+365*24*3600)), priv, nil), token.ReasonTooLong},
		{"one second longer than the lifetime", forge(h(nil), c(set("exp", now+901)), priv, nil), token.ReasonTooLong},
		{"issued long ago to stretch the lifetime", forge(h(nil), c(func(m map[string]any) { m["iat"], m["nbf"] = now-3600, now-3600 }), priv, nil), token.ReasonTooLong},
		{"oversized token", good + strings.Repeat("A", 5000), token.ReasonTooLarge},
		{"oversized header", forge(h(set("pad", strings.Repeat("x", 600))), c(nil), priv, nil), token.ReasonTooLarge},
		{"two segments", parts[0] + "." + parts[1], token.ReasonMalformed},
		{"four segments", good + "." + parts[2], token.ReasonMalformed},
		{"padded header", parts[0] + "==." + parts[1] + "." + parts[2], token.ReasonMalformed},
		{"line break in the signature", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:], token.ReasonMalformed},
		{"carriage return in the signature", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\r" + parts[2][10:], token.ReasonMalformed},
		{"CRLF after the signature", good + "\r\n", token.ReasonMalformed},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("{alg")) + "." + parts[1] + "." + parts[2], token.ReasonMalformed},
		{"payload not JSON", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + "." + parts[2], token.ReasonMalformed},
		{"garbage", "not-a-token", token.ReasonMalformed},
		{"opaque refresh token", base64.RawURLEncoding.EncodeToString(make([]byte, 32)), token.ReasonMalformed},
		{"empty", "", token.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := f.verifier.Verify(context.Background(), tt.raw)
			if err == nil {
				t.Fatalf("Verify(%s) = %+v, nil; want refused %q", tt.name, u, tt.reason)
			}
			wantRefused(t, "Verify("+tt.name+")", err, tt.reason)
		})
	}
}

// TestVerifyAccepts checks the tokens that must pass: ours, and forged-shape
// variants the RFCs allow, including clock skew within the leeway.
func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, priv := f.ks.Active()
	now := f.clock.Now().Unix()
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	signed, _ := f.sign(t, "user", "manager")
	// The longest header read: exactly 512 bytes encoded, padded with a
	// field the verifier ignores.
	var longest string
	for n := 0; n < 512 && longest == ""; n++ {
		raw := forge(f.header(set("pad", strings.Repeat("x", n))), f.claims(nil), priv, nil)
		if seg, _, _ := strings.Cut(raw, "."); len(seg) == 512 {
			longest = raw
		}
	}

	tests := []struct {
		name  string
		raw   string
		roles []string
	}{
		{"signed by the signer", signed, []string{"user", "manager"}},
		{"a header of the largest size", longest, []string{"user"}},
		{"typ application/at+jwt", forge(f.header(set("typ", "application/at+jwt")), f.claims(nil), priv, nil), []string{"user"}},
		{"typ in upper case", forge(f.header(set("typ", "AT+JWT")), f.claims(nil), priv, nil), []string{"user"}},
		{"audience as a string", forge(f.header(nil), f.claims(set("aud", audience)), priv, nil), []string{"user"}},
		{"one of several audiences", forge(f.header(nil), f.claims(set("aud", []string{"other", audience})), priv, nil), []string{"user"}},
		{"expired within the leeway", forge(f.header(nil), f.claims(set("exp", now-4)), priv, nil), []string{"user"}},
		{"not yet valid within the leeway", forge(f.header(nil), f.claims(set("nbf", now+4)), priv, nil), []string{"user"}},
		{"issued in the future within the leeway", forge(f.header(nil), f.claims(set("iat", now+4)), priv, nil), []string{"user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := f.verifier.Verify(context.Background(), tt.raw)
			if err != nil {
				t.Fatalf("Verify(%s) = %v, want accepted", tt.name, err)
			}
			if u.ID != userID || len(u.Roles) != len(tt.roles) || !u.HasRole(tt.roles[len(tt.roles)-1]) || u.TokenID == "" || u.ExpiresAt.IsZero() {
				t.Errorf("Verify(%s) = %+v, want user %s with roles %v", tt.name, u, userID, tt.roles)
			}
		})
	}
}

// TestVerifyFollowsTheClock: a good token becomes expired, and a revoked one
// is refused from the moment it is revoked.
func TestVerifyFollowsTheClock(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	raw, c := f.sign(t, "user")
	u, err := f.verifier.Verify(context.Background(), raw)
	if err != nil || u.TokenID != c.ID || !u.ExpiresAt.Equal(c.ExpiresAt.Time) {
		t.Fatalf("Verify(fresh) = %+v, %v; want token %s", u, err, c.ID)
	}
	f.clock.Advance(token.DefaultTTL + 6*time.Second)
	_, err = f.verifier.Verify(context.Background(), raw)
	wantRefused(t, "Verify(after 15 min)", err, token.ReasonExpired)

	raw, c = f.sign(t, "user")
	f.rev.Add(c.ID, c.ExpiresAt.Time)
	_, err = f.verifier.Verify(context.Background(), raw)
	wantRefused(t, "Verify(revoked)", err, token.ReasonRevoked)
}

// TestVerifierNeedsIssuerAndAudience: jwt skips the iss and aud checks when
// none is expected, so a verifier missing either must refuse everything
// rather than accept tokens meant for someone else.
func TestVerifierNeedsIssuerAndAudience(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, priv := f.ks.Active()
	evil := forge(f.header(nil), f.claims(func(m map[string]any) { m["iss"] = "evil"; m["aud"] = "elsewhere" }), priv, nil)
	good, _ := f.sign(t, "user")
	tests := []struct {
		name   string
		cfg    token.VerifierConfig
		reason string
	}{
		{"no issuer", token.VerifierConfig{Audience: audience, Now: f.clock.Now}, token.ReasonWrongIssuer},
		{"no audience", token.VerifierConfig{Issuer: issuer, Now: f.clock.Now}, token.ReasonWrongAudience},
		{"neither", token.VerifierConfig{Now: f.clock.Now}, token.ReasonWrongIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := token.NewVerifier(f.keys, tt.cfg, nil)
			for _, raw := range []string{good, evil} {
				_, err := v.Verify(context.Background(), raw)
				wantRefused(t, "Verify with "+tt.name, err, tt.reason)
			}
		})
	}
}

func TestVerifyMaxTokenBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	raw, _ := f.sign(t, "user")
	v := token.NewVerifier(f.keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: f.clock.Now, MaxTokenBytes: len(raw) - 1}, nil)
	_, err := v.Verify(context.Background(), raw)
	wantRefused(t, "Verify(one byte over MaxTokenBytes)", err, token.ReasonTooLarge)
	v = token.NewVerifier(f.keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: f.clock.Now, MaxTokenBytes: len(raw)}, nil)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Errorf("Verify(exactly MaxTokenBytes) = %v, want accepted", err)
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
		{"BEARER abc", "abc", true},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer  abc", "", false},
		{"Bearer abc ", "", false},
		{" Bearer abc", "", false},
		{"Bearer a b", "", false},
		{"Bearer\tabc", "", false},
		{"Bearer abc\tdef", "", false},
		{"Bearer abc\r\nX-Evil: 1", "", false},
		{"Bearerabc", "", false},
		{"Token abc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := token.ParseBearer(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseBearer(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// BenchmarkVerify is the full check of a token never seen before (the
// cache off): header, signature, claims, revocation.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	raw, _ := f.sign(b, "user")
	v := token.NewVerifier(f.keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: f.clock.Now, CacheSize: -1}, f.rev)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
