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
