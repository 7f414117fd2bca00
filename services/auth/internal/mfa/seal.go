package mfa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"unicode"
	"unicode/utf8"
)

// MinKeySize is the least key material a key file must hold, in bytes.
const MinKeySize = 32

// sealVersion is the first byte of every sealed secret: the format, so
// that a later one (another cipher, a key rotation) can be told apart.
const sealVersion byte = 1

// keyIDSize is how much of the key's fingerprint a sealed secret carries,
// so that opening it with another key says so instead of "tampered".
const keyIDSize = 4

// ErrWrongKey is returned by Open for a secret sealed under another key:
// BANK_TOTP_KEY_FILE changed since it was sealed.
var ErrWrongKey = errors.New("mfa: the secret was sealed with another key (did BANK_TOTP_KEY_FILE change?)")

// ErrTampered is returned by Open for a sealed secret that does not
// authenticate: altered, truncated, or moved from another user's row.
var ErrTampered = errors.New("mfa: the sealed secret does not authenticate")

// Sealer encrypts TOTP secrets at rest with AES-256-GCM. The user's id is
// the additional data, so a sealed secret copied into another user's row
// does not open. The key is derived (HKDF-SHA-256) from a key file, so the
// file may be any 32 or more random bytes.
type Sealer struct {
	aead  cipher.AEAD
	keyID [keyIDSize]byte
}

// NewSealer returns a Sealer keyed from material, at least MinKeySize bytes
// of secret randomness.
func NewSealer(material []byte) (*Sealer, error) {
	if len(material) < MinKeySize {
		return nil, fmt.Errorf("mfa: key is %d bytes, need at least %d", len(material), MinKeySize)
	}
	key, err := hkdf.Key(sha256.New, material, nil, "bastion auth: TOTP secrets at rest, AES-256-GCM", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &Sealer{aead: aead}
	fp := sha256.Sum256(append([]byte("bastion auth: TOTP key id\x00"), key...))
	copy(s.keyID[:], fp[:])
	return s, nil
}

// SealerFromFile returns a Sealer keyed from the file at path (the
// BANK_TOTP_KEY_FILE): printable text (e.g. `openssl rand -hex 32`) is used
// without its surrounding white space, anything else byte for byte.
func SealerFromFile(path string) (*Sealer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read BANK_TOTP_KEY_FILE: %w", err)
	}
	s, err := NewSealer(keyMaterial(b))
	if err != nil {
		return nil, fmt.Errorf("BANK_TOTP_KEY_FILE: %w", err)
	}
	return s, nil
}

// keyMaterial returns the key a file holds: printable text without its
// surrounding white space, or anything else unchanged (as platform/pagetoken
// reads its key file).
func keyMaterial(b []byte) []byte {
	text := bytes.TrimSpace(b)
	if !utf8.Valid(text) {
		return b
	}
	for _, r := range string(text) {
		if !unicode.IsPrint(r) {
			return b
		}
	}
	return text
}

// Seal encrypts secret for userID: version || key id || nonce || ciphertext.
func (s *Sealer) Seal(userID string, secret Secret) []byte {
	head := append([]byte{sealVersion}, s.keyID[:]...)
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	out := append(head, nonce...)
	return s.aead.Seal(out, nonce, secret, s.additional(head, userID))
}

// Open decrypts what Seal made for userID. It returns ErrWrongKey or
// ErrTampered.
func (s *Sealer) Open(userID string, sealed []byte) (Secret, error) {
	headLen := 1 + keyIDSize
	if len(sealed) < headLen+s.aead.NonceSize()+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrTampered
	}
	head := sealed[:headLen]
	if !bytes.Equal(head[1:], s.keyID[:]) {
		return nil, ErrWrongKey
	}
	nonce := sealed[headLen : headLen+s.aead.NonceSize()]
	secret, err := s.aead.Open(nil, nonce, sealed[headLen+s.aead.NonceSize():], s.additional(head, userID))
	if err != nil {
		return nil, ErrTampered
	}
	return secret, nil
}

// additional binds a ciphertext to its format, its key and its user.
func (s *Sealer) additional(head []byte, userID string) []byte {
	return append(append([]byte(nil), head...), []byte("\x00user:"+userID)...)
}
