package pagetoken_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/pagetoken"
)

// Without a key file the codec still works, but says loudly that page tokens
// will not survive a restart or reach another replica.
func TestFromFileWithoutKeyFileWarns(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	c, err := pagetoken.FromFile("", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || c == nil {
		t.Fatalf("FromFile(\"\") = %v, %v; want a codec", c, err)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "BANK_PAGE_TOKEN_KEY_FILE") {
		t.Errorf("FromFile(\"\") logged %q, want a warning naming BANK_PAGE_TOKEN_KEY_FILE", out)
	}
	other, _ := pagetoken.FromFile("", slog.New(slog.DiscardHandler))
	if _, err := other.Decode("s", c.Encode("s", []byte("x"))); err == nil {
		t.Error("two processes without a key file accepted each other's tokens; want independent random keys")
	}
}

func TestFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "key")
	os.WriteFile(good, []byte(strings.Repeat("k", 40)+"\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too short\n"), 0o600)
	a, err := pagetoken.FromFile(good, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pagetoken.FromFile(good, slog.New(slog.DiscardHandler))
	if _, err := b.Decode("s", a.Encode("s", []byte("x"))); err != nil {
		t.Errorf("two codecs from one key file disagree: %v", err)
	}
	for _, p := range []string{short, filepath.Join(dir, "missing")} {
		if _, err := pagetoken.FromFile(p, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("FromFile(%s) succeeded", filepath.Base(p))
		}
	}
}

// TestFromFileKeyFormats pins which bytes become the key. Random binary keys
// that start or end with a white space byte must be used whole: trimming them
// made about one random 32-byte key in twenty too short to load.
func TestFromFileKeyFormats(t *testing.T) {
	t.Parallel()
	binary := func(first, last byte) []byte {
		b := bytes.Repeat([]byte{0x9c}, 32)
		b[0], b[31] = first, last
		return b
	}
	hexKey := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name    string
		file    []byte
		wantKey []byte // nil: FromFile must fail
	}{
		{"binary ending in newline", binary(0x9c, '\n'), binary(0x9c, '\n')},
		{"binary starting with a space", binary(' ', 0x9c), binary(' ', 0x9c)},
		{"binary with tab and carriage return", binary('\t', '\r'), binary('\t', '\r')},
		{"hex text with newline", []byte(hexKey + "\n"), []byte(hexKey)},
		{"text with surrounding blanks", []byte("  " + hexKey + " \r\n"), []byte(hexKey)},
		{"short text padded to 32 bytes", []byte(strings.Repeat(" ", 16) + "sixteen-bytes!!!"), nil},
		{"short binary", binary(0x9c, 0x9c)[:31], nil},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := pagetoken.FromFile(path, slog.New(slog.DiscardHandler))
			if tc.wantKey == nil {
				if err == nil {
					t.Fatalf("FromFile(%q) succeeded, want an error", tc.file)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromFile(%q) = %v, want a codec", tc.file, err)
			}
			want, err := pagetoken.New(tc.wantKey)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := want.Decode("s", got.Encode("s", []byte("x"))); err != nil {
				t.Errorf("FromFile(%q) keyed the codec with other bytes than %q: %v", tc.file, tc.wantKey, err)
			}
		})
	}
}
