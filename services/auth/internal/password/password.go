// Package password hashes and checks passwords with argon2id, in a bounded
// pool so that a login storm cannot take every core, and holds the rule a
// new password must follow (Policy).
//
// Hashes are stored in the PHC string format
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash), so that parameters can be
// raised later: a stored hash carries its own parameters, and NeedsRehash
// says when one is weaker than the current ones.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/bastion-bank/bastion/platform/errs"
)

// MaxLength is the longest password accepted, in characters. Longer input is
// refused before any hashing, so that a huge password cannot buy extra CPU.
const MaxLength = 128

// MinLength is the shortest password a new account may choose, in characters
// once normalised (Policy).
const MinLength = 12

// Params are the argon2id cost parameters.
type Params struct {
	MemoryKiB uint32 // m, in KiB
	Time      uint32 // t, passes over memory
	Threads   uint8  // p, lanes
	SaltLen   uint32 // bytes of random salt
	KeyLen    uint32 // bytes of derived key
}

// OWASP returns the OWASP Password Storage Cheat Sheet's minimum for argon2id
// (m=19 MiB, t=2, p=1), with a 16-byte salt and a 32-byte key.
func OWASP() Params {
	return Params{MemoryKiB: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Limits on parameters read back from a stored hash. A tampered or corrupt
// row must not be able to make one check allocate gigabytes.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 16
	maxThreads   = 16
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

var errMalformed = errors.New("password: malformed hash")

// CheckLength refuses an empty password or one longer than MaxLength
// characters, with a client-safe Invalid error.
func CheckLength(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n == 0 || n > MaxLength {
		return errs.InvalidField("password", fmt.Sprintf("must be 1 to %d characters", MaxLength))
	}
	return nil
}

// hash derives a PHC string for pw with p and a fresh random salt.
func hash(pw string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return encode(p, salt, key), nil
}

// verify reports whether pw matches the PHC string encoded, comparing in
// constant time. It returns the parameters the hash was made with.
func verify(pw, encoded string) (bool, Params, error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, Params{}, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, want) == 1, p, nil
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC argon2id string strictly, in its canonical form only,
// and bounds its parameters.
func decode(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, errMalformed
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, errMalformed
	}
	var p Params
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || n != 3 {
		return Params{}, nil, nil, errMalformed
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return Params{}, nil, nil, errMalformed
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return Params{}, nil, nil, err
	}
	// fmt's scanning and base64's decoding both let through more than one
	// spelling of a hash (trailing junk after v=19, a sign or leading zero
	// in a number, a line break inside the salt or key): accept only the
	// one string encode would write.
	if encode(p, salt, key) != encoded {
		return Params{}, nil, nil, errMalformed
	}
	return p, salt, key, nil
}

// check bounds the parameters so that neither a weak configuration nor a
// corrupt stored hash gets through.
func (p Params) check() error {
	switch {
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("%w: memory %d KiB out of range", errMalformed, p.MemoryKiB)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: time %d out of range", errMalformed, p.Time)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: threads %d out of range", errMalformed, p.Threads)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("%w: salt length %d out of range", errMalformed, p.SaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("%w: key length %d out of range", errMalformed, p.KeyLen)
	}
	return nil
}

// weakerThan reports whether p costs less than q in any dimension.
func (p Params) weakerThan(q Params) bool {
	return p.MemoryKiB < q.MemoryKiB || p.Time < q.Time || p.KeyLen < q.KeyLen || p.SaltLen < q.SaltLen
}
