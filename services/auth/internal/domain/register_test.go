package domain_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

func TestRegister(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	email := "Alice-" + uuid.NewString() + "@Example.COM"
	u, err := f.svc.Register(ctx, domain.RegisterInput{Email: "  " + email + " ", Password: "correct horse battery", DisplayName: "Alice"})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if u.Email != strings.ToLower(email) || !u.CreatedAt.Equal(f.clock.Now()) || u.ID == "" {
		t.Errorf("Register() = %+v, want lower-case trimmed email and the clock's time", u)
	}
	if len(u.Roles) != 1 || u.Roles[0] != identity.RoleUser {
		t.Errorf("Register() roles = %v, want [user]: nobody registers themselves into a privileged role", u.Roles)
	}
	if _, err := uuid.Parse(u.ID); err != nil {
		t.Errorf("id %q is not a UUID", u.ID)
	}
	if got := f.ctr.get("registration:ok"); got != 1 {
		t.Errorf("registration:ok counted %d times, want 1", got)
	}

	for _, tc := range []struct {
		name string
		in   domain.RegisterInput
		want errs.Kind
	}{
		{"same email", domain.RegisterInput{Email: email, Password: "another password", DisplayName: "B"}, errs.Conflict},
		{"upper case", domain.RegisterInput{Email: strings.ToUpper(email), Password: "another password", DisplayName: "B"}, errs.Conflict},
		{"lower case", domain.RegisterInput{Email: strings.ToLower(email), Password: "another password", DisplayName: "B"}, errs.Conflict},
		{"short password", domain.RegisterInput{Email: "x" + email, Password: "elevenchars", DisplayName: "B"}, errs.Invalid},
		{"long password", domain.RegisterInput{Email: "y" + email, Password: strings.Repeat("p", 129), DisplayName: "B"}, errs.Invalid},
		{"no email", domain.RegisterInput{Email: "   ", Password: "another password", DisplayName: "B"}, errs.Invalid},
		{"no name", domain.RegisterInput{Email: "z" + email, Password: "another password"}, errs.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := f.svc.Register(ctx, tc.in)
			if errs.KindOf(err) != tc.want {
				t.Errorf("Register(%q) = %v, want %v", tc.in.Email, err, tc.want)
			}
		})
	}
}

func TestGetMe(t *testing.T) {
	t.Parallel()
	f := newFixture(t, domain.Config{})
	u, _ := f.register(t)
	got, err := f.svc.GetMe(context.Background(), identity.User{ID: u.ID, Roles: u.Roles})
	if err != nil || got.ID != u.ID || got.Email != u.Email {
		t.Errorf("GetMe(%s) = %+v, %v; want the user", u.ID, got, err)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		if _, err := f.svc.GetMe(context.Background(), identity.User{ID: id}); errs.KindOf(err) != errs.Unauthenticated {
			t.Errorf("GetMe(%q) = %v, want unauthenticated: the token's user is gone", id, err)
		}
	}
}
