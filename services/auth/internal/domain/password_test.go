package domain_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// TestRegisterRefusesWeakOrMalformedPasswords tries to get a password past
// the rule for new passwords (NIST SP 800-63B): NFKC-normalised, no control
// characters, 12 to 128 characters once normalised, and not in the list of
// common and breached passwords, whatever its case.
func TestRegisterRefusesWeakOrMalformedPasswords(t *testing.T) {
	t.Parallel()
	f := newFixture(t, domain.Config{})
	for _, tc := range []struct {
		name, pw string
		ok       bool
	}{
		{"twelve NULs", strings.Repeat("\x00", 12), false},
		{"a bell inside", "violet harbor\x07lamp", false},
		{"a tab", "violet\tharbor lamp", false},
		{"a line break", "violet harbor\nlamp", false},
		{"DEL", "violet harbor lamp\x7f", false},
		{"a C1 control (NEL)", "violet harbor\u0085lamp", false},
		{"12 characters that NFKC makes 11 (e and a combining acute)", "cafe\u0301-au-lai", false},
		{"11 characters that NFKC makes 12 (a ligature)", "\ufb00-mint-tige", true},
		{"8 characters that NFKC makes 144", strings.Repeat("\ufdfa", 8), false},
		{"a common password", "password1234", false},
		{"a common password in capitals", "PASSWORD1234", false},
		{"a common password in fullwidth letters", "ｐａｓｓｗｏｒｄ１２３４", false},
		{"a common password with a zero-width space", "password\u200b1234", false},
		{"a common password in fullwidth capitals", "ＰＡＳＳＷＯＲＤ１２３４", false},
		{"128 characters", strings.Repeat("Zq7-", 32), true},
		{"129 characters", strings.Repeat("Zq7-", 32) + "x", false},
		{"12 ordinary characters", "violet-harbo", true},
		{"spaces and emoji", "violet 🌊 harbor lamp", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			email := "pw-" + uuid.NewString() + "@example.com"
			_, err := f.svc.Register(context.Background(), domain.RegisterInput{Email: email, Password: tc.pw, DisplayName: "P"})
			if tc.ok {
				if err != nil {
					t.Errorf("Register(%+q) = %v, want success", tc.pw, err)
				}
				return
			}
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Invalid || len(e.Violations) != 1 || e.Violations[0].Field != "password" {
				t.Errorf("Register(%+q) = %v, want invalid with one violation on password", tc.pw, err)
			}
		})
	}
}

// TestLoginNormalisesLikeRegister: the password is compared in the form it
// was stored in, so a user whose keyboard composes (or decomposes) accents
// differently, or types fullwidth letters, still gets in.
func TestLoginNormalisesLikeRegister(t *testing.T) {
	t.Parallel()
	f := newFixture(t, domain.Config{})
	for _, tc := range []struct{ name, register, login string }{
		{"composed, then decomposed", "Ångström-Süßigkeit", "A\u030angstro\u0308m-Su\u0308ßigkeit"},
		{"decomposed, then composed", "A\u030angstro\u0308m-Su\u0308ßigkeit", "Ångström-Süßigkeit"},
		{"fullwidth, then ASCII", "Ｓｔｒａｗｂｅｒｒｙ-Ｆｉｅｌｄｓ", "Strawberry-Fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			email := "nfkc-" + uuid.NewString() + "@example.com"
			if _, err := f.svc.Register(context.Background(), domain.RegisterInput{Email: email, Password: tc.register, DisplayName: "N"}); err != nil {
				t.Fatalf("Register(%+q) = %v", tc.register, err)
			}
			f.wantLogin(t, email, tc.login, randomIP())
			f.wantLogin(t, email, tc.register, randomIP())
		})
	}
}

// TestLoginUpgradesAPasswordStoredUnnormalised: a password set before
// passwords were normalised was hashed as typed. Its owner still gets in
// typing it the same way, and from then on in any form that normalises
// alike, because that login stores the hash of the normalised form. That
// holds up to the longest password accepted, typed.
func TestLoginUpgradesAPasswordStoredUnnormalised(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	long := strings.Repeat("a", password.MaxLength-2)
	for _, tt := range []struct{ typed, other string }{
		{"A\u030angstro\u0308m-Su\u0308ßigkeit", "Ångström-Süßigkeit"},
		{long + "A\u030a", long + "Å"}, // exactly MaxLength characters as typed
	} {
		hash, err := mustHasher(t).Hash(ctx, tt.typed)
		if err != nil {
			t.Fatal(err)
		}
		now := f.clock.Now()
		u := domain.User{ID: uuid.NewString(), Email: "legacy-" + uuid.NewString() + "@example.com", DisplayName: "L",
			Roles: []string{"user"}, CreatedAt: now, UpdatedAt: now}
		if err := f.repo.InTx(ctx, func(tx domain.Tx) error { return tx.CreateUser(ctx, u, hash) }); err != nil {
			t.Fatal(err)
		}
		f.wantFailed(t, u.Email, tt.other, f.ip)
		f.wantLogin(t, u.Email, tt.typed, f.ip)
		f.wantLogin(t, u.Email, tt.other, f.ip)
	}
}
