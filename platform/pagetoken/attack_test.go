package pagetoken

import (
	"encoding/base64"
	"strings"
	"testing"
)

const (
	scopeA = "accounts.list|user-a|"
	scopeB = "accounts.list|user-b|"
)

var cursor = []byte(`{"created_at":"2024-05-01T10:00:00.123456Z","id":"0b6c2f0e-8a51-4e0c-9d59-1b7f8c1e2a3d"}`)

// Flipping any single bit of the raw token must be caught, wherever it lands:
// version byte, cursor or MAC.
func TestDecodeRejectsEveryBitFlip(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 3)
	raw, err := base64.RawURLEncoding.DecodeString(c.Encode(scopeA, cursor))
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for bit := range 8 {
			mod := append([]byte(nil), raw...)
			mod[i] ^= 1 << bit
			got, err := c.Decode(scopeA, base64.RawURLEncoding.EncodeToString(mod))
			if err == nil {
				t.Fatalf("Decode(token with byte %d bit %d flipped) = %q, nil; want error", i, bit, got)
			}
			wantInvalid(t, "bit flip", got, err)
		}
	}
}

// Changing any character of the text token, the form a client actually
// tampers with, must be caught too.
func TestDecodeRejectsEveryCharacterChange(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 3)
	tok := c.Encode(scopeA, cursor)
	for i := range len(tok) {
		for _, r := range []byte{'A', 'z', '-', '_', '0'} {
			if tok[i] == r {
				continue
			}
			mod := tok[:i] + string(r) + tok[i+1:]
			got, err := c.Decode(scopeA, mod)
			wantInvalid(t, "changed character", got, err)
		}
	}
}

func TestDecodeRejectsTruncationAndExtension(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 3)
	tok := c.Encode(scopeA, cursor)
	for n := range len(tok) {
		got, err := c.Decode(scopeA, tok[:n])
		wantInvalid(t, "truncated", got, err)
		if n > 0 {
			got, err = c.Decode(scopeA, tok[n:])
			wantInvalid(t, "prefix cut", got, err)
		}
	}
	for _, suffix := range []string{"A", "AA", "AAAA", "=", "==", tok} {
		got, err := c.Decode(scopeA, tok+suffix)
		wantInvalid(t, "extended", got, err)
	}
}

// A token is only good for the scope it was minted for: another user, another
// owner filter, or a scope that differs only in where the boundary falls.
func TestDecodeRejectsOtherScopes(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 3)
	tok := c.Encode(scopeA, cursor)
	for _, scope := range []string{
		scopeB,
		"",
		"accounts.list|user-a|user-b",
		"accounts.list|user-a",
		"ACCOUNTS.LIST|USER-A|",
		"transactions.list|user-a|",
		scopeA + " ",
	} {
		got, err := c.Decode(scope, tok)
		wantInvalid(t, "other scope "+scope, got, err)
	}
}

// Moving bytes between the scope and the cursor must not produce a valid
// token: the scope's length is part of the MAC input.
func TestDecodeRejectsScopeCursorBoundaryShift(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 3)
	tok := c.Encode("ab", []byte("cd"))
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	mac := raw[len(raw)-macSize:]
	shifted := append([]byte{version}, []byte("bcd")...)
	shifted = append(shifted, mac...)
	got, err := c.Decode("a", base64.RawURLEncoding.EncodeToString(shifted))
	wantInvalid(t, "boundary shift", got, err)
}

func TestDecodeRejectsOtherKey(t *testing.T) {
	t.Parallel()
	mint := newCodec(t, 3)
	check := newCodec(t, 4)
	got, err := check.Decode(scopeA, mint.Encode(scopeA, cursor))
	wantInvalid(t, "other key", got, err)
}

// A token with a correct MAC but another version byte is refused, so that a
// future format cannot be confused with this one.
func TestDecodeRejectsOtherVersion(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 3)
	for _, v := range []byte{0, 2, 255} {
		raw := append([]byte{v}, cursor...)
		raw = append(raw, c.mac(v, scopeA, cursor)...)
		got, err := c.Decode(scopeA, base64.RawURLEncoding.EncodeToString(raw))
		wantInvalid(t, "other version", got, err)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 3)
	tok := c.Encode(scopeA, cursor)
	std := strings.NewReplacer("-", "+", "_", "/").Replace(tok)
	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"space", " "},
		{"not base64", "!!!!"},
		{"padded", tok + "=="},
		{"whitespace inside", tok[:10] + " " + tok[10:]},
		{"newline", tok + "\n"},
		{"carriage return inside", tok[:10] + "\r" + tok[10:]},
		{"too short for a MAC", base64.RawURLEncoding.EncodeToString([]byte{version, 1, 2})},
		{"only a version", base64.RawURLEncoding.EncodeToString([]byte{version})},
		{"all zero MAC", base64.RawURLEncoding.EncodeToString(make([]byte, 1+macSize))},
		{"huge", strings.Repeat("A", 1<<20)},
		{"just over the limit", strings.Repeat("A", maxTokenLen+1)},
		{"non-ascii", "ü" + tok},
	}
	if std != tok {
		tests = append(tests, struct{ name, token string }{"standard alphabet", std})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Decode(scopeA, tt.token)
			wantInvalid(t, tt.name, got, err)
		})
	}
}

// The largest token Encode can make must still fit under Decode's length
// limit, or full pages would become unreachable.
func TestMaxTokenFitsLimit(t *testing.T) {
	t.Parallel()
	tok := newCodec(t, 3).Encode(scopeA, make([]byte, MaxCursorSize))
	if len(tok) != maxTokenLen {
		t.Fatalf("len(Encode(max cursor)) = %d, want %d", len(tok), maxTokenLen)
	}
}
