package password

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/bastion-bank/bastion/platform/errs"
)

// commonList is the gzip-compressed list of common and breached passwords,
// one per line; commonlist/README.md says where it comes from.
//
//go:embed commonlist/passwords.txt.gz
var commonList []byte

// maxTyped bounds a password as typed, in characters, before it is
// normalised: enough for MaxLength characters each typed as a letter and
// three combining marks, and a bound on the work normalisation can be made
// to do.
const maxTyped = 4 * MaxLength

// Policy is the rule a new password must follow, after NIST SP 800-63B:
// Unicode NFKC-normalised, no control characters, MinLength to MaxLength
// characters once normalised (invisible format characters do not count
// towards the minimum), and not on the list of common and breached
// passwords in any letter case. It applies wherever a password is set; a
// login only normalises (Normalize), so that a password set under an older
// rule still works. A Policy is safe for concurrent use.
type Policy struct {
	// common holds the listed passwords that could otherwise pass, in their
	// folded form. Entries shorter than MinLength once normalised are left
	// out: the length rule refuses them anyway. With the vendored list that
	// keeps 12,050 of its 437,652 entries, about 1 MiB of heap.
	common map[string]struct{}
}

// NewPolicy returns a Policy with the list of common passwords embedded in
// the program, read once: about 0.2 s on a development machine. The list
// adds 1.7 MB to the binary.
func NewPolicy() (*Policy, error) {
	zr, err := gzip.NewReader(bytes.NewReader(commonList))
	if err != nil {
		return nil, fmt.Errorf("password: common list: %w", err)
	}
	defer zr.Close()
	common := make(map[string]struct{}, 16384)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !utf8.ValidString(line) {
			continue
		}
		n := norm.NFKC.String(line)
		if c := utf8.RuneCountInString(n); c >= MinLength && c <= MaxLength {
			common[fold(n)] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("password: common list: %w", err)
	}
	return &Policy{common: common}, nil
}

// Common reports how many listed passwords the Policy refuses beyond those
// its length rule refuses (for the start-up log).
func (p *Policy) Common() int { return len(p.common) }

// Check returns the form of pw to hash and store, its NFKC normalisation, or
// an errs.Invalid error on the field "password" that says which rule pw
// breaks.
func (p *Policy) Check(pw string) (string, error) {
	n, err := Normalize(pw)
	if err != nil {
		return "", err
	}
	if strings.ContainsFunc(n, unicode.IsControl) {
		return "", errs.InvalidField("password", "must not contain control characters (such as NUL, tab or a line break)")
	}
	// Invisible format characters do not count towards the length, or an
	// 11-character listed password and a zero-width space would pass.
	f := fold(n)
	if utf8.RuneCountInString(f) < MinLength {
		return "", lengthError()
	}
	if _, ok := p.common[f]; ok {
		return "", errs.InvalidField("password", "is too common: it is on a list of common and breached passwords; choose another")
	}
	return n, nil
}

// Normalize returns pw in the form passwords are hashed in: its Unicode
// NFKC normalisation, so that a composed and a decomposed accent, or a
// fullwidth and an ASCII letter, are the same password. It returns an
// errs.Invalid error for a password that is not UTF-8, empty, longer than
// MaxLength characters once normalised, or so long as typed that it cannot
// be a password at all.
func Normalize(pw string) (string, error) {
	if !utf8.ValidString(pw) {
		return "", errs.InvalidField("password", "must be valid UTF-8")
	}
	if utf8.RuneCountInString(pw) > maxTyped {
		return "", lengthError()
	}
	n := norm.NFKC.String(pw)
	if c := utf8.RuneCountInString(n); c == 0 || c > MaxLength {
		return "", lengthError()
	}
	return n, nil
}

func lengthError() error {
	return errs.InvalidField("password", fmt.Sprintf("must be %d to %d characters", MinLength, MaxLength))
}

// fold is the form a password is compared with the list in: lower case,
// and without format characters (zero-width spaces and joiners, soft
// hyphens, direction marks), which are invisible and would otherwise let a
// listed password through unchanged to the eye. strings.ToLower maps each
// character to one character, so folding keeps the length.
func fold(pw string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, pw))
}
