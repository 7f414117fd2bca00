package password

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// cheap keeps the unit tests fast; BenchmarkVerify uses the real parameters.
var cheap = Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newHasher(t testing.TB, p Params, pool PoolConfig) *Hasher {
	t.Helper()
	h, err := NewHasher(p, pool)
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	return h
}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHasher(t, cheap, PoolConfig{})
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("Hash() = %q, want a PHC argon2id string", encoded)
	}
	for _, tc := range []struct {
		name string
		pw   string
		want bool
	}{
		{"right", "correct horse battery staple", true},
		{"wrong", "correct horse battery stapl", false},
		{"case", "Correct horse battery staple", false},
		{"trailing space", "correct horse battery staple ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, rehash, err := h.Verify(ctx, tc.pw, encoded)
			if err != nil || ok != tc.want || rehash {
				t.Errorf("Verify(%q) = %v, %v, %v; want %v, false, nil", tc.pw, ok, rehash, err, tc.want)
			}
		})
	}
}

func TestSaltIsRandom(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{})
	a, _ := h.Hash(context.Background(), "same password here")
	b, _ := h.Hash(context.Background(), "same password here")
	if a == b {
		t.Errorf("two hashes of one password are equal (%q): the salt is not random", a)
	}
}

func TestDefaultsAreOWASP(t *testing.T) {
	t.Parallel()
	p := OWASP()
	if p.MemoryKiB < 19456 || p.Time < 2 || p.Threads < 1 || p.SaltLen < 16 {
		t.Errorf("OWASP() = %+v, want at least m=19456 t=2 p=1 salt=16", p)
	}
}

func TestVerifyRefusesTamperedAndMalformedHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHasher(t, cheap, PoolConfig{})
	good, _ := h.Hash(ctx, "correct horse battery staple")
	parts := strings.Split(good, "$")
	flipped := []byte(parts[5])
	if flipped[0] == 'A' {
		flipped[0] = 'B'
	} else {
		flipped[0] = 'A'
	}
	for _, tc := range []struct {
		name    string
		encoded string
		wantErr bool
	}{
		{"key tampered", strings.Join(append(parts[:5:5], string(flipped)), "$"), false},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1), true},
		{"old version", strings.Replace(good, "v=19", "v=16", 1), true},
		{"huge memory", strings.Replace(good, "m=64,", "m=4194304,", 1), true},
		{"zero time", strings.Replace(good, "t=1,", "t=0,", 1), true},
		{"many threads", strings.Replace(good, "p=1", "p=255", 1), true},
		{"leading zero", strings.Replace(good, "m=64,", "m=064,", 1), true},
		{"trailing junk in params", strings.Replace(good, "p=1$", "p=1,x=2$", 1), true},
		{"padded base64", good + "=", true},
		{"line break in the key", strings.Join(append(parts[:5:5], parts[5][:4]+"\n"+parts[5][4:]), "$"), true},
		{"junk after the version", strings.Replace(good, "v=19", "v=19x", 1), true},
		{"signed number", strings.Replace(good, "m=64,", "m=+64,", 1), true},
		{"short salt", strings.Join([]string{"", "argon2id", "v=19", "m=64,t=1,p=1", "c2FsdA", parts[5]}, "$"), true},
		{"missing part", strings.Join(parts[:5], "$"), true},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", true},
		{"plain text", "correct horse battery staple", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, _, err := h.Verify(ctx, "correct horse battery staple", tc.encoded)
			if ok {
				t.Fatalf("Verify(right password, %q) = true, want false", tc.encoded)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("Verify(%q) error = %v, want error %v", tc.encoded, err, tc.wantErr)
			}
			if err != nil && errs.KindOf(err) != errs.Internal {
				t.Errorf("Verify(%q) kind = %v, want internal", tc.encoded, errs.KindOf(err))
			}
		})
	}
}

func TestLengthLimitBeforeHashing(t *testing.T) {
	t.Parallel()
	// A pool with no room at all: if the length check ran after acquiring a
	// slot, these calls would report ErrBusy instead of Invalid.
	h := newHasher(t, cheap, PoolConfig{Workers: 1, Queue: -1})
	release, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, tc := range []struct {
		name string
		pw   string
	}{
		{"empty", ""},
		{"129 ascii", strings.Repeat("a", 129)},
		{"129 runes", strings.Repeat("é", 129)},
		{"1 MiB", strings.Repeat("x", 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := h.Hash(context.Background(), tc.pw); errs.KindOf(err) != errs.Invalid {
				t.Errorf("Hash(len %d) = %v, want invalid", len(tc.pw), err)
			}
			if _, _, err := h.Verify(context.Background(), tc.pw, h.dummy); errs.KindOf(err) != errs.Invalid {
				t.Errorf("Verify(len %d) = %v, want invalid", len(tc.pw), err)
			}
		})
	}
}

