package grpcserver_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/identity"
)

// subjectless verifies with the real verifier, then forgets who the user
// is: a token that verifies but names no user.
type subjectless struct{ identity.Verifier }

func (s subjectless) Verify(ctx context.Context, raw string) (identity.User, error) {
	u, err := s.Verifier.Verify(ctx, raw)
	u.ID = ""
	return u, err
}

// TestEveryTokenReasonAtTheServer sends each kind of bad bearer token a
// service can receive and checks the refusal and the reason counted: the
// same reasons the edge gives (platform/token.Authenticate), so two
// authorization values are "multiple" here as there.
func TestEveryTokenReasonAtTheServer(t *testing.T) {
	env := grpctest.New(t)
	cnt := &counters{}
	addr := env.Serve(t, "accounts", func(s *grpc.Server) {
		accountsv1.RegisterAccountsServiceServer(s, &accounts{})
	}, grpctest.WithOwners(owners), grpctest.WithCounters(cnt))
	noSubAddr := env.Serve(t, "accounts", func(s *grpc.Server) {
		accountsv1.RegisterAccountsServiceServer(s, &accounts{})
	}, grpctest.WithOwners(owners), grpctest.WithCounters(cnt), func(c *grpcserver.Config) {
		c.Verifier = subjectless{c.Verifier}
	})
	tok := env.Token(t, alice, "user")
	tests := []struct {
		name   string
		addr   string
		auth   []string
		reason string
		msg    string
	}{
		{"missing", addr, nil, "missing", "authentication required"},
		{"multiple", addr, []string{"Bearer " + tok, "Bearer " + tok}, "multiple", "invalid token"},
		{"malformed", addr, []string{"Token " + tok}, "malformed", "invalid token"},
		{"unknown key", addr, []string{"Bearer " + grpctest.ForeignToken(t, alice, "user")}, "unknown_kid", "invalid token"},
		{"no subject", noSubAddr, []string{"Bearer " + tok}, "no_subject", "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxAs(t, "")
			for _, a := range tt.auth {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", a)
			}
			c := accountsv1.NewAccountsServiceClient(env.Dial(t, "gateway", tt.addr, "accounts"))
			_, err := c.GetAccount(ctx, &accountsv1.GetAccountRequest{AccountId: aliceAcct})
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.Unauthenticated || e.Msg != tt.msg {
				t.Fatalf("GetAccount with %d authorization values = %v, want Unauthenticated %q", len(tt.auth), err, tt.msg)
			}
			if !cnt.has("token:" + tt.reason) {
				t.Errorf("reason %q not counted (have %v)", tt.reason, cnt.seen)
			}
		})
	}
}
