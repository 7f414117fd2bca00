package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
)

// TestCachedTokensAreCheckedAgain: a token verified once is remembered, but
// every later use checks again what can change after the first check, and a
// remembered token that fails is refused for the same reason a fresh one
// would be: revoked after it was first seen, expired since, or signed by a
// key that was rotated out and retired.
func TestCachedTokensAreCheckedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("revoked after its first use", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		raw, c := f.sign(t, "user")
		if _, err := f.verifier.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		f.rev.Add(c.ID, c.ExpiresAt.Time)
		_, err := f.verifier.Verify(ctx, raw)
		wantRefused(t, "Verify(remembered, then revoked)", err, token.ReasonRevoked)
	})
	t.Run("expired since its first use", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		raw, _ := f.sign(t, "user")
		if _, err := f.verifier.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(15*time.Minute + 6*time.Second) // past exp and the 5 s leeway
		_, err := f.verifier.Verify(ctx, raw)
		wantRefused(t, "Verify(remembered, then expired)", err, token.ReasonExpired)
	})
	t.Run("signed by a key since retired", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		raw, _ := f.sign(t, "user")
		if _, err := f.verifier.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		old, _ := f.ks.Active()
		if _, err := f.ks.Rotate(); err != nil {
			t.Fatal(err)
		}
		if err := f.ks.Retire(old); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(6 * time.Minute) // past the key cache's TTL: the next lookup refetches
		_, err := f.verifier.Verify(ctx, raw)
		wantRefused(t, "Verify(remembered, key retired)", err, token.ReasonUnknownKid)
	})
	t.Run("its kid now names another key", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		raw, _ := f.sign(t, "user")
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		var swapped atomic.Bool
		keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) {
			jwks := slices.Clone(f.ks.PublicKeys())
			for i := range jwks {
				if swapped.Load() {
					jwks[i].X = base64.RawURLEncoding.EncodeToString(other.Public().(ed25519.PublicKey))
				}
			}
			return jwks, nil
		}, token.KeySetConfig{Now: f.clock.Now})
		v := token.NewVerifier(keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: f.clock.Now}, f.rev)
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		swapped.Store(true)
		f.clock.Advance(6 * time.Minute) // past the key cache's TTL: the next lookup refetches
		_, err := v.Verify(ctx, raw)
		wantRefused(t, "Verify(remembered, its kid now another key's)", err, token.ReasonBadSignature)
	})
	t.Run("one byte more is another token", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		raw, _ := f.sign(t, "user")
		if _, err := f.verifier.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(raw, ".")
		tampered := parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2] + "AA"
		_, err := f.verifier.Verify(ctx, tampered)
		wantRefused(t, "Verify(a remembered token's signature changed)", err, token.ReasonBadSignature)
	})
}

// BenchmarkVerifyRemembered is BenchmarkVerify's token used again: what an
// authenticated request costs once its token has been seen.
func BenchmarkVerifyRemembered(b *testing.B) {
	f := newFixture(b)
	raw, _ := f.sign(b, "user")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
