package token_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/token"
)

// verifierFunc lets a test decide what verification returns.
type verifierFunc func(raw string) (identity.User, error)

func (f verifierFunc) Verify(_ context.Context, raw string) (identity.User, error) { return f(raw) }

// TestAuthenticate gives each reason the one bearer-token check can refuse
// with, and checks the reason, the error's kind and its client-safe message.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	v := verifierFunc(func(raw string) (identity.User, error) {
		switch raw {
		case "good":
			return identity.User{ID: "u1"}, nil
		case "nosub":
			return identity.User{Roles: []string{"user"}}, nil
		case "expired":
			return identity.User{}, errs.Reasoned(errs.Unauthenticated, token.ReasonExpired, "invalid token")
		}
		return identity.User{}, errors.New("no such key")
	})
	tests := []struct {
		name   string
		auth   []string
		reason string
		msg    string
	}{
		{"no header", nil, token.ReasonMissing, "authentication required"},
		{"two headers", []string{"Bearer good", "Bearer good"}, token.ReasonMultiple, "invalid token"},
		{"not bearer", []string{"Basic good"}, token.ReasonMalformed, "invalid token"},
		{"verifier gives its reason", []string{"Bearer expired"}, token.ReasonExpired, "invalid token"},
		{"verifier gives none", []string{"Bearer forged"}, token.ReasonInvalid, "invalid token"},
		{"no subject", []string{"Bearer nosub"}, token.ReasonNoSubject, "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, u, reason, err := token.Authenticate(context.Background(), v, tt.auth)
			e, ok := errs.As(err)
			if reason != tt.reason || !ok || e.Kind != errs.Unauthenticated || e.Msg != tt.msg || raw != "" || u.ID != "" {
				t.Errorf("Authenticate(%q) = %q, %q, %q, %v; want reason %q, Unauthenticated %q", tt.auth, raw, u.ID, reason, err, tt.reason, tt.msg)
			}
		})
	}
	raw, u, reason, err := token.Authenticate(context.Background(), v, []string{"bearer good"})
	if raw != "good" || u.ID != "u1" || reason != "" || err != nil {
		t.Errorf(`Authenticate("bearer good") = %q, %q, %q, %v; want "good", "u1", "", nil`, raw, u.ID, reason, err)
	}
}
