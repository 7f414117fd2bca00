package telemetry

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// testJWT builds a correctly shaped, signed EdDSA token, so the tests attack
// the redactor with the real thing rather than a string written to match it.
func testJWT(t *testing.T) string {
	t.Helper()
	enc := base64.RawURLEncoding
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	signing := enc.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT","kid":"k1"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"0b6e7c1e","roles":["admin"],"exp":1999999999}`))
	return signing + "." + enc.EncodeToString(ed25519.Sign(priv, []byte(signing)))
}

// unsignedJWT is an "alg":"none" token, which has an empty third part.
func unsignedJWT() string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString([]byte(`{"sub":"x"}`)) + "."
}

func TestSensitiveKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want bool
	}{
		{"password", true},
		{"Password", true},
		{"PASSWD", true},
		{"new_password", true},
		{"db.password", true},
		{"client_secret", true},
		{"token", true},
		{"access_token", true},
		{"refreshToken", true},
		{"id-token", true},
		{"Authorization", true},
		{"proxy-authorization", true},
		{"cookie", true},
		{"Set-Cookie", true},
		{"api_key", true},
		{"X-Api-Key", true},
		{"apiKey", true},
		{"private_key", true},
		{"PrivateKey", true},
		{"credentials", true},
		{"BANK_ADMIN_PASSWORD", true},
		{"p_a_s_s_w_o_r_d", true}, // separators never hide a word
		{"user_id", false},
		{"email", false},
		{"kid", false},
		{"idempotency_key", false},
		{"public_key_id", false},
		{"reason", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			if got := SensitiveKey(tt.key); got != tt.want {
				t.Errorf("SensitiveKey(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

func TestSensitiveKeyLongKey(t *testing.T) {
	t.Parallel()
	// Longer than the stack buffer: the word at the end must still be found.
	key := strings.Repeat("x", 200) + "_password"
	if !SensitiveKey(key) {
		t.Errorf("SensitiveKey(%d-byte key ending in _password) = false, want true", len(key))
	}
}

func TestRedactString(t *testing.T) {
	t.Parallel()
	jwt := testJWT(t)
	none := unsignedJWT()
	tests := []struct {
		name   string
		in     string
		secret string // must not survive; "" when the input is clean
		keep   string // must survive
	}{
		{"bare jwt", jwt, jwt, ""},
		{"jwt in text", "verify " + jwt + ": expired", jwt, "verify "},
		{"jwt in query", "GET /x?access_token=" + jwt + "&a=b", jwt, "&a=b"},
		{"unsigned jwt", "token " + none + " accepted?", none, " accepted?"},
		{"bearer header", "Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123", "Authorization: Bearer "},
		{"lower-case bearer", "bearer s3cr3t0paque", "s3cr3t0paque", "bearer "},
		{"upper-case bearer", "BEARER s3cr3t0paque", "s3cr3t0paque", "BEARER "},
		{"bearer with tab", "Bearer\ts3cr3t0paque", "s3cr3t0paque", "Bearer "},
		{"bearer with newline", "Bearer\ns3cr3t0paque", "s3cr3t0paque", "Bearer "},
		{"basic auth", "Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy", "Basic "},
		{"two tokens", jwt + " and Bearer zzz999", "zzz999", " and "},
		{"clean text", "transfer posted for account 42", "", "transfer posted for account 42"},
		{"bearer alone", "tokenType Bearer", "", "tokenType Bearer"},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := RedactString(tt.in)
			if tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("RedactString(%q) = %q, still holds the secret", tt.in, got)
			}
			if tt.secret != "" && !strings.Contains(got, Redacted) {
				t.Errorf("RedactString(%q) = %q, want %q in it", tt.in, got, Redacted)
			}
			if tt.secret == "" && got != tt.in {
				t.Errorf("RedactString(%q) = %q, want it unchanged", tt.in, got)
			}
			if !strings.Contains(got, tt.keep) {
				t.Errorf("RedactString(%q) = %q, lost the surrounding text %q", tt.in, got, tt.keep)
			}
		})
	}
}

func TestRedactAny(t *testing.T) {
	t.Parallel()
	jwt := testJWT(t)
	type login struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	type wrapper struct {
		Inner  login
		Tokens []string
		Notes  map[string]any
	}
	tests := []struct {
		name   string
		in     any
		secret string
	}{
		{"struct field", login{Email: "a@b.c", Password: "hunter2-pw"}, "hunter2-pw"},
		{"pointer", &login{Password: "hunter2-pw"}, "hunter2-pw"},
		{"nested struct", wrapper{Inner: login{Password: "hunter2-pw"}}, "hunter2-pw"},
		{"jwt in slice", wrapper{Tokens: []string{jwt}}, jwt},
		{"map key", map[string]string{"X-Api-Key": "k-123456"}, "k-123456"},
		{"deep map", map[string]any{"a": map[string]any{"refresh_token": "rt-secret"}}, "rt-secret"},
		{"jwt in map value", wrapper{Notes: map[string]any{"n": "Bearer " + jwt}}, jwt},
		{"unmarshalable falls back to text", struct {
			F func()
			S string
		}{S: "Bearer " + jwt}, jwt},
		{"error text", errorString("verify " + jwt + ": expired"), jwt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(redactAny(tt.in))
			if err != nil {
				t.Fatalf("redactAny(%T) returned a value that cannot be logged: %v", tt.in, err)
			}
			if strings.Contains(string(got), tt.secret) {
				t.Errorf("redactAny(%T) = %s, still holds the secret", tt.in, got)
			}
			if !strings.Contains(string(got), Redacted) {
				t.Errorf("redactAny(%T) = %s, want %q in it", tt.in, got, Redacted)
			}
		})
	}
}

// errorString is an error whose text the test controls.
type errorString string

func (e errorString) Error() string { return string(e) }
