package token_test

import (
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bastion-bank/bastion/platform/token"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestSignClaims reads a signed token back without trusting the signer: the
// header and every claim docs/api.md promises.
func TestSignClaims(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	roles := []string{"user", "manager"}
	raw, c, err := f.signer.Sign(userID, roles)
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	roles[0] = "admin" // the token must not share the caller's slice
	var got token.Claims
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &got)
	if err != nil {
		t.Fatalf("ParseUnverified(Sign()) = %v", err)
	}
	kid, _ := f.ks.Active()
	if tok.Header["typ"] != "at+jwt" || tok.Header["alg"] != "EdDSA" || tok.Header["kid"] != kid || len(tok.Header) != 3 {
		t.Errorf("header = %v, want typ at+jwt, alg EdDSA, kid %s and nothing else", tok.Header, kid)
	}
	now := f.clock.Now()
	checks := []struct {
		name string
		ok   bool
	}{
		{"iss", got.Issuer == issuer},
		{"aud", slices.Equal(got.Audience, []string{audience})},
		{"sub", got.Subject == userID},
		{"iat", got.IssuedAt.Equal(now)},
		{"nbf", got.NotBefore.Equal(now)},
		{"exp", got.ExpiresAt.Equal(now.Add(15 * time.Minute))},
		{"jti", uuidV4.MatchString(got.ID) && got.ID == c.ID},
		{"roles", slices.Equal(got.Roles, []string{"user", "manager"}) && slices.Equal(c.Roles, got.Roles)},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("Sign: claim %s wrong in %+v", ch.name, got)
		}
	}
}

// TestSignAMR: the amr claim a login's methods put in the token comes back
// from the verifier, and a token without one has none.
func TestSignAMR(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Eight methods is the most a token may carry (nine are refused in
	// TestVerifyRefusesAttacks).
	for _, amr := range [][]string{nil, {"pwd"}, {"pwd", "otp"}, strings.Split("a,b,c,d,e,f,g,h", ",")} {
		raw, c, err := f.signer.SignAMR(userID, []string{"manager"}, amr)
		if err != nil || !slices.Equal(c.AMR, amr) {
			t.Fatalf("SignAMR(%v) = %+v, %v", amr, c.AMR, err)
		}
		u, err := f.verifier.Verify(t.Context(), raw)
		if err != nil || !slices.Equal(u.AMR, amr) || u.HasAMR("otp") != slices.Contains(amr, "otp") {
			t.Errorf("Verify(SignAMR(%v)) = %+v, %v; want amr %v", amr, u, err, amr)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
		if amr == nil && strings.Contains(string(payload), `"amr"`) {
			t.Errorf("a token without methods carries an amr claim: %s", payload)
		}
	}
	if _, _, err := f.signer.SignAMR(userID, []string{"user"}, []string{"pwd", ""}); err == nil {
		t.Error("SignAMR with an empty method succeeded")
	}
}

func TestSignTTLAndUniqueIDs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := token.NewSigner(f.ks, token.SignerConfig{Issuer: issuer, Audience: audience, TTL: time.Minute, Now: f.clock.Now})
	if s.TTL() != time.Minute || f.signer.TTL() != token.DefaultTTL {
		t.Errorf("TTL() = %v and %v, want 1m and the 15m default", s.TTL(), f.signer.TTL())
	}
	seen := map[string]bool{}
	for range 1000 {
		_, c, err := s.Sign(userID, []string{"user"})
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.ID] || c.ExpiresAt.Sub(c.IssuedAt.Time) != time.Minute {
			t.Fatalf("Sign() = jti %s (seen before: %v), lifetime %v; want a fresh jti and 1m", c.ID, seen[c.ID], c.ExpiresAt.Sub(c.IssuedAt.Time))
		}
		seen[c.ID] = true
	}
}

// TestSignRefuses: the signer will not mint a token every verifier refuses.
func TestSignRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name   string
		signer *token.Signer
		sub    string
		roles  []string
	}{
		{"no subject", f.signer, "", []string{"user"}},
		{"subject not a uuid", f.signer, "admin", []string{"user"}},
		{"upper-case uuid", f.signer, strings.ToUpper(userID), []string{"user"}},
		{"no roles", f.signer, userID, nil},
		{"an empty role", f.signer, userID, []string{"user", ""}},
		{"no issuer", token.NewSigner(f.ks, token.SignerConfig{Audience: audience}), userID, []string{"user"}},
		{"no audience", token.NewSigner(f.ks, token.SignerConfig{Issuer: issuer}), userID, []string{"user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if raw, _, err := tt.signer.Sign(tt.sub, tt.roles); err == nil {
				t.Errorf("Sign(%q, %q) = %q, nil; want an error", tt.sub, tt.roles, raw)
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	roles := []string{"user"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.signer.Sign(userID, roles); err != nil {
			b.Fatal(err)
		}
	}
}
