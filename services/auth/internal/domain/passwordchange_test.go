package domain_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

func TestChangePassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	current := f.login(t, u.Email, pw)
	other := f.login(t, u.Email, pw)
	newPw := "a brand new passphrase"

	for _, tc := range []struct {
		name           string
		current, fresh string
		want           error
	}{
		{"wrong current password", "not the password", newPw, domain.ErrWrongPassword},
		{"common new password", pw, "password1234", errs.New(errs.Invalid, "")},
		{"short new password", pw, "short", errs.New(errs.Invalid, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.svc.ChangePassword(ctx, domain.ChangePasswordInput{Caller: caller(u, current), Current: tc.current, New: tc.fresh, ClientIP: f.ip})
			if errs.KindOf(err) != errs.KindOf(tc.want) || (tc.want == domain.ErrWrongPassword && !errors.Is(err, domain.ErrWrongPassword)) {
				t.Errorf("ChangePassword(%s) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
	if f.revs.Contains(other.Access.ID) {
		t.Fatal("a refused change revoked a session")
	}

	err := f.svc.ChangePassword(ctx, domain.ChangePasswordInput{Caller: caller(u, current), Current: pw, New: newPw, ClientIP: f.ip})
	if err != nil {
		t.Fatalf("ChangePassword() = %v", err)
	}
	if !f.revs.Contains(other.Access.ID) {
		t.Error("the other session's access token survived the password change")
	}
	if _, err := f.svc.Refresh(ctx, other.Refresh, f.ip); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Errorf("Refresh(other session) = %v, want ErrInvalidRefreshToken", err)
	}
	if f.revs.Contains(current.Access.ID) {
		t.Error("the password change revoked the caller's own access token")
	}
	if _, err := f.svc.Refresh(ctx, current.Refresh, f.ip); err != nil {
		t.Errorf("Refresh(the caller's session) = %v, want it to survive", err)
	}
	if _, err := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: f.ip}); !errors.Is(err, domain.ErrInvalidCredentials) {
		t.Errorf("Login(old password) = %v, want ErrInvalidCredentials", err)
	}
	f.login(t, u.Email, newPw)
	events := auditEvents(t, u.ID)
	for _, want := range []string{"auth.password_changed:failure:wrong_password", "auth.password_changed:success:"} {
		if !slices.Contains(events, want) {
			t.Errorf("audit trail %v lacks %s", events, want)
		}
	}
}

// TestChangePasswordIsThrottled: wrong current passwords count as failed
// logins, so a stolen access token guesses no faster than the login form.
func TestChangePasswordIsThrottled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 3})
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	change := func(current string) error {
		return f.svc.ChangePassword(ctx, domain.ChangePasswordInput{Caller: caller(u, tok), Current: current, New: "a brand new passphrase", ClientIP: f.ip})
	}
	for i := range 3 {
		if err := change("guess number one"); !errors.Is(err, domain.ErrWrongPassword) {
			t.Fatalf("guess %d = %v, want ErrWrongPassword", i, err)
		}
	}
	if err := change(pw); errs.KindOf(err) != errs.RateLimited {
		t.Errorf("ChangePassword(right password, after 3 wrong) = %v, want rate limited", err)
	}
	if _, err := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: f.ip}); errs.KindOf(err) != errs.RateLimited {
		t.Errorf("Login(after 3 wrong current passwords) = %v, want rate limited", err)
	}
}
