package pagetoken

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/errs"
)

func testKey(fill byte) []byte { return bytes.Repeat([]byte{fill}, MinKeySize) }

func newCodec(t testing.TB, fill byte) *Codec {
	t.Helper()
	c, err := New(testKey(fill))
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return c
}

// wantInvalid fails unless err is the one page-token error, so every refusal
// looks the same to a client.
func wantInvalid(t *testing.T, what string, cursor []byte, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Decode(%s) = %q, nil; want invalid page token", what, cursor)
	}
	if errs.KindOf(err) != errs.Invalid || errs.SafeMessage(err) != "invalid page token" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Decode(%s) error = %v (kind %v), want errs.Invalid \"invalid page token\"", what, err, errs.KindOf(err))
	}
}

func TestNewRejectsShortKeys(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 16, MinKeySize - 1} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New(%d-byte key) error = nil, want error", n)
		}
	}
	if _, err := New(make([]byte, 64)); err != nil {
		t.Errorf("New(64-byte key) error = %v, want nil", err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 7)
	tests := []struct {
		name   string
		scope  string
		cursor []byte
	}{
		{"empty cursor", "accounts.list|u1|", nil},
		{"typical", "accounts.list|u1|u2", []byte(`{"t":"2024-01-01T00:00:00Z","id":"x"}`)},
		{"binary", "s", []byte{0, 1, 2, 255, 254}},
		{"empty scope", "", []byte("c")},
		{"max cursor", "s", bytes.Repeat([]byte{0xAB}, MaxCursorSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := c.Encode(tt.scope, tt.cursor)
			got, err := c.Decode(tt.scope, tok)
			if err != nil {
				t.Fatalf("Decode(Encode(%q)) error = %v", tt.cursor, err)
			}
			if !bytes.Equal(got, tt.cursor) {
				t.Fatalf("Decode(Encode(%q)) = %q, want %q", tt.cursor, got, tt.cursor)
			}
			if strings.ContainsAny(tok, "+/=") {
				t.Errorf("Encode() = %q, want unpadded base64url", tok)
			}
		})
	}
}

func TestKeyIsCopied(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	c, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Encode("s", []byte("cursor"))
	key[0] ^= 0xFF // the caller reusing its buffer must not change the codec
	if _, err := c.Decode("s", tok); err != nil {
		t.Fatalf("Decode after caller mutated key: error = %v, want nil", err)
	}
}

func TestDecodeReturnsACopy(t *testing.T) {
	t.Parallel()
	c := newCodec(t, 1)
	tok := c.Encode("s", []byte("abc"))
	a, _ := c.Decode("s", tok)
	a[0] = 'z'
	b, _ := c.Decode("s", tok)
	if string(b) != "abc" {
		t.Fatalf("Decode() = %q after mutating an earlier result, want %q", b, "abc")
	}
}

func TestEncodePanicsOnOversizeCursor(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("Encode(oversize cursor) did not panic")
		}
	}()
	newCodec(t, 1).Encode("s", make([]byte, MaxCursorSize+1))
}