func TestLongestPasswordsAccepted(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{})
	for _, pw := range []string{strings.Repeat("a", MaxLength), strings.Repeat("é", MaxLength)} {
		encoded, err := h.Hash(context.Background(), pw)
		if err != nil {
			t.Fatalf("Hash(%d runes) = %v, want success", MaxLength, err)
		}
		if ok, _, err := h.Verify(context.Background(), pw, encoded); !ok || err != nil {
			t.Errorf("Verify(%d runes) = %v, %v; want true, nil", MaxLength, ok, err)
		}
	}
}

func TestUnknownAccountUsesDummyWithCurrentParams(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{})
	p, _, _, err := decode(h.dummy)
	if err != nil || p != h.params {
		t.Fatalf("dummy params = %+v, %v; want %+v so an unknown email costs what a known one does", p, err, h.params)
	}
	ok, rehash, err := h.Verify(context.Background(), "anything at all", "")
	if ok || rehash || err != nil {
		t.Errorf(`Verify(pw, "") = %v, %v, %v; want false, false, nil`, ok, rehash, err)
	}
}

func TestRehashWhenStoredHashIsWeaker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	weak := newHasher(t, cheap, PoolConfig{})
	strong := newHasher(t, Params{MemoryKiB: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, PoolConfig{})
	old, _ := weak.Hash(ctx, "correct horse battery staple")
	ok, rehash, err := strong.Verify(ctx, "correct horse battery staple", old)
	if !ok || !rehash || err != nil {
		t.Errorf("Verify(weaker hash) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	if ok, rehash, _ := strong.Verify(ctx, "wrong password here", old); ok || rehash {
		t.Errorf("Verify(wrong, weaker hash) = %v, %v; want false, false: never rehash on a failed login", ok, rehash)
	}
}

func TestNewHasherRefusesBadParams(t *testing.T) {
	t.Parallel()
	for _, p := range []Params{
		{},
		{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
	} {
		if _, err := NewHasher(p, PoolConfig{}); err == nil {
			t.Errorf("NewHasher(%+v) = nil error, want refusal", p)
		}
	}
}

func TestPoolShedsBeyondQueue(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{Workers: 1, Queue: 1})
	release, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// One caller may wait for the busy worker.
	waited := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "a waiting password")
		waited <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for h.waiting.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second caller never started waiting")
		}
		time.Sleep(time.Millisecond)
	}
	// A third is shed at once, with a retry delay, not queued.
	_, err = h.Hash(context.Background(), "a shed password!")
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash(pool and queue full) = %v, want ErrBusy", err)
	}
	if e, _ := errs.As(err); e.Kind != errs.RateLimited || e.RetryAfter <= 0 {
		t.Errorf("ErrBusy = %+v, want RateLimited with RetryAfter", e)
	}
	release()
	if err := <-waited; err != nil {
		t.Errorf("queued Hash() = %v, want success once the worker is free", err)
	}
}

func TestPoolWaitHonoursCancellation(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{Workers: 1, Queue: 4})
	release, _ := h.acquire(context.Background())
	defer release()
	// No deadline, so the wait is bounded only by the cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "password waiting")
		done <- err
	}()
	waitFor(t, "the caller to start waiting", func() bool { return h.waiting.Load() == 1 })
	cancel()
	if err := <-done; errs.KindOf(err) != errs.Unavailable {
		t.Errorf("Hash(cancelled while queued) = %v, want unavailable", err)
	}
	if n, p := h.waiting.Load(), len(h.places); n != 0 || p != 1 {
		t.Errorf("waiting = %d, places taken = %d after the cancelled caller left; want 0 and 1", n, p)
	}
}

// waitFor polls cond: for a goroutine to reach a blocking point, not for
// time to pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPoolNeverExceedsWorkers(t *testing.T) {
	t.Parallel()
	h := newHasher(t, cheap, PoolConfig{Workers: 2, Queue: 100})
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Hash(context.Background(), "concurrent password"); err != nil {
				t.Errorf("Hash() = %v", err)
			}
			if n := len(h.slots); n > 2 {
				t.Errorf("slots in use = %d, want at most 2", n)
			}
		}()
	}
	wg.Wait()
}

func BenchmarkVerifyOWASP(b *testing.B) {
	h := newHasher(b, OWASP(), PoolConfig{})
	encoded, _ := h.Hash(context.Background(), "correct horse battery staple")
	b.ResetTimer()
	for b.Loop() {
		if ok, _, _ := h.Verify(context.Background(), "correct horse battery staple", encoded); !ok {
			b.Fatal("Verify() = false")
		}
	}
}
