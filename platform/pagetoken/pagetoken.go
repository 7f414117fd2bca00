// Package pagetoken turns a list cursor into an opaque page token that a
// client can hand back but can neither read in any useful way nor alter.
//
// A token is base64url(version || cursor || mac), where mac is
// HMAC-SHA256(key, version || len(scope) || scope || cursor). The scope names
// the caller and the query (for example "accounts.list|<userID>|<owner>"), so a
// token minted for one user's or one query's pages is rejected anywhere else:
// a client can never page through a list it could not have started itself.
// Every failure is the same errs.Invalid error, so a prober learns nothing
// about why a token was refused.
package pagetoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/bastion-bank/bastion/platform/errs"
)

const (
	// version is the first byte of every token; bumping it retires all
	// tokens minted before a format change.
	version byte = 1

	// MinKeySize is the shortest accepted HMAC key, in bytes: the size of
	// the SHA-256 output, below which the key, not the MAC, is the weak part.
	MinKeySize = 32

	// MaxCursorSize bounds the cursor a token may carry, in bytes, so that
	// decoding a hostile token costs a bounded amount of work.
	MaxCursorSize = 512

	macSize = sha256.Size
)

// maxTokenLen is the longest encoded token Decode will even look at: the
// unpadded base64 length of the largest raw token.
const maxTokenLen = ((1+MaxCursorSize+macSize)*8 + 5) / 6

// ErrInvalid matches (with errors.Is) the error Decode returns for every
// token it refuses. Decode returns a fresh copy so that no caller can alter
// the sentinel.
var ErrInvalid = invalid()

const (
	invalidReason = "invalid_page_token"
	invalidMsg    = "invalid page token"
)

func invalid() *errs.Error { return errs.Reasoned(errs.Invalid, invalidReason, invalidMsg) }

// Codec mints and checks page tokens with one secret key. It is safe for
// concurrent use.
type Codec struct {
	key []byte
}

// New returns a Codec keyed with key, which must be at least MinKeySize bytes
// of secret randomness. The key is copied, so the caller may reuse its slice.
func New(key []byte) (*Codec, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("pagetoken: key is %d bytes, need at least %d", len(key), MinKeySize)
	}
	return &Codec{key: append([]byte(nil), key...)}, nil
}

// Encode returns the token for cursor, bound to scope. It panics if cursor is
// longer than MaxCursorSize, because only a programming error produces one and
// the token would be refused by Decode anyway.
func (c *Codec) Encode(scope string, cursor []byte) string {
	if len(cursor) > MaxCursorSize {
		panic(fmt.Sprintf("pagetoken: cursor of %d bytes exceeds %d", len(cursor), MaxCursorSize))
	}
	raw := make([]byte, 0, 1+len(cursor)+macSize)
	raw = append(raw, version)
	raw = append(raw, cursor...)
	raw = append(raw, c.mac(version, scope, cursor)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Decode returns the cursor inside token if token was produced by Encode with
// this key and this scope and has not been changed. Any other token, including
// an empty one, gives an errs.Invalid error with the message
// "invalid page token". Callers treat an empty token as "first page" before
// calling Decode.
func (c *Codec) Decode(scope, token string) ([]byte, error) {
	if token == "" || len(token) > maxTokenLen || !urlSafe(token) {
		return nil, invalid()
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < 1+macSize || raw[0] != version {
		return nil, invalid()
	}
	cursor := raw[1 : len(raw)-macSize]
	got := raw[len(raw)-macSize:]
	if !hmac.Equal(got, c.mac(raw[0], scope, cursor)) {
		return nil, invalid()
	}
	return append([]byte(nil), cursor...), nil
}

// urlSafe reports whether s uses only the base64url alphabet. The decoder
// itself skips newlines, which would let many strings stand for one token.
func urlSafe(s string) bool {
	for i := range len(s) {
		c := s[i]
		ok := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

// mac authenticates the version, the scope and the cursor together. The
// scope's length is included so that no split of scope||cursor into another
// scope and cursor yields the same input.
func (c *Codec) mac(v byte, scope string, cursor []byte) []byte {
	h := hmac.New(sha256.New, c.key)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(scope)))
	h.Write([]byte{v})
	h.Write(n[:])
	h.Write([]byte(scope))
	h.Write(cursor)
	return h.Sum(nil)
}
