package password_test

import (
	"bufio"
	"compress/gzip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// policy is loaded once for the package's tests: it reads the whole list.
var policy = sync.OnceValues(password.NewPolicy)

// TestPolicy tries to get a bad password past the rule for new passwords,
// and checks that each refusal says which rule it broke.
func TestPolicy(t *testing.T) {
	t.Parallel()
	p, err := policy()
	if err != nil {
		t.Fatal(err)
	}
	const (
		control = "control characters"
		length  = "12 to 128 characters"
		common  = "too common"
		utf8    = "valid UTF-8"
	)
	for _, tc := range []struct {
		name, pw string
		want     string // the stored form, or "" when refused
		problem  string // part of the refusal's message
	}{
		{"twelve NULs", strings.Repeat("\x00", 12), "", control},
		{"a NUL at the end", "violet harbor lamp\x00", "", control},
		{"an escape sequence", "violet \x1b[31mharbor", "", control},
		{"a tab", "violet\tharbor lamp", "", control},
		{"a carriage return", "violet harbor lamp\r", "", control},
		{"DEL", "violet harbor\x7flamp", "", control},
		{"a C1 control (NEL)", "violet harbor\u0085lamp", "", control},
		{"not UTF-8", "violet harbor \xff\xfe", "", utf8},
		{"11 characters", "violet-harb", "", length},
		{"12 characters that NFKC makes 11", "cafe\u0301-au-lai", "", length},
		{"11 characters that NFKC makes 12", "\ufb00-mint-tige", "ff-mint-tige", ""},
		{"11 characters and a zero-width space", "violet-harb\u200b", "", length},
		{"8 characters that NFKC makes 144", strings.Repeat("\ufdfa", 8), "", length},
		{"a thousand combining marks", "a" + strings.Repeat("\u0301", 1000), "", length},
		{"128 characters", strings.Repeat("Zq7-", 32), strings.Repeat("Zq7-", 32), ""},
		{"129 characters", strings.Repeat("Zq7-", 32) + "x", "", length},
		{"128 once composed, 256 as typed", strings.Repeat("e\u0301", 128), strings.Repeat("\u00e9", 128), ""},
		{"a common password", "password1234", "", common},
		{"a common password in capitals", "PASSWORD1234", "", common},
		{"a common password in mixed case", "PassWord1234", "", common},
		{"a common password in fullwidth letters", "ｐａｓｓｗｏｒｄ１２３４", "", common},
		{"a common password with a zero-width space", "qwertyuiop\u200b123", "", common},
		{"a common password with a soft hyphen", "iloveyou\u00ad1234", "", common},
		{"a common password from deep in the list", "1qaz2wsx3edc4rfv", "", common},
		{"a composed accent, kept composed", "Ångström-Süßigkeit", "Ångström-Süßigkeit", ""},
		{"a decomposed accent, composed", "A\u030angstro\u0308m-Su\u0308ßigkeit", "Ångström-Süßigkeit", ""},
		{"spaces and emoji", "violet 🌊 harbor lamp", "violet 🌊 harbor lamp", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Check(tc.pw)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Errorf("Check(%+q) = %+q, %v; want %+q", tc.pw, got, err, tc.want)
				}
				return
			}
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Invalid || len(e.Violations) != 1 || e.Violations[0].Field != "password" ||
				!strings.Contains(e.Violations[0].Message, tc.problem) {
				t.Errorf("Check(%+q) = %+q, %+v; want invalid password, %q", tc.pw, got, err, tc.problem)
			}
		})
	}
}

// TestNormalize: a login compares the same form a registration stored, and
// refuses only what cannot be a password of any rule.
func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Strawberry-Fields", "Strawberry-Fields"},
		{"Ｓｔｒａｗｂｅｒｒｙ", "Strawberry"},
		{"e\u0301", "\u00e9"},
		{"short", "short"},                   // logins do not apply the rule for new passwords
		{"twelve\x00nuls", "twelve\x00nuls"}, // nor refuse what an older rule let through
		{"", ""},
		{strings.Repeat("x", 129), ""},
		{strings.Repeat("x", 1<<20), ""},
	} {
		got, err := password.Normalize(tc.in)
		if tc.want == "" {
			if errs.KindOf(err) != errs.Invalid {
				t.Errorf("Normalize(%d chars) = %v, want invalid", len(tc.in), err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%+q) = %+q, %v; want %+q", tc.in, got, err, tc.want)
		}
	}
}

// TestCommonListIsTheVendoredOne: the embedded list is the one
// commonlist/README.md describes, with at least the 100,000 most common
// passwords, most common first; the Policy keeps those that matter.
func TestCommonListIsTheVendoredOne(t *testing.T) {
	t.Parallel()
	f, err := os.Open("commonlist/passwords.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	var lines int
	var first []string
	for sc.Scan() {
		if lines++; lines <= 3 {
			first = append(first, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != 437652 || strings.Join(first, ",") != "123456,password,12345678" {
		t.Errorf("the list has %d lines starting %q, want 437652 starting with the most common", lines, first)
	}
	p, err := policy()
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Common(); n != 12050 {
		t.Errorf("Policy keeps %d listed passwords, want 12050 (those of 12 to 128 characters)", n)
	}
}
