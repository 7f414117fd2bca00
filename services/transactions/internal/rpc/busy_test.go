package rpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// A transfer that finds the ledger's queue full is answered at once with
// UNAVAILABLE, the reason ledger_busy and a retry delay, which the gateway
// turns into 503 with Retry-After; the transfers already waiting still run.
// The only committer is held by a transfer waiting on a row lock the test
// holds, so the queue fills without any sleep.
func TestBusyLedgerAsksToRetry(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, 4, postgres.GroupCommit{Committers: 1, MaxQueue: 1})
	alice, bob, boss := s.person(), s.person(), s.person(identity.RoleManager)
	a, b := s.open(alice, "EUR"), s.open(bob, "EUR")
	s.fund(boss, a, 1_000)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	lock, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT 1 FROM ledger.accounts WHERE id = $1 FOR UPDATE`, b); err != nil {
		t.Fatal(err)
	}
	send := func() error {
		_, err := s.gateway.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{
			FromAccountId: a, ToAccountId: b, Amount: 1, Currency: "EUR", IdempotencyKey: uuid.NewString()})
		return err
	}
	waiting := make(chan error, 2)
	before := s.store.Stats().Batches
	go func() { waiting <- send() }()
	waitUntil(t, func() bool { return s.store.Stats().Batches > before })
	go func() { waiting <- send() }()
	waitUntil(t, func() bool { return s.store.Stats().Queued == 1 })

	err = send()
	st := status.Convert(err)
	var retry *errdetails.RetryInfo
	var reason string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			retry = d
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		}
	}
	if st.Code() != codes.Unavailable || reason != "ledger_busy" || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("CreateTransfer(queue full) = %v (reason %q, retry %v), want UNAVAILABLE, ledger_busy, a retry delay", err, reason, retry)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-waiting; err != nil {
			t.Errorf("CreateTransfer(waiting when the queue filled) = %v", err)
		}
	}
	if got, _ := s.balance(b); got != 2 {
		t.Errorf("target = %d, want 2", got)
	}
}

// waitUntil waits for cond, polling, for at most 10 seconds.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
