package main

import (
	"bytes"
	"encoding/base32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrintsEachCodeOnce: the RFC 6238 vector's code first, the next
// step's on a second run in the same step, and a wait for the clock on a
// third.
func TestPrintsEachCodeOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "admin-totp")
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	if err := os.WriteFile(path, []byte(strings.ToLower(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1111111109, 0) // step 37037036, code 081804
	var slept time.Duration
	now := func() time.Time { return clock }
	sleep := func(d time.Duration) { slept += d; clock = clock.Add(d) }
	var got []string
	for range 3 {
		var out bytes.Buffer
		if err := run([]string{"totp", path}, &out, now, sleep); err != nil {
			t.Fatalf("run() = %v", err)
		}
		got = append(got, strings.TrimSpace(out.String()))
	}
	if got[0] != "081804" || got[1] == got[0] || got[2] == got[1] {
		t.Errorf("codes = %v, want 081804 and then two other codes", got)
	}
	if slept <= 0 || slept > 31*time.Second {
		t.Errorf("the third run waited %v, want up to one step", slept)
	}
	if err := run([]string{"totp", filepath.Join(t.TempDir(), "missing")}, &bytes.Buffer{}, now, sleep); err == nil {
		t.Error("run(missing file) succeeded")
	}
}
