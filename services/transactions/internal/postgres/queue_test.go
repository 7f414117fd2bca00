package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// TestApprovalQueue: the queue holds exactly the transfers and deposits
// waiting for a decision, oldest first, pages without gaps or repeats (two
// held at the same instant included), and loses a transfer once decided.
func TestApprovalQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	limits := testLimits
	limits.ApprovalDailyThreshold = 1 << 40 // only the amount holds here
	e := newIsolatedEnv(t, withLimits(limits))
	alice := user()
	from, to := e.open(alice, "EUR"), e.open(user(), "EUR")
	e.fund(from, 40_000, "EUR")
	e.fund(from, 40_000, "EUR")
	var held []string
	for i := range 5 {
		if i == 0 || i >= 3 { // 0, 1 and 2 are held at the same instant
			e.advance(time.Second)
		}
		out, err := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: from, To: to, Amount: testLimits.ApprovalThreshold, Currency: "EUR", IdempotencyKey: uuid.NewString()})
		if err != nil || out.Transfer.Status != domain.StatusPendingApproval {
			t.Fatalf("Transfer(held %d) = %+v, %v", i, out, err)
		}
		held = append(held, out.Transfer.ID)
		if _, err := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: from, To: to, Amount: 1, Currency: "EUR", IdempotencyKey: uuid.NewString()}); err != nil {
			t.Fatalf("Transfer(small) = %v", err)
		}
	}
	deposit, err := e.svc.Deposit(ctx, manager(), domain.DepositRequest{AccountID: to, Amount: testLimits.ApprovalThreshold, Currency: "EUR", Reference: "r", IdempotencyKey: uuid.NewString()})
	if err != nil || deposit.Transfer.Status != domain.StatusPendingApproval {
		t.Fatalf("Deposit(held) = %+v, %v", deposit, err)
	}
	if _, err := e.svc.Reject(ctx, manager(), held[1], "no"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, manager(), held[3]); err != nil {
		t.Fatal(err)
	}
	want := []string{held[0], held[2], held[4], deposit.Transfer.ID}
	for _, size := range []int{1, 2, 3} {
		var got []string
		var after *domain.QueueCursor
		for pages := 0; ; pages++ {
			page, err := e.svc.PendingTransfers(ctx, after, size)
			if err != nil {
				t.Fatal(err)
			}
			if pages > len(want) {
				t.Fatalf("pages of %d: the queue does not end", size)
			}
			for _, tr := range page.Transfers {
				if tr.Status != domain.StatusPendingApproval {
					t.Errorf("queue holds %s in status %s", tr.ID, tr.Status)
				}
				got = append(got, tr.ID)
			}
			if page.Next == nil {
				break
			}
			after = page.Next
		}
		if !sameSet(got, want) || len(got) != len(want) {
			t.Fatalf("queue in pages of %d = %v, want %v", size, got, want)
		}
		for i := 1; i < len(got); i++ {
			a, _ := e.svc.GetTransfer(ctx, got[i-1])
			b, _ := e.svc.GetTransfer(ctx, got[i])
			if b.CreatedAt.Before(a.CreatedAt) || (b.CreatedAt.Equal(a.CreatedAt) && b.ID < a.ID) {
				t.Errorf("pages of %d: %s (%v) before %s (%v), want oldest first, then by id", size, a.ID, a.CreatedAt, b.ID, b.CreatedAt)
			}
		}
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
