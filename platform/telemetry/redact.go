package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Redacted is what a secret is replaced with in logs and span attributes.
const Redacted = "[REDACTED]"

// sensitiveWords are matched against a key after it is lower-cased and
// stripped of everything but letters and digits, so "X-Api-Key", "apiKey" and
// "db.password" are all caught. Matching is by substring on purpose: a false
// positive costs a log field, a false negative costs a credential.
var sensitiveWords = [...]string{
	"password",
	"passwd",
	"secret",
	"token", // also access_token, refresh_token, id_token
	"authorization",
	"cookie", // also set-cookie
	"apikey",
	"privatekey",
	"credential",
}

// credentialPattern finds credentials inside free text: JSON Web Tokens (JWS
// and the first three parts of a JWE all start with a base64url "{") and HTTP
// authorization values. The signature part may be empty so that unsigned
// ("alg":"none") tokens, which attackers send, are caught too.
var credentialPattern = regexp.MustCompile(
	`eyJ[A-Za-z0-9_=-]*\.[A-Za-z0-9_=-]*\.[A-Za-z0-9_=-]*` +
		`|(?i:\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]+)`)

// SensitiveKey reports whether an attribute named key may hold a secret and
// must therefore never be logged or exported as it is.
func SensitiveKey(key string) bool {
	var buf [64]byte
	norm := buf[:0]
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			norm = append(norm, c)
		case 'A' <= c && c <= 'Z':
			norm = append(norm, c+'a'-'A')
		}
	}
	for _, w := range sensitiveWordBytes {
		if bytes.Contains(norm, w) {
			return true
		}
	}
	return false
}

// sensitiveWordBytes is sensitiveWords as byte slices, made once: converting
// a word in the loop copied it for every key of every log line.
var sensitiveWordBytes = func() [][]byte {
	out := make([][]byte, len(sensitiveWords))
	for i, w := range sensitiveWords {
		out[i] = []byte(w)
	}
	return out
}()

// RedactString returns s with every JWT-shaped token and every "Bearer …" or
// "Basic …" credential replaced by [Redacted]. The rest of the text is kept so
// that a message such as "verify eyJ…: expired" stays useful.
func RedactString(s string) string {
	if !mayHoldCredential(s) {
		return s
	}
	return credentialPattern.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "eyJ") {
			return Redacted
		}
		// Keep the scheme word; the pattern guarantees whitespace follows it.
		scheme := m[:strings.IndexFunc(m, unicode.IsSpace)]
		return scheme + " " + Redacted
	})
}

// mayHoldCredential is a cheap filter so that the regular expression runs
// only on the rare string that could match it; logging is on every hot path.
func mayHoldCredential(s string) bool {
	if strings.Contains(s, "eyJ") {
		return true
	}
	for i := 0; i+5 <= len(s); i++ {
		if c := s[i] | 0x20; c != 'b' {
			continue
		}
		if strings.EqualFold(s[i:i+5], "basic") ||
			(i+6 <= len(s) && strings.EqualFold(s[i:i+6], "bearer")) {
			return true
		}
	}
	return false
}

// redactAny makes an arbitrary value safe to log. Structs and maps are
// rendered the way the JSON handler would render them and then walked, so a
// field named Password inside a request struct is caught as surely as a
// top-level attribute. Values that cannot be rendered as JSON fall back to
// their fmt form, which is then scrubbed as text.
func redactAny(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case error:
		return RedactString(x.Error())
	case string:
		return RedactString(x)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return RedactString(fmt.Sprintf("%+v", v))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return RedactString(fmt.Sprintf("%+v", v))
	}
	return redactTree(tree)
}

// redactTree scrubs a decoded JSON value in place and returns it.
func redactTree(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if SensitiveKey(k) {
				x[k] = Redacted
				continue
			}
			x[k] = redactTree(val)
		}
		return x
	case []any:
		for i, val := range x {
			x[i] = redactTree(val)
		}
		return x
	case string:
		return RedactString(x)
	default:
		return v
	}
}
