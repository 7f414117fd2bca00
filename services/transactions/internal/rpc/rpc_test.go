package rpc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/wire"
	"github.com/bastion-bank/bastion/services/transactions/internal/rpc"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestAccessThroughTheChain calls every RPC through the real chain (mTLS,
// token, RBAC, validation, ownership through the service's resolver) as
// the users and services that must be refused, and proves the ledger did
// not move for any of them.
func TestAccessThroughTheChain(t *testing.T) {
	t.Parallel()
	s := newStack(t, 4)
	alice, bob, boss := s.person(), s.person(), s.person(identity.RoleUser, identity.RoleManager)
	a, b := s.open(alice, "EUR"), s.open(bob, "EUR")
	s.fund(boss, a, 40_000)
	ok, err := s.gateway.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{
		FromAccountId: a, ToAccountId: b, Amount: 100, Currency: "EUR", IdempotencyKey: "first"})
	if err != nil {
		t.Fatal(err)
	}
	// The manager holds a large transfer of their own.
	m := s.open(boss, "EUR")
	s.fund(s.person(identity.RoleUser, identity.RoleManager), m, 40_000) // never into one's own account
	held, err := s.gateway.CreateTransfer(boss.ctx(), &transactionsv1.CreateTransferRequest{
		FromAccountId: m, ToAccountId: b, Amount: limits.ApprovalThreshold, Currency: "EUR", IdempotencyKey: "big"})
	if err != nil || held.GetTransfer().GetStatus() != "PENDING_APPROVAL" {
		t.Fatalf("CreateTransfer(at threshold) = %v, %v, want PENDING_APPROVAL", held, err)
	}
	stranger := s.person()
	intruder := transactionsv1.NewLedgerServiceClient(s.platform.Dial(t, "intruder", s.addr, "transactions"))
	gatewayLedger := transactionsv1.NewLedgerServiceClient(s.platform.Dial(t, "gateway", s.addr, "transactions"))
	accountsAsUser := transactionsv1.NewTransactionsServiceClient(s.platform.Dial(t, "accounts", s.addr, "transactions"))
	heldID := held.GetTransfer().GetId()
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"transfer from someone else's account", func() error {
			_, err := s.gateway.CreateTransfer(bob.ctx(), &transactionsv1.CreateTransferRequest{
				FromAccountId: a, ToAccountId: b, Amount: 1, Currency: "EUR", IdempotencyKey: "steal"})
			return err
		}, codes.NotFound},
		{"transfer from an unknown account", func() error {
			_, err := s.gateway.CreateTransfer(bob.ctx(), &transactionsv1.CreateTransferRequest{
				FromAccountId: uuid.NewString(), ToAccountId: b, Amount: 1, Currency: "EUR", IdempotencyKey: "x"})
			return err
		}, codes.NotFound},
		{"a manager's transfer from someone else's account", func() error {
			_, err := s.gateway.CreateTransfer(boss.ctx(), &transactionsv1.CreateTransferRequest{
				FromAccountId: a, ToAccountId: m, Amount: 1, Currency: "EUR", IdempotencyKey: "boss-steal"})
			return err
		}, codes.NotFound},
		{"without a token", func() error {
			_, err := s.gateway.CreateTransfer(context.Background(), &transactionsv1.CreateTransferRequest{
				FromAccountId: a, ToAccountId: b, Amount: 1, Currency: "EUR", IdempotencyKey: "anon"})
			return err
		}, codes.Unauthenticated},
		{"missing idempotency key", func() error {
			_, err := s.gateway.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{
				FromAccountId: a, ToAccountId: b, Amount: 1, Currency: "EUR"})
			return err
		}, codes.InvalidArgument},
		{"same account twice", func() error {
			_, err := s.gateway.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{
				FromAccountId: a, ToAccountId: a, Amount: 1, Currency: "EUR", IdempotencyKey: "self"})
			return err
		}, codes.InvalidArgument},
		{"insufficient funds", func() error {
			_, err := s.gateway.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{
				FromAccountId: a, ToAccountId: b, Amount: 49_999, Currency: "EUR", IdempotencyKey: "poor"})
			return err
		}, codes.FailedPrecondition},
		{"a stranger reads a transfer", func() error {
			_, err := s.gateway.GetTransfer(stranger.ctx(), &transactionsv1.GetTransferRequest{TransferId: ok.GetTransfer().GetId()})
			return err
		}, codes.NotFound},
		{"a stranger reads an account's history", func() error {
			_, err := s.gateway.ListTransactions(stranger.ctx(), &transactionsv1.ListTransactionsRequest{AccountId: a})
			return err
		}, codes.NotFound},
		{"the initiator approves, even as a manager", func() error {
			_, err := s.gateway.ApproveTransfer(boss.ctx(), &transactionsv1.ApproveTransferRequest{TransferId: heldID})
			return err
		}, codes.PermissionDenied},
		{"the initiator rejects, even as a manager", func() error {
			_, err := s.gateway.RejectTransfer(boss.ctx(), &transactionsv1.RejectTransferRequest{TransferId: heldID, Reason: "mine"})
			return err
		}, codes.PermissionDenied},
		{"a user reads the approval queue", func() error {
			_, err := s.gateway.ListTransfers(alice.ctx(), &transactionsv1.ListTransfersRequest{Status: "PENDING_APPROVAL"})
			return err
		}, codes.PermissionDenied},
		{"a user approves", func() error {
			_, err := s.gateway.ApproveTransfer(bob.ctx(), &transactionsv1.ApproveTransferRequest{TransferId: heldID})
			return err
		}, codes.PermissionDenied},
		{"a user deposits", func() error {
			_, err := s.gateway.CreateDeposit(alice.ctx(), &transactionsv1.CreateDepositRequest{
				AccountId: a, Amount: 1_000, Currency: "EUR", Reference: "free money", IdempotencyKey: "gift"})
			return err
		}, codes.PermissionDenied},
		{"the gateway opens a ledger account", func() error {
			_, err := gatewayLedger.OpenLedgerAccount(alice.ctx(), &transactionsv1.OpenLedgerAccountRequest{
				AccountId: uuid.NewString(), OwnerId: alice.id, Currency: "EUR"})
			return err
		}, codes.PermissionDenied},
		{"the gateway freezes an account", func() error {
			_, err := gatewayLedger.SetLedgerAccountStatus(boss.ctx(), &transactionsv1.SetLedgerAccountStatusRequest{AccountId: a, Status: "FROZEN"})
			return err
		}, codes.PermissionDenied},
		{"the gateway reads balances", func() error {
			_, err := gatewayLedger.GetBalances(boss.ctx(), &transactionsv1.GetBalancesRequest{AccountIds: []string{a}})
			return err
		}, codes.PermissionDenied},
		{"an unnamed service reads balances", func() error {
			_, err := intruder.GetBalances(context.Background(), &transactionsv1.GetBalancesRequest{AccountIds: []string{a}})
			return err
		}, codes.PermissionDenied},
		{"the accounts service moves money", func() error {
			_, err := accountsAsUser.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{
				FromAccountId: a, ToAccountId: b, Amount: 1, Currency: "EUR", IdempotencyKey: "svc"})
			return err
		}, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beforeA, heldA := s.balance(a)
			beforeB, _ := s.balance(b)
			err := tt.call()
			if got := status.Code(err); got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, err, tt.want)
			}
			if msg := status.Convert(err).Message(); strings.Contains(msg, "ledger.") || strings.Contains(msg, "SQLSTATE") {
				t.Errorf("%s leaked internals: %q", tt.name, msg)
			}
			afterA, heldAfterA := s.balance(a)
			afterB, _ := s.balance(b)
			if beforeA != afterA || beforeB != afterB || heldA != heldAfterA {
				t.Errorf("%s moved money: %d→%d, %d→%d", tt.name, beforeA, afterA, beforeB, afterB)
			}
		})
	}
	// The platform's denials are in the audit chain too, with who was
	// refused, under the one action name every service uses.
	for actor, min := range map[string]int{stranger.id: 2, bob.id: 3, "service:gateway": 3, "service:intruder": 1, "service:accounts": 1} {
		var n int
		if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.audit_events
			WHERE actor = $1 AND outcome = 'denied' AND action = 'authz.denied'`, actor).Scan(&n); err != nil || n < min {
			t.Errorf("denials audited for %s = %d, %v, want at least %d", actor, n, err, min)
		}
	}
	// Any other manager may decide; either side's owner and managers may read.
	approved, err := s.gateway.ApproveTransfer(s.person(identity.RoleAdmin).ctx(), &transactionsv1.ApproveTransferRequest{TransferId: heldID})
	if err != nil || approved.GetTransfer().GetStatus() != "COMPLETED" {
		t.Errorf("ApproveTransfer(by an admin) = %v, %v, want COMPLETED", approved, err)
	}
	for _, reader := range []person{alice, bob, boss} {
		got, err := s.gateway.GetTransfer(reader.ctx(), &transactionsv1.GetTransferRequest{TransferId: ok.GetTransfer().GetId()})
		if err != nil || !cmp.Equal(got.GetTransfer(), ok.GetTransfer(), protocmp.Transform()) {
			t.Errorf("GetTransfer(as %s) = %v, %v, want the transfer", reader.id, got, err)
		}
	}
}

// The replay header is set on a replayed response and only there.
func TestIdempotencyThroughTheChain(t *testing.T) {
	t.Parallel()
	s := newStack(t, 4)
	alice, bob, boss := s.person(), s.person(), s.person(identity.RoleManager)
	a, b := s.open(alice, "EUR"), s.open(bob, "EUR")
	s.fund(boss, a, 1_000)
	req := &transactionsv1.CreateTransferRequest{FromAccountId: a, ToAccountId: b, Amount: 250, Currency: "EUR", Description: "rent", IdempotencyKey: "rent-march"}
	call := func(r *transactionsv1.CreateTransferRequest) (*transactionsv1.CreateTransferResponse, metadata.MD, error) {
		var md metadata.MD
		resp, err := s.gateway.CreateTransfer(alice.ctx(), r, grpc.Header(&md))
		return resp, md, err
	}
	first, md, err := call(req)
	if err != nil || len(md.Get(wire.Replayed)) != 0 {
		t.Fatalf("CreateTransfer(first) = %v, %v, header %v; want no replay header", first, err, md.Get(wire.Replayed))
	}
	again, md, err := call(req)
	if err != nil || !cmp.Equal(again, first, protocmp.Transform()) || strings.Join(md.Get(wire.Replayed), ",") != "true" {
		t.Errorf("CreateTransfer(replay) = %v, %v, header %v; want the first response and %s: true", again, err, md.Get(wire.Replayed), wire.Replayed)
	}
	other := &transactionsv1.CreateTransferRequest{FromAccountId: a, ToAccountId: b, Amount: 251, Currency: "EUR", Description: "rent", IdempotencyKey: "rent-march"}
	if _, _, err := call(other); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("CreateTransfer(same key, other body) = %v, want FailedPrecondition (422)", err)
	}
	if got, _ := s.balance(b); got != 250 {
		t.Errorf("target = %d, want 250 (moved once)", got)
	}
	dep := &transactionsv1.CreateDepositRequest{AccountId: b, Amount: 5, Currency: "EUR", Reference: "r", IdempotencyKey: "d"}
	var md1, md2 metadata.MD
	d1, err1 := s.gateway.CreateDeposit(boss.ctx(), dep, grpc.Header(&md1))
	d2, err2 := s.gateway.CreateDeposit(boss.ctx(), dep, grpc.Header(&md2))
	if err1 != nil || err2 != nil || len(md1.Get(wire.Replayed)) != 0 || strings.Join(md2.Get(wire.Replayed), ",") != "true" ||
		d1.GetTransfer().GetId() != d2.GetTransfer().GetId() {
		t.Errorf("CreateDeposit twice = %v %v %v / %v %v %v; want one deposit, replayed the second time", d1, md1, err1, d2, md2, err2)
	}
}

func TestListTransactionsPages(t *testing.T) {
	t.Parallel()
	s := newStack(t, 4)
	alice, bob, boss := s.person(), s.person(), s.person(identity.RoleManager)
	a, b := s.open(alice, "EUR"), s.open(bob, "EUR")
	s.fund(boss, a, 10_000)
	for i := range 7 {
		if _, err := s.gateway.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{
			FromAccountId: a, ToAccountId: b, Amount: int64(i + 1), Currency: "EUR", IdempotencyKey: uuid.NewString()}); err != nil {
			t.Fatal(err)
		}
	}
	var amounts []int64
	token := ""
	for {
		page, err := s.gateway.ListTransactions(bob.ctx(), &transactionsv1.ListTransactionsRequest{AccountId: b, PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatalf("ListTransactions(token %q) = %v", token, err)
		}
		for _, e := range page.GetEntries() {
			amounts = append(amounts, e.GetAmount())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
		// The token is bound to bob and this account: nobody else can use it.
		for name, ctx := range map[string]context.Context{"manager": boss.ctx(), "alice": alice.ctx()} {
			if _, err := s.gateway.ListTransactions(ctx, &transactionsv1.ListTransactionsRequest{AccountId: b, PageToken: token}); status.Code(err) != codes.InvalidArgument && status.Code(err) != codes.NotFound {
				t.Errorf("ListTransactions(bob's token as %s) = %v, want refused", name, err)
			}
		}
		if _, err := s.gateway.ListTransactions(bob.ctx(), &transactionsv1.ListTransactionsRequest{AccountId: b, PageToken: token[:len(token)-2] + "AA"}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListTransactions(tampered token) = %v, want InvalidArgument", err)
		}
	}
	if want := []int64{7, 6, 5, 4, 3, 2, 1}; !cmp.Equal(amounts, want) {
		t.Errorf("amounts newest first = %v, want %v", amounts, want)
	}
	if _, err := s.gateway.ListTransactions(bob.ctx(), &transactionsv1.ListTransactionsRequest{AccountId: b, PageSize: 101}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ListTransactions(page size 101) = %v, want InvalidArgument", err)
	}
	page, err := s.gateway.ListTransactions(boss.ctx(), &transactionsv1.ListTransactionsRequest{AccountId: a})
	if err != nil || len(page.GetEntries()) != 8 || page.GetEntries()[7].GetBalanceAfter() != 10_000 {
		t.Errorf("ListTransactions(as manager, source) = %v, %v, want 8 entries ending with the 10000 deposit", page, err)
	}
}

func TestLedgerServiceForAccounts(t *testing.T) {
	t.Parallel()
	s := newStack(t, 2)
	alice, bob, boss := s.person(), s.person(), s.person(identity.RoleManager)
	a, b := s.open(alice, "EUR"), s.open(bob, "EUR")
	s.fund(boss, a, 500)
	ctx := context.Background()
	if _, err := s.ledger.OpenLedgerAccount(ctx, &transactionsv1.OpenLedgerAccountRequest{AccountId: a, OwnerId: alice.id, Currency: "EUR"}); err != nil {
		t.Errorf("OpenLedgerAccount(again) = %v, want nil (idempotent)", err)
	}
	if _, err := s.ledger.OpenLedgerAccount(ctx, &transactionsv1.OpenLedgerAccountRequest{AccountId: a, OwnerId: bob.id, Currency: "EUR"}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("OpenLedgerAccount(other owner) = %v, want AlreadyExists", err)
	}
	if _, err := s.ledger.SetLedgerAccountStatus(ctx, &transactionsv1.SetLedgerAccountStatusRequest{AccountId: a, Status: "FROZEN"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.gateway.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{FromAccountId: a, ToAccountId: b, Amount: 1, Currency: "EUR", IdempotencyKey: "frozen"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("CreateTransfer(frozen) = %v, want FailedPrecondition", err)
	}
	if _, err := s.ledger.SetLedgerAccountStatus(ctx, &transactionsv1.SetLedgerAccountStatusRequest{AccountId: uuid.NewString(), Status: "FROZEN"}); status.Code(err) != codes.NotFound {
		t.Errorf("SetLedgerAccountStatus(unknown) = %v, want NotFound", err)
	}
	resp, err := s.ledger.GetBalances(ctx, &transactionsv1.GetBalancesRequest{AccountIds: []string{a, b, uuid.NewString()}})
	want := &transactionsv1.GetBalancesResponse{Balances: []*transactionsv1.Balance{
		{AccountId: a, Currency: "EUR", Balance: 500}, {AccountId: b, Currency: "EUR"}}}
	sortBalances := protocmp.SortRepeated(func(x, y *transactionsv1.Balance) bool { return x.GetAccountId() < y.GetAccountId() })
	if err != nil || !cmp.Equal(resp, want, protocmp.Transform(), sortBalances) {
		t.Errorf("GetBalances = %v, %v, want %v", resp, err, want)
	}
}

// TestReplaysAreSecurityEvents: an Idempotency-Key used again is reported,
// so that a replay shows on the request's span and in
// bank_security_events_total: "replayed" when the stored first answer is
// returned, "key_reused" when another request under the key is refused.
// A first use reports nothing.
func TestReplaysAreSecurityEvents(t *testing.T) {
	t.Parallel()
	s := newStack(t, 4)
	alice, bob, boss := s.person(), s.person(), s.person(identity.RoleManager)
	a, b := s.open(alice, "EUR"), s.open(bob, "EUR")
	s.fund(boss, a, 1_000)
	transfer := &transactionsv1.CreateTransferRequest{FromAccountId: a, ToAccountId: b, Amount: 5, Currency: "EUR", IdempotencyKey: "replay-t"}
	deposit := &transactionsv1.CreateDepositRequest{AccountId: b, Amount: 5, Currency: "EUR", Reference: "r", IdempotencyKey: "replay-d"}
	steps := []struct {
		name string
		call func() error
		want []string
	}{
		{"first transfer", func() error { _, err := s.gateway.CreateTransfer(alice.ctx(), transfer); return err }, nil},
		{"same transfer again", func() error { _, err := s.gateway.CreateTransfer(alice.ctx(), transfer); return err },
			[]string{rpc.EventReplay + "/" + rpc.ReasonReplayed}},
		{"another transfer under the key", func() error {
			other := proto.CloneOf(transfer)
			other.Amount = 6
			if _, err := s.gateway.CreateTransfer(alice.ctx(), other); status.Code(err) != codes.FailedPrecondition {
				return fmt.Errorf("got %v, want FailedPrecondition", err)
			}
			return nil
		}, []string{rpc.EventReplay + "/" + rpc.ReasonKeyReused}},
		{"first deposit", func() error { _, err := s.gateway.CreateDeposit(boss.ctx(), deposit); return err }, nil},
		{"same deposit again", func() error { _, err := s.gateway.CreateDeposit(boss.ctx(), deposit); return err },
			[]string{rpc.EventReplay + "/" + rpc.ReasonReplayed}},
	}
	for _, st := range steps {
		before := len(s.events.all())
		if err := st.call(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.events.all()[before:]; !cmp.Equal(got, st.want, cmpopts.EquateEmpty()) {
			t.Errorf("%s: events = %v, want %v", st.name, got, st.want)
		}
	}
}

// TestApprovalQueueThroughTheChain: a manager pages through the queue; the
// page token is bound to that manager; only the queue's own status is
// accepted.
func TestApprovalQueueThroughTheChain(t *testing.T) {
	t.Parallel()
	s := newStack(t, 4)
	alice, bob := s.person(), s.person()
	boss, other := s.person(identity.RoleUser, identity.RoleManager), s.person(identity.RoleUser, identity.RoleManager)
	a, b := s.open(alice, "EUR"), s.open(bob, "EUR")
	s.fund(boss, a, 3*limits.ApprovalThreshold)
	var held []string
	for range 3 {
		out, err := s.gateway.CreateTransfer(alice.ctx(), &transactionsv1.CreateTransferRequest{
			FromAccountId: a, ToAccountId: b, Amount: limits.ApprovalThreshold, Currency: "EUR", IdempotencyKey: uuid.NewString()})
		if err != nil || out.GetTransfer().GetStatus() != "PENDING_APPROVAL" {
			t.Fatalf("CreateTransfer(held) = %v, %v", out, err)
		}
		held = append(held, out.GetTransfer().GetId())
	}
	var got []string
	token := ""
	for {
		page, err := s.gateway.ListTransfers(boss.ctx(), &transactionsv1.ListTransfersRequest{Status: "PENDING_APPROVAL", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatalf("ListTransfers(token %q) = %v", token, err)
		}
		for _, tr := range page.GetTransfers() {
			got = append(got, tr.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
		if _, err := s.gateway.ListTransfers(other.ctx(), &transactionsv1.ListTransfersRequest{PageToken: token}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListTransfers(another manager's token) = %v, want InvalidArgument", err)
		}
	}
	for _, id := range held {
		if !slices.Contains(got, id) {
			t.Errorf("queue %v lacks held transfer %s", got, id)
		}
	}
	for _, bad := range []*transactionsv1.ListTransfersRequest{{Status: "COMPLETED"}, {Status: "pending_approval"}, {PageSize: 101}} {
		if _, err := s.gateway.ListTransfers(boss.ctx(), bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListTransfers(%v) = %v, want InvalidArgument", bad, err)
		}
	}
}
