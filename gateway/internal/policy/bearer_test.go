package policy_test

import (
	"context"
	"slices"
	"testing"
	"time"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"

	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/ratelimit"
)

// subjectless verifies with the real verifier, then forgets who the user
// is: a token that verifies but names no user.
type subjectless struct{ identity.Verifier }

func (s subjectless) Verify(ctx context.Context, raw string) (identity.User, error) {
	u, err := s.Verifier.Verify(ctx, raw)
	u.ID = ""
	return u, err
}

// TestEveryTokenReasonAtTheEdge sends each kind of bad Authorization the
// edge can receive and checks the refusal, the reason counted, and that
// nothing went upstream: the same reasons every service gives
// (platform/token.Authenticate).
func TestEveryTokenReasonAtTheEdge(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	tok := env.Token(t, userID, "user")
	tests := []struct {
		name     string
		verifier identity.Verifier
		auth     []string
		reason   string
		msg      string
	}{
		{"missing", env.Verifier, nil, "missing", "authentication required"},
		{"multiple", env.Verifier, []string{"Bearer " + tok, "Bearer " + tok}, "multiple", "invalid token"},
		{"malformed", env.Verifier, []string{"Token " + tok}, "malformed", "invalid token"},
		{"unknown key", env.Verifier, []string{"Bearer " + grpctest.ForeignToken(t, userID, "user")}, "unknown_kid", "invalid token"},
		{"no subject", subjectless{env.Verifier}, []string{"Bearer " + tok}, "no_subject", "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cnt := &tokenCounts{}
			p, err := policy.New(policy.Config{Verifier: tt.verifier, Limiter: ratelimit.NewMemory(time.Now, 0),
				Limits: defaultLimits(), Services: services(), Counters: cnt})
			if err != nil {
				t.Fatal(err)
			}
			n := &next{}
			ctx, _ := stateCtx(tt.auth...)
			err = p.Conn(n).Invoke(ctx, "/bank.accounts.v1.AccountsService/ListAccounts", &accountsv1.ListAccountsRequest{}, &accountsv1.ListAccountsResponse{})
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Unauthenticated || e.Msg != tt.msg || len(n.calls) != 0 {
				t.Fatalf("ListAccounts = %v with %d upstream calls, want Unauthenticated %q and none", err, len(n.calls), tt.msg)
			}
			if got := cnt.reasons(); !slices.Equal(got, []string{tt.reason}) {
				t.Errorf("token rejections = %v, want [%s]", got, tt.reason)
			}
		})
	}
}
