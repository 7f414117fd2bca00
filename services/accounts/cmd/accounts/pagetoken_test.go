package main

import (
	"log/slog"
	"strings"
	"testing"
)

// Without a key file the service still works, but says loudly that page
// tokens will not survive a restart or reach another replica.
func TestPageTokenCodecWithoutKeyFileWarns(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	c, err := pageTokenCodec("", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || c == nil {
		t.Fatalf("pageTokenCodec(\"\") = %v, %v; want a codec", c, err)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "BANK_PAGE_TOKEN_KEY_FILE") {
		t.Errorf("pageTokenCodec(\"\") logged %q, want a warning naming BANK_PAGE_TOKEN_KEY_FILE", out)
	}
	other, _ := pageTokenCodec("", slog.New(slog.DiscardHandler))
	if _, err := other.Decode("s", c.Encode("s", []byte("x"))); err == nil {
		t.Error("two processes without a key file accepted each other's tokens; want independent random keys")
	}
}
