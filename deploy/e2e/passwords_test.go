package e2e

import (
	"strings"
	"testing"
)

// TestPasswordRule: through the gateway, a new password the rule refuses
// gets a 400 that names the password and says why, and a user who
// registered with fullwidth letters logs in typing plain ones.
func TestPasswordRule(t *testing.T) {
	t.Parallel()
	c := newCaller(t)
	for _, tc := range []struct{ name, pw, why string }{
		{"a common password", "Password1234", "too common"},
		{"a common password in fullwidth letters", "ｐａｓｓｗｏｒｄ１２３４", "too common"},
		{"11 characters once normalised", "cafe\u0301-au-lai", "12 to 128 characters"},
		{"129 characters", strings.Repeat("Zq7-", 32) + "x", "128 characters"}, // the field rule of the API says "at most"
	} {
		r := c.do("POST", "/v1/auth/register", map[string]any{"email": uniqueEmail("weak"), "password": tc.pw, "displayName": "W"})
		r.problem(t, tc.name, 400, true)
		if body := string(r.Body); !strings.Contains(body, `"field":"password"`) || !strings.Contains(body, tc.why) {
			t.Errorf("%s: body %s, want a violation on password saying %q", tc.name, body, tc.why)
		}
	}
	// NUL is refused too; the edge may refuse it before auth sees it.
	c.do("POST", "/v1/auth/register", map[string]any{"email": uniqueEmail("nul"), "password": strings.Repeat("\x00", 12), "displayName": "N"}).
		must(t, 400, "twelve NULs")

	email := uniqueEmail("wide")
	c.do("POST", "/v1/auth/register", map[string]any{"email": email, "password": "Ｓｔｒａｗｂｅｒｒｙ-Ｆｉｅｌｄｓ", "displayName": "F"}).must(t, 200, "fullwidth password")
	loginAs(c, email, "Strawberry-Fields").must(t, 200, "the same password typed in ASCII")
}
