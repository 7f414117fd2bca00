package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	"github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// auditRow is what a test reads back from ledger.audit_events.
type auditRow struct {
	Action, Resource, Outcome, Reason, ClientIP string
}

func (e *env) auditOf(actor string) []auditRow {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT action, resource, outcome, reason, client_ip
		FROM ledger.audit_events WHERE actor = $1 ORDER BY id`, actor)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[auditRow])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// Every posted transfer, hold, approval, rejection, deposit and refusal is
// in the audit log, in the order it happened, with the client's address.
func TestEverythingIsAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice, bob, boss, boss2 := user(), user(), manager(), manager()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	ctx := identity.WithClientIP(context.Background(), "203.0.113.7")
	dep, err := e.svc.Deposit(ctx, boss, domain.DepositRequest{AccountID: a, Amount: 40_000, Currency: "EUR", Reference: "r", IdempotencyKey: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, boss2, dep.Transfer.ID); err != nil {
		t.Fatal(err)
	}
	send := func(amount int64) domain.Transfer {
		out, _ := e.svc.Transfer(ctx, alice, domain.TransferRequest{From: a, To: b, Amount: amount, Currency: "EUR", IdempotencyKey: uuid.NewString()})
		return out.Transfer
	}
	posted := send(100)
	held1 := send(10_000)
	held2 := send(10_000)
	send(1_000_000) // over the maximum: refused
	e.svc.Approve(ctx, alice, held1.ID)
	e.svc.Approve(ctx, boss, held1.ID)
	e.svc.Reject(ctx, boss, held2.ID, "no")
	e.svc.Reject(ctx, boss, held2.ID, "again")
	e.svc.Transfer(ctx, bob, domain.TransferRequest{From: a, To: b, Amount: 1, Currency: "EUR", IdempotencyKey: "x"}) // not bob's

	ip := "203.0.113.7"
	want := map[string][]auditRow{
		alice.ID: {
			{"transfer.posted", "transfer/" + posted.ID, "success", "", ip},
			{"transfer.held", "transfer/" + held1.ID, "success", "", ip},
			{"transfer.held", "transfer/" + held2.ID, "success", "", ip},
			{"transfer.refused", "account/" + a, "refused", "amount_over_maximum", ip},
			{"transfer.approve_refused", "transfer/" + held1.ID, "denied", "separation_of_duties", ip},
		},
		boss.ID: {
			{"deposit.held", "transfer/" + dep.Transfer.ID, "success", "", ip},
			{"transfer.approved", "transfer/" + held1.ID, "success", "", ip},
			{"transfer.rejected", "transfer/" + held2.ID, "success", "", ip},
			{"transfer.reject_refused", "transfer/" + held2.ID, "refused", "transfer_not_pending", ip},
		},
		boss2.ID: {
			{"transfer.approved", "transfer/" + dep.Transfer.ID, "success", "", ip},
		},
		bob.ID: {
			{"transfer.refused", "account/" + a, "denied", "account_not_found", ip},
		},
	}
	for actor, rows := range want {
		if diff := cmp.Diff(rows, e.auditOf(actor)); diff != "" {
			t.Errorf("audit rows of %s (-want +got):\n%s", actor, diff)
		}
	}
}

// Editing or deleting an audit row of the ledger, even with the guard
// trigger switched off by the table's owner, is found by Verify.
func TestAuditTamperingIsDetected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tamper := range []string{
		`UPDATE ledger.audit_events SET detail = jsonb_set(detail, '{amount}', '"1"') WHERE seq = 3`,
		`DELETE FROM ledger.audit_events WHERE seq = 2`,
		`UPDATE ledger.audit_events SET actor = 'someone-else' WHERE seq = 4`,
	} {
		t.Run(tamper, func(t *testing.T) {
			t.Parallel()
			e := newIsolatedEnv(t)
			pool, log := e.pool, audit.New(postgres.Schema, time.Now)
			alice := user()
			a, b := e.open(alice, "EUR"), e.open(user(), "EUR")
			e.fund(a, 500, "EUR")
			for i := range 4 {
				e.svc.Transfer(ctx, alice, domain.TransferRequest{From: a, To: b, Amount: int64(100 + i), Currency: "EUR", IdempotencyKey: uuid.NewString()})
			}
			if _, err := log.Seal(ctx, pool); err != nil {
				t.Fatal(err)
			}
			if rep, err := log.Verify(ctx, pool); rep.Sealed != 5 || err != nil {
				t.Fatalf("Verify(untouched) = %+v, %v, want 5 rows (4 transfers or refusals and the deposit), nil", rep, err)
			}
			if _, err := pool.Exec(ctx, tamper); err == nil {
				t.Fatalf("%s: accepted with the trigger on, want refused", tamper)
			}
			_, err := pool.Exec(ctx, `ALTER TABLE ledger.audit_events DISABLE TRIGGER USER; `+tamper+`; ALTER TABLE ledger.audit_events ENABLE TRIGGER USER`)
			if err != nil {
				t.Fatal(err)
			}
			var chainErr *audit.ChainError
			if _, err := log.Verify(ctx, pool); !errors.As(err, &chainErr) {
				t.Errorf("Verify(after %s) = %v, want a *audit.ChainError", tamper, err)
			}
		})
	}
}
