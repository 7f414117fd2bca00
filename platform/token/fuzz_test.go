package token_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/token"
)

// fuzzKid names the one signing key of the fuzz verifier.
const fuzzKid = "fuzz-key"

// reasons are the reasons Verify may give for a refusal.
var reasons = []string{
	token.ReasonMalformed, token.ReasonBadSignature, token.ReasonUnknownKid, token.ReasonExpired,
	token.ReasonNotYetValid, token.ReasonWrongIssuer, token.ReasonWrongAudience, token.ReasonWrongType,
	token.ReasonRevoked, token.ReasonTooLarge, token.ReasonBadClaims,
}

// fuzzVerifier returns a verifier whose key and clock are fixed, so that a
// token in the corpus means the same in every fuzzing process, and the
// tokens it must accept, each with the user it proves.
func fuzzVerifier(t testing.TB) (*token.Verifier, map[string]identity.User) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	clock := newClock()
	ks, err := token.NewKeyStoreFromKeys(map[string]ed25519.PrivateKey{fuzzKid: priv}, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) { return ks.PublicKeys(), nil }, token.KeySetConfig{Now: clock.Now})
	v := token.NewVerifier(keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: clock.Now}, nil)

	f := &fixture{clock: clock, ks: ks}
	exp := clock.Now().Add(token.DefaultTTL)
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	valid := map[string]identity.User{
		forge(f.header(nil), f.claims(nil), priv, nil):                                               {ID: userID, Roles: []string{"user"}, TokenID: tokenID, ExpiresAt: exp},
		forge(f.header(nil), f.claims(set("roles", []string{"user", "admin"})), priv, nil):           {ID: userID, Roles: []string{"user", "admin"}, TokenID: tokenID, ExpiresAt: exp},
		forge(f.header(set("typ", "application/at+jwt")), f.claims(set("aud", audience)), priv, nil): {ID: userID, Roles: []string{"user"}, TokenID: tokenID, ExpiresAt: exp},
	}
	for raw := range valid {
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Fatalf("Verify(seed token) = %v, want accepted", err)
		}
	}
	return v, valid
}

// FuzzVerify presents Verify with arbitrary strings, most of them mutations
// of a valid token. Verify must never panic, must refuse with the generic
// Unauthenticated "invalid token" and a known reason, and must accept only
// the exact tokens that were signed: a changed token that still verified
// would be a second spelling of a credential (or a forgery), and one that
// verified as a different user would be the end of authentication.
func FuzzVerify(f *testing.F) {
	v, valid := fuzzVerifier(f)
	for raw := range valid {
		f.Add(raw)
		parts := strings.Split(raw, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "." + parts[1] + "." + parts[2] + "A")
		f.Add(parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1])
		f.Add(parts[0] + "=." + parts[1] + "." + parts[2])
		f.Add(" " + raw)
		// Base64 decoders skip CR and LF: these verified before Verify
		// checked the token's alphabet.
		f.Add(parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:])
		f.Add(raw + "\r\n")
		f.Add(raw + ".")
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 5000)} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := v.Verify(ctx, raw)
		if err != nil {
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Unauthenticated || errs.SafeMessage(err) != "invalid token" || !slices.Contains(reasons, e.Reason) {
				t.Fatalf("Verify(%q) error = %v, want Unauthenticated \"invalid token\" with a known reason", raw, err)
			}
			return
		}
		want, ok := valid[raw]
		if !ok {
			t.Fatalf("Verify(%q) = %+v, nil; want refused: it is not a token that was signed", raw, u)
		}
		if diff := cmp.Diff(want, u); diff != "" {
			t.Fatalf("Verify(%q) user mismatch (-want +got):\n%s", raw, diff)
		}
	})
}

// FuzzParseBearer checks that ParseBearer only ever returns the whole
// remainder of a "Bearer " header, never an empty token or one with
// whitespace that a verifier downstream could read differently.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer x", "BEARER x", "Bearer", "Bearer ", "Bearer  x", "Bearer x y", "Basic x", "Bearer\tx", "Bearer x\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authorization string) {
		tok, ok := token.ParseBearer(authorization)
		if !ok {
			if tok != "" {
				t.Fatalf("ParseBearer(%q) = %q, false; want no token with false", authorization, tok)
			}
			return
		}
		scheme, rest, _ := strings.Cut(authorization, " ")
		if !strings.EqualFold(scheme, "Bearer") || rest != tok || tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			t.Fatalf("ParseBearer(%q) = %q, true; want the non-empty, space-free rest after \"Bearer \"", authorization, tok)
		}
	})
}
