// Package mfa is the auth service's second factor: TOTP codes (RFC 6238:
// HMAC-SHA-1, six digits, 30-second steps, one step of clock skew either
// way) and the sealing of TOTP secrets at rest. It is pure: the domain
// decides when a code is needed and remembers which steps were used, so
// that each code is accepted once.
package mfa

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters every authenticator app defaults to.
const (
	Period     = 30 * time.Second // one time step
	Digits     = 6
	Skew       = 1  // steps accepted either side of now, for clocks that drift
	SecretSize = 20 // bytes: the HMAC-SHA-1 block RFC 4226 recommends
)

// b32 is how secrets are written for people and apps: RFC 4648 base32
// without padding, as otpauth URIs carry them.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Secret is a TOTP shared secret.
type Secret []byte

// NewSecret returns a fresh random secret.
func NewSecret() Secret {
	s := make(Secret, SecretSize)
	_, _ = rand.Read(s) // crypto/rand.Read never fails (Go 1.24+)
	return s
}

// ErrBadSecret is returned by ParseSecret for text that is not a base32
// secret of at least SecretSize bytes.
var ErrBadSecret = errors.New("mfa: not a base32 TOTP secret of at least 20 bytes")

// ParseSecret reads a secret written by Base32 (case and padding are
// forgiven, surrounding space ignored).
func ParseSecret(text string) (Secret, error) {
	s, err := b32.DecodeString(strings.TrimRight(strings.ToUpper(strings.TrimSpace(text)), "="))
	if err != nil || len(s) < SecretSize {
		return nil, ErrBadSecret
	}
	return s, nil
}

// Base32 returns the secret as a person types it into an app.
func (s Secret) Base32() string { return b32.EncodeToString(s) }

// URI returns the otpauth:// URI of the secret, for a QR code: issuer and
// account label the entry in the app. Neither may be empty.
func (s Secret) URI(issuer, account string) (string, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Secret: s,
		Period: uint(Period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", err
	}
	return key.URL(), nil
}

// Step returns the time step t falls in.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code returns the code of step.
func (s Secret) Code(step int64) string {
	code, err := hotp.GenerateCodeCustom(s.Base32(), uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		panic("mfa: a Secret always encodes: " + err.Error()) // base32 of our own bytes
	}
	return code
}

// Match returns the step within Skew of now whose code is code, and true,
// or false if none is. Every step of the window is compared, in constant
// time, whatever matches, so the time taken says nothing about the code.
// The caller refuses a step it has accepted before.
func Match(s Secret, code string, now time.Time) (int64, bool) {
	if len(code) != Digits || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	current := Step(now)
	var found int64
	ok := 0
	for d := int64(-Skew); d <= Skew; d++ {
		if subtle.ConstantTimeCompare([]byte(s.Code(current+d)), []byte(code)) == 1 {
			found, ok = current+d, 1
		}
	}
	return found, ok == 1
}
