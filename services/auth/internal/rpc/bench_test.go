package rpc_test

import (
	"context"
	"fmt"
	"testing"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/platform/wire"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// benchStack runs with the production argon2id parameters, and thresholds
// high enough that the benchmark measures logins, not the throttle.
func benchStack(b *testing.B) *stack {
	return newStack(b, options{params: password.OWASP(), cfg: domain.Config{MaxFailures: 1 << 30, IPMaxFailures: 1 << 30}})
}

// BenchmarkLogin is one successful login through the whole chain over
// loopback mTLS: argon2id verify, two transactions, signing, audit.
func BenchmarkLogin(b *testing.B) {
	s := benchStack(b)
	email, pw, _ := s.user(b)
	req := &authv1.LoginRequest{Email: email, Password: pw}
	for b.Loop() {
		if _, err := s.auth.Login(s.ctx(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginParallel is BenchmarkLogin from many clients at once; the
// hashing pool bounds the work to the cores.
func BenchmarkLoginParallel(b *testing.B) {
	s := benchStack(b)
	email, pw, _ := s.user(b)
	req := &authv1.LoginRequest{Email: email, Password: pw}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.auth.Login(s.ctx(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLoginFailure compares a wrong password with an unknown email:
// the two should cost about the same, so timing does not reveal accounts.
func BenchmarkLoginFailure(b *testing.B) {
	s := benchStack(b)
	email, _, _ := s.user(b)
	for _, bc := range []struct{ name, email string }{
		{"wrong_password", email},
		{"unknown_email", "nobody-" + email},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := &authv1.LoginRequest{Email: bc.email, Password: "not the password"}
			for b.Loop() {
				if _, err := s.auth.Login(s.ctx(), req); err == nil {
					b.Fatal("login succeeded")
				}
			}
		})
	}
}

// BenchmarkLoginShed is a login refused because the hash pool is full, as
// in a storm, through the whole chain over loopback mTLS. Compare it with
// BenchmarkLogin: what a refusal costs is what lets the service keep
// answering, fast, the share of a storm it cannot serve.
func BenchmarkLoginShed(b *testing.B) {
	s := newStack(b, options{params: password.OWASP(), pool: password.PoolConfig{Workers: 1, Queue: -1}})
	email, pw, _ := s.user(b)
	tk, err := s.hasher.Admit(context.Background()) // the pool's one place
	if err != nil {
		b.Fatal(err)
	}
	defer tk.Release()
	req := &authv1.LoginRequest{Email: email, Password: pw}
	for b.Loop() {
		if _, err := s.auth.Login(s.ctx(), req); status.Code(err) != codes.ResourceExhausted {
			b.Fatalf("Login(pool full) = %v, want ResourceExhausted", err)
		}
	}
}

// BenchmarkRefresh is one rotation through the chain.
func BenchmarkRefresh(b *testing.B) {
	s := benchStack(b)
	_, _, tok := s.user(b)
	rt := tok.GetRefreshToken()
	for b.Loop() {
		resp, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: rt})
		if err != nil {
			b.Fatal(err)
		}
		rt = resp.GetRefreshToken()
	}
}

// BenchmarkVerifyToken is the token check every authenticated call pays:
// signature, claims and the revocation list, with keys cached.
func BenchmarkVerifyToken(b *testing.B) {
	s := newStack(b, options{})
	revs := domain.NewRevocations(nil)
	var batch []domain.Revocation
	for i := range 10000 { // a realistic revocation list to look up in
		batch = append(batch, domain.Revocation{TokenID: fmt.Sprint("revoked-", i), ExpiresAt: s.clock.Now().Add(token.DefaultTTL)})
	}
	revs.Add(batch)
	v := s.keys.Verifier(token.VerifierConfig{Issuer: grpctest.Issuer, Audience: grpctest.Audience}, revs)
	at, err := s.keys.Issue("3f0e7a4c-1111-4222-8333-444455556666", []string{"user"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Verify(ctx, at.Raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, at.Raw); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkGetMe is an authenticated call end to end: mTLS, token check,
// RBAC, one read.
func BenchmarkGetMe(b *testing.B) {
	s := newStack(b, options{})
	_, _, tok := s.user(b)
	ctx := metadata.AppendToOutgoingContext(context.Background(), wire.ClientIP, s.ip, "authorization", "Bearer "+tok.GetAccessToken())
	for b.Loop() {
		if _, err := s.auth.GetMe(ctx, &authv1.GetMeRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}
