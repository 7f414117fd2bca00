package telemetry

import (
	"regexp"
	"testing"
)

// safeLabel is SafeLabel's promise, written independently of its loop.
var safeLabel = regexp.MustCompile(`^[a-z0-9_.:/-]{1,64}$`)

// FuzzSafeLabel checks that whatever text reaches a metric label (a reason
// built from request data, an error's words), the label is either that text,
// when it is short and from the safe alphabet, or OtherReason: never a
// truncated, escaped or otherwise altered copy that could still carry an
// email, a token or an id into the metrics.
func FuzzSafeLabel(f *testing.F) {
	for _, s := range []string{
		"bad_signature", "http:429", "grpc/Unavailable", "a", "", "Bad", "user@example.com",
		"eyJhbGciOiJFZERTQSJ9", "path/with/5f0c6a52-8a6b-4c55-9d6e-2f4a1b7e9c10", "tab\there", "ünïcode",
		"x\x00", "{le=\"1\"}", string(make([]byte, 64)), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := SafeLabel(v)
		want := OtherReason
		if safeLabel.MatchString(v) {
			want = v
		}
		if got != want {
			t.Fatalf("SafeLabel(%q) = %q, want %q", v, got, want)
		}
		if !safeLabel.MatchString(got) {
			t.Fatalf("SafeLabel(%q) = %q, which is not a safe label itself", v, got)
		}
	})
}
