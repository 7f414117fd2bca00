package password

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzDecode feeds the stored-hash parser any string a corrupt or tampered
// row could hold. It must never panic; what it accepts must be within the
// parameter bounds (so that one check cannot be made to allocate gigabytes)
// and must be the one canonical PHC spelling of what it parsed, so that a
// hash cannot be altered in form and still pass as the same hash; and what
// it refuses must make verify fail before any key is derived.
func FuzzDecode(f *testing.F) {
	good := encode(Params{MemoryKiB: 64, Time: 1, Threads: 1}, bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 32))
	parts := strings.Split(good, "$")
	for _, s := range []string{
		good,
		encode(OWASP(), bytes.Repeat([]byte{0xff}, 16), bytes.Repeat([]byte{0xfe}, 32)),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64,", "m=4194304,", 1),
		strings.Replace(good, "m=64,", "m=064,", 1),
		strings.Replace(good, "m=64,", "m=+64,", 1),
		strings.Replace(good, "p=1", "p=256", 1),
		strings.Replace(good, "p=1$", "p=1,x=2$", 1),
		strings.Replace(good, "argon2id", "argon2i", 1),
		good + "=",
		good + "$",
		strings.Join(parts[:5], "$"),
		"$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
		"",
		"$",
		"$argon2id$v=19$m=8,t=1,p=1$$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, encoded string) {
		p, salt, key, err := decode(encoded)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("decode(%q) error = %v, want errMalformed", encoded, err)
			}
			// verify refuses before deriving a key, or this would be slow.
			if ok, _, err := verify("pw", encoded); ok || !errors.Is(err, errMalformed) {
				t.Fatalf("verify(pw, %q) = %v, %v; want false, errMalformed", encoded, ok, err)
			}
			return
		}
		if err := p.check(); err != nil || int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) {
			t.Fatalf("decode(%q) = %+v with %d-byte salt and %d-byte key (check: %v); want bounded parameters that match", encoded, p, len(salt), len(key), err)
		}
		if canonical := encode(p, salt, key); canonical != encoded {
			t.Fatalf("decode(%q) accepted a non-canonical hash; its canonical form is %q", encoded, canonical)
		}
	})
}
