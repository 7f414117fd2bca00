package token_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
)

// countingSource serves ks's JWKS, counting fetches; it fails while down is
// set and takes delay per fetch, so concurrent callers overlap.
type countingSource struct {
	f       *fixture
	fetches atomic.Int32
	down    atomic.Bool
	delay   time.Duration
}

func (s *countingSource) fetch(ctx context.Context) ([]token.JWK, error) {
	s.fetches.Add(1)
	time.Sleep(s.delay)
	if s.down.Load() {
		return nil, errors.New("auth unavailable")
	}
	return s.f.ks.PublicKeys(), ctx.Err()
}

// TestUnknownKidRefetchIsRateCapped: a flood of tokens with made-up kids,
// from 100 concurrent verifiers, costs the auth service at most one fetch per
// MinRefetchInterval.
func TestUnknownKidRefetchIsRateCapped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src := &countingSource{f: f, delay: 20 * time.Millisecond}
	keys := token.NewKeySet(src.fetch, token.KeySetConfig{Now: f.clock.Now}) // default 30 s interval
	v := token.NewVerifier(keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: f.clock.Now}, nil)
	_, priv := f.ks.Active()
	flood := func(round int) {
		var wg sync.WaitGroup
		for i := range 100 {
			raw := forge(f.header(func(h map[string]any) { h["kid"] = fmt.Sprintf("made-up-%d-%d", round, i) }), f.claims(nil), priv, nil)
			wg.Go(func() {
				_, err := v.Verify(context.Background(), raw)
				wantRefused(t, "Verify(made-up kid)", err, token.ReasonUnknownKid)
			})
		}
		wg.Wait()
	}
	steps := []struct {
		advance time.Duration
		want    int32
	}{
		{0, 1},                // the first flood shares one fetch
		{29 * time.Second, 1}, // still inside the interval: no fetch at all
		{time.Second, 2},      // exactly the interval has passed: one more
		{time.Second, 2},      // and then none again
		{30 * time.Second, 3}, // one per interval, however long the flood lasts
	}
	for round, s := range steps {
		f.clock.Advance(s.advance)
		flood(round)
		if n := src.fetches.Load(); n != s.want {
			t.Fatalf("round %d (+%v): fetches = %d, want %d", round, s.advance, n, s.want)
		}
	}
}

// TestKeySetDefaultTTL: with no TTL configured a known key is served from
// the cache for five minutes, then fetched again, so a key the auth service
// retired stops verifying within that time.
func TestKeySetDefaultTTL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src := &countingSource{f: f}
	keys := token.NewKeySet(src.fetch, token.KeySetConfig{Now: f.clock.Now})
	kid, _ := f.ks.Active()
	steps := []struct {
		advance time.Duration
		want    int32
	}{
		{0, 1},                           // the first use fetches
		{5*time.Minute - time.Second, 1}, // fresh until the TTL is up
		{time.Second, 2},                 // stale at exactly the TTL: refreshed
		{5*time.Minute - time.Second, 2}, // and fresh again for a TTL
		{time.Second, 3},
	}
	for _, s := range steps {
		f.clock.Advance(s.advance)
		if _, err := keys.Key(context.Background(), kid); err != nil {
			t.Fatalf("Key(%s) = %v", kid, err)
		}
		if n := src.fetches.Load(); n != s.want {
			t.Errorf("fetches after +%v = %d, want %d", s.advance, n, s.want)
		}
	}
}

// TestKeySetKeepsLastGoodKeys: while the auth service is down, the keys
// fetched before keep verifying; a new key is learnt once it is back.
func TestKeySetKeepsLastGoodKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src := &countingSource{f: f}
	keys := token.NewKeySet(src.fetch, token.KeySetConfig{Now: f.clock.Now, TTL: time.Minute, MinRefetchInterval: time.Second})
	v := token.NewVerifier(keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: f.clock.Now}, nil)
	raw, _ := f.sign(t, "user")
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("Verify(before the outage) = %v", err)
	}
	src.down.Store(true)
	f.clock.Advance(2 * time.Minute) // the cache is stale; the refresh fails
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Errorf("Verify(during the outage) = %v, want the last good key to verify", err)
	}
	if n := src.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (the refresh was attempted)", n)
	}
	if _, err := f.ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := f.sign(t, "user")
	f.clock.Advance(2 * time.Second)
	_, err := v.Verify(context.Background(), fresh)
	wantRefused(t, "Verify(new key during the outage)", err, token.ReasonUnknownKid)
	src.down.Store(false)
	f.clock.Advance(2 * time.Second)
	if _, err := v.Verify(context.Background(), fresh); err != nil {
		t.Errorf("Verify(new key after the outage) = %v", err)
	}
}

