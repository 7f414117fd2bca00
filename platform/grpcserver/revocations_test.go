package grpcserver_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/refusal"
)

// TestUserCallsWaitForCurrentRevocations: while the revocation list is not
// current, no token is accepted, whatever it is (valid, revoked, missing),
// and the server reports NOT_SERVING; calls without a user still work, and
// the liveness status stays SERVING so the process is not restarted.
func TestUserCallsWaitForCurrentRevocations(t *testing.T) {
	env := grpctest.New(t)
	var synced atomic.Bool
	cnt := &counters{}
	addr := env.Serve(t, "accounts", func(s *grpc.Server) {
		accountsv1.RegisterAccountsServiceServer(s, &accounts{})
		transactionsv1.RegisterLedgerServiceServer(s, ledger{})
	}, grpctest.WithOwners(owners), grpctest.WithCounters(cnt), func(c *grpcserver.Config) {
		c.RevocationsSynced = synced.Load
	})
	gw := env.Dial(t, "gateway", addr, "accounts")
	client := accountsv1.NewAccountsServiceClient(gw)
	health := healthpb.NewHealthClient(gw)
	ledgerClient := transactionsv1.NewLedgerServiceClient(env.Dial(t, "accounts", addr, "accounts"))

	valid := env.Token(t, alice, "user")
	revokedRaw, revoked, err := env.Signer.Sign(alice, []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	// Revoked before the server's list is current: the list does not have
	// it yet, which is exactly why nothing may be accepted.
	tokens := map[string]string{"valid": valid, "revoked": revokedRaw, "none": ""}

	for name, tok := range tokens {
		_, err := client.GetAccount(ctxAs(t, tok), &accountsv1.GetAccountRequest{AccountId: aliceAcct})
		// What the server sent, before the client's mapping.
		if st, _ := status.FromError(errors.Unwrap(err)); st.Code() != codes.Unavailable || st.Message() != "service unavailable" {
			t.Errorf("GetAccount(%s token) before sync = %v, want UNAVAILABLE %q", name, err, "service unavailable")
		}
	}
	if cnt.has("token:missing") {
		t.Error("the token was read before the revocation gate")
	}
	if !cnt.has("token:" + refusal.ReasonUnsynced) {
		t.Errorf("refusals before sync were not counted as %q", refusal.ReasonUnsynced)
	}
	if _, err := ledgerClient.GetBalances(ctxAs(t, ""), &transactionsv1.GetBalancesRequest{AccountIds: []string{aliceAcct}}); err != nil {
		t.Errorf("service-only GetBalances before sync = %v, want success: no user, no revocation applies", err)
	}
	wantHealth(t, health, "", healthpb.HealthCheckResponse_NOT_SERVING)
	wantHealth(t, health, grpcserver.LivenessService, healthpb.HealthCheckResponse_SERVING)

	// The snapshot arrives, carrying the revocation.
	env.Revocations.Add(revoked.ID, time.Now().Add(time.Hour))
	synced.Store(true)
	if _, err := client.GetAccount(ctxAs(t, valid), &accountsv1.GetAccountRequest{AccountId: aliceAcct}); err != nil {
		t.Errorf("GetAccount(valid token) after sync = %v, want success", err)
	}
	_, err = client.GetAccount(ctxAs(t, revokedRaw), &accountsv1.GetAccountRequest{AccountId: aliceAcct})
	if errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("GetAccount(revoked token) after sync = %v, want Unauthenticated", err)
	}
	wantHealth(t, health, "", healthpb.HealthCheckResponse_SERVING)

	// The list goes stale again: refused at once, NOT_SERVING soon after.
	synced.Store(false)
	if _, err := client.GetAccount(ctxAs(t, valid), &accountsv1.GetAccountRequest{AccountId: aliceAcct}); errs.KindOf(err) != errs.Unavailable {
		t.Errorf("GetAccount(valid token) once stale = %v, want Unavailable", err)
	}
	wantHealth(t, health, "", healthpb.HealthCheckResponse_NOT_SERVING)
	wantHealth(t, health, grpcserver.LivenessService, healthpb.HealthCheckResponse_SERVING)
}

// TestWithoutAFeedTheServerIsReadyAtOnce: a server whose verifier needs no
// feed (auth's own) is SERVING as soon as it serves.
func TestWithoutAFeedTheServerIsReadyAtOnce(t *testing.T) {
	h := newHarness(t)
	health := healthpb.NewHealthClient(h.env.Dial(t, "gateway", h.addr, "accounts"))
	for _, svc := range []string{"", grpcserver.LivenessService} {
		resp, err := health.Check(ctxAs(t, ""), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}
}

// wantHealth waits up to a few poll intervals for the health status.
func wantHealth(t *testing.T, c healthpb.HealthClient, svc string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var got healthpb.HealthCheckResponse_ServingStatus
	var err error
	for time.Now().Before(deadline) {
		var resp *healthpb.HealthCheckResponse
		resp, err = c.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if got = resp.GetStatus(); err == nil && got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("health %q = %v (err %v), want %v", svc, got, err, want)
}
