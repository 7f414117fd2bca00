package pagetoken

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzDecode feeds Decode any string a client could send as a page token.
// Whatever it is, Decode must refuse it with the one invalid-page-token error
// unless it is exactly the token Encode gives for the same scope and cursor
// under the same key: no second spelling of a token, no token of another
// key, and no token of another scope is ever accepted.
func FuzzDecode(f *testing.F) {
	c := newCodec(f, 3)
	other := newCodec(f, 4)
	seeds := []string{
		c.Encode(scopeA, cursor),
		c.Encode(scopeA, nil),
		c.Encode("", []byte{0, 0xff}),
		c.Encode(scopeB, cursor),
		other.Encode(scopeA, cursor),
		c.Encode(scopeA, cursor) + "\n",
		c.Encode(scopeA, cursor) + "==",
		strings.ReplaceAll(c.Encode(scopeA, cursor), "_", "/"),
		base64.RawURLEncoding.EncodeToString(append([]byte{0}, make([]byte, macSize)...)),
		base64.RawURLEncoding.EncodeToString(make([]byte, macSize)),
		strings.Repeat("A", maxTokenLen+1),
		"",
		"A",
		"not a token",
		"%00",
	}
	for _, s := range seeds {
		f.Add(scopeA, s)
	}
	f.Add(scopeB, c.Encode(scopeA, cursor))
	f.Add("", c.Encode("", cursor))
	f.Fuzz(func(t *testing.T, scope, token string) {
		got, err := c.Decode(scope, token)
		if err != nil {
			wantInvalid(t, "fuzzed token", got, err)
			return
		}
		if want := c.Encode(scope, got); token != want {
			t.Fatalf("Decode(%q, %q) = %q, nil; but Encode gives %q: two tokens for one cursor", scope, token, got, want)
		}
		if got, err := other.Decode(scope, token); err == nil {
			t.Fatalf("Decode under another key (%q) = %q, nil; want invalid", token, got)
		}
		if got, err := c.Decode(scope+"|", token); err == nil {
			t.Fatalf("Decode(%q, token of scope %q) = %q, nil; want invalid", scope+"|", scope, got)
		}
	})
}

// FuzzRoundTrip checks that every cursor survives Encode and Decode
// unchanged, that the token is plain base64url within the size Decode
// accepts, and that it opens in its own scope only.
func FuzzRoundTrip(f *testing.F) {
	c := newCodec(f, 3)
	f.Add(scopeA, scopeB, cursor)
	f.Add(scopeA, scopeA+"x", []byte(nil))
	f.Add("", "", []byte{0})
	// The MAC covers the scope's length, so moving bytes between the end of
	// the scope and the start of the cursor must not keep a token valid.
	f.Add("accounts.list|u", "accounts.list|u1", []byte("1|x"))
	f.Add("a\x00b", "a", bytes.Repeat([]byte{0xff}, MaxCursorSize))
	f.Fuzz(func(t *testing.T, scope, otherScope string, cur []byte) {
		if len(cur) > MaxCursorSize {
			cur = cur[:MaxCursorSize]
		}
		tok := c.Encode(scope, cur)
		if len(tok) > maxTokenLen || !urlSafe(tok) {
			t.Fatalf("Encode(%q, %q) = %q: longer than %d or not base64url", scope, cur, tok, maxTokenLen)
		}
		got, err := c.Decode(scope, tok)
		if err != nil || !bytes.Equal(got, cur) {
			t.Fatalf("Decode(Encode(%q, %q)) = %q, %v; want the cursor back", scope, cur, got, err)
		}
		got, err = c.Decode(otherScope, tok)
		if (err == nil) != (scope == otherScope) {
			t.Fatalf("Decode(%q, token of scope %q) = %q, %v; want it to open in its own scope only", otherScope, scope, got, err)
		}
	})
}
