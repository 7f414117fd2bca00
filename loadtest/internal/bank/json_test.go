package bank

import (
	"encoding/json"
	"maps"
	"testing"
)

// jsonObject replaced json.Marshal of a map[string]string for the bodies:
// whatever the strings, the server must decode the same object from it.
func checkJSONObject(t *testing.T, kv ...string) {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	old, _ := json.Marshal(want)
	var got, fromOld map[string]string
	b := jsonObject(kv...)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("jsonObject(%q) = %s, not JSON: %v", kv, b, err)
	}
	_ = json.Unmarshal(old, &fromOld)
	if !maps.Equal(got, fromOld) {
		t.Errorf("jsonObject(%q) decodes to %q, json.Marshal of the map to %q", kv, got, fromOld)
	}
}

func TestJSONObjectDecodesAsTheMapDid(t *testing.T) {
	t.Parallel()
	tricky := []string{"", "plain", `quote"inside`, `back\slash`, "new\nline", "tab\t", "\x00nul", "\x7fdel",
		"<script>&amp;", "ünïcødé", "emoji 😀", "\xff\xfeinvalid utf-8", "\u2028line separator", `"}`, `\"`, "{", ","}
	for _, s := range tricky {
		checkJSONObject(t, "k", s)
		checkJSONObject(t, s, "v", "second", s)
	}
	checkJSONObject(t)
	tb := TransferBody{From: "5f0e8a52-1c3b-4d7e-8f6a-9b2c4d1e3f50", To: "8d2a6c14-7e9f-4b3a-a5c1-2e4f6d8b0a93", Amount: 17, Currency: "EUR", Description: "bankload 7"}
	if got, want := string(Transfer("t", "k", tb).Body),
		`{"fromAccountId":"5f0e8a52-1c3b-4d7e-8f6a-9b2c4d1e3f50","toAccountId":"8d2a6c14-7e9f-4b3a-a5c1-2e4f6d8b0a93","amount":"17","currency":"EUR","description":"bankload 7"}`; got != want {
		t.Errorf("transfer body = %s, want %s", got, want)
	}
}

// The keys are the bank package's constants; the values come from set-up
// answers and flags.
func FuzzJSONObject(f *testing.F) {
	f.Add("a@example.com", `p"\x`)
	f.Add("\x00", "\xff😀")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		checkJSONObject(t, "email", v1, "password", v2)
	})
}
