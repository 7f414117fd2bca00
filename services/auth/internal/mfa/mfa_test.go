package mfa_test

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
)

// rfcSecret is the SHA-1 seed of RFC 6238's test vectors.
var rfcSecret = mfa.Secret("12345678901234567890")

// TestCodeMatchesRFC6238: the RFC's SHA-1 vectors, cut to six digits.
func TestCodeMatchesRFC6238(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		unix int64
		code string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		if got := rfcSecret.Code(mfa.Step(time.Unix(tt.unix, 0))); got != tt.code {
			t.Errorf("Code(T=%d) = %s, want %s", tt.unix, got, tt.code)
		}
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	now := time.Unix(1234567890, 0)
	step := mfa.Step(now)
	s := mfa.NewSecret()
	tests := []struct {
		name string
		code string
		step int64
		ok   bool
	}{
		{"now", s.Code(step), step, true},
		{"one step early", s.Code(step - 1), step - 1, true},
		{"one step late", s.Code(step + 1), step + 1, true},
		{"two steps early", s.Code(step - 2), 0, false},
		{"two steps late", s.Code(step + 2), 0, false},
		{"another secret's code", mfa.NewSecret().Code(step), 0, false},
		{"too short", s.Code(step)[:5], 0, false},
		{"with a space", " " + s.Code(step)[1:], 0, false},
		{"not digits", "12345a", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		got, ok := mfa.Match(s, tt.code, now)
		if ok != tt.ok || (ok && got != tt.step) {
			// Another secret's code or a neighbour step may collide by chance
			// (one in a million); a failure here twice in a row is a bug.
			t.Errorf("Match(%s) = %d, %v; want %d, %v", tt.name, got, ok, tt.step, tt.ok)
		}
	}
}

func TestSecretText(t *testing.T) {
	t.Parallel()
	s := mfa.NewSecret()
	for _, text := range []string{s.Base32(), strings.ToLower(s.Base32()), " " + s.Base32() + "====\n"} {
		got, err := mfa.ParseSecret(text)
		if err != nil || !bytes.Equal(got, s) {
			t.Errorf("ParseSecret(%q) = %x, %v; want %x", text, got, err, []byte(s))
		}
	}
	for _, text := range []string{"", "not base32!", "MFRGG"} {
		if _, err := mfa.ParseSecret(text); !errors.Is(err, mfa.ErrBadSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrBadSecret", text, err)
		}
	}
	uri, err := s.URI("Bastion", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != s.Base32() ||
		u.Query().Get("issuer") != "Bastion" || u.Query().Get("digits") != "6" || u.Query().Get("period") != "30" ||
		u.Query().Get("algorithm") != "SHA1" || !strings.Contains(u.Path, "alice@example.com") {
		t.Errorf("URI() = %s", uri)
	}
}

func TestSealer(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, 32)
	s, err := mfa.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	secret := mfa.NewSecret()
	const alice, bob = "1a1a1a1a-1111-4111-8111-111111111111", "2b2b2b2b-2222-4222-8222-222222222222"
	sealed := s.Seal(alice, secret)
	if bytes.Contains(sealed, secret) || bytes.Equal(sealed, s.Seal(alice, secret)) {
		t.Fatal("Seal shows the secret or is deterministic")
	}
	if got, err := s.Open(alice, sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open(Seal()) = %x, %v", got, err)
	}
	other, _ := mfa.NewSealer(bytes.Repeat([]byte{8}, 32))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for _, tt := range []struct {
		name   string
		sealer *mfa.Sealer
		user   string
		sealed []byte
		want   error
	}{
		{"another user's row", s, bob, sealed, mfa.ErrTampered},
		{"a flipped bit", s, alice, flipped, mfa.ErrTampered},
		{"truncated", s, alice, sealed[:10], mfa.ErrTampered},
		{"another key", other, alice, sealed, mfa.ErrWrongKey},
		{"nothing", s, alice, nil, mfa.ErrTampered},
	} {
		if _, err := tt.sealer.Open(tt.user, tt.sealed); !errors.Is(err, tt.want) {
			t.Errorf("Open(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := mfa.NewSealer(key[:31]); err == nil {
		t.Error("NewSealer accepted 31 bytes")
	}
}

func TestSealerFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hexKey := filepath.Join(dir, "hex")
	os.WriteFile(hexKey, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too short\n"), 0o600)
	a, err := mfa.SealerFromFile(hexKey)
	if err != nil {
		t.Fatalf("SealerFromFile(hex) = %v", err)
	}
	b, _ := mfa.NewSealer([]byte(strings.Repeat("ab", 32)))
	if _, err := b.Open("u", a.Seal("u", mfa.NewSecret())); err != nil {
		t.Errorf("a text key file is not used without its newline: %v", err)
	}
	for _, path := range []string{short, filepath.Join(dir, "missing")} {
		if _, err := mfa.SealerFromFile(path); err == nil || !strings.Contains(err.Error(), "BANK_TOTP_KEY_FILE") {
			t.Errorf("SealerFromFile(%s) = %v, want an error naming BANK_TOTP_KEY_FILE", path, err)
		}
	}
}