// TestKeySetFetchOutlivesTheCaller: a client that hangs up while its request
// triggers a fetch must not abort it, or an attacker could keep every
// verifier from learning a rotated key by spending the refetch allowance on
// fetches it cancels.
func TestKeySetFetchOutlivesTheCaller(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src := &countingSource{f: f}
	keys := token.NewKeySet(src.fetch, token.KeySetConfig{Now: f.clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	kid, _ := f.ks.Active()
	if _, err := keys.Key(ctx, kid); err != nil {
		t.Errorf("Key(%s) with a cancelled context = %v, want the fetch to complete", kid, err)
	}
}

// TestKeySetFetchTimeout: a hung auth service holds verifiers for at most
// FetchTimeout.
func TestKeySetFetchTimeout(t *testing.T) {
	t.Parallel()
	hung := func(ctx context.Context) ([]token.JWK, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	keys := token.NewKeySet(hung, token.KeySetConfig{FetchTimeout: 50 * time.Millisecond})
	start := time.Now()
	_, err := keys.Key(context.Background(), "k1")
	wantRefused(t, "Key(k1) from a hung source", err, token.ReasonUnknownKid)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Key(k1) from a hung source took %v, want about the 50ms FetchTimeout", d)
	}
}

// TestKeySetServesStaleKeyDuringRefresh: while one caller refreshes a stale
// cache, the others go on with the key they hold instead of queueing.
func TestKeySetServesStaleKeyDuringRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	src := func(context.Context) ([]token.JWK, error) {
		if calls.Add(1) == 2 {
			close(entered)
			<-release
		}
		return f.ks.PublicKeys(), nil
	}
	keys := token.NewKeySet(src, token.KeySetConfig{Now: f.clock.Now, TTL: time.Minute})
	kid, priv := f.ks.Active()
	if _, err := keys.Key(context.Background(), kid); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	done := make(chan error)
	go func() {
		_, err := keys.Key(context.Background(), kid)
		done <- err
	}()
	<-entered
	type result struct {
		key ed25519.PublicKey
		err error
	}
	during := make(chan result, 1)
	go func() {
		key, err := keys.Key(context.Background(), kid)
		during <- result{key, err}
	}()
	select {
	case got := <-during:
		if got.err != nil || !got.key.Equal(priv.Public()) {
			t.Errorf("Key(%s) during a refresh = %v, want the cached key", kid, got.err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Key(%s) during a refresh is still waiting for the refresh, want the cached key at once", kid)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Key(%s) that refreshed = %v", kid, err)
	}
}

// TestKeySetIgnoresUnusableKeys: a JWKS entry that is not an Ed25519 signing
// key never verifies anything, whatever its kid.
func TestKeySetIgnoresUnusableKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	x := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	jwks := append(f.ks.PublicKeys(),
		token.JWK{Kty: "RSA", Kid: "rsa"},
		token.JWK{Kty: "OKP", Crv: "X25519", X: x, Kid: "x25519"},
		token.JWK{Kty: "OKP", Crv: "Ed25519", X: "!!", Kid: "broken"},
		token.JWK{Kty: "OKP", Crv: "Ed25519", X: x[:20], Kid: "short"},
		token.JWK{Kty: "OKP", Crv: "Ed25519", X: x, Kid: "enc", Use: "enc"},
		token.JWK{Kty: "OKP", Crv: "Ed25519", X: x, Kid: "hs", Alg: "HS256"})
	keys := token.NewKeySet(func(context.Context) ([]token.JWK, error) { return jwks, nil }, token.KeySetConfig{})
	if err := keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"rsa", "x25519", "broken", "short", "enc", "hs"} {
		if _, err := keys.Key(context.Background(), kid); err == nil {
			t.Errorf("Key(%s) = nil error, want an unusable key refused", kid)
		}
	}
	kid, _ := f.ks.Active()
	if _, err := keys.Key(context.Background(), kid); err != nil {
		t.Errorf("Key(%s) = %v, want the good key next to the bad ones", kid, err)
	}
}
