package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/deploy/chaos"
)

// readDatabase reads the books from the ledger's tables, as the cluster's
// superuser, in one read-only snapshot: every account with the bank's
// settlement accounts, every entry in its account's order, and every
// idempotency record.
func readDatabase(ctx context.Context, dbURL string) (chaos.Books, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return chaos.Books{}, fmt.Errorf("connect to the campaign's database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return chaos.Books{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	b := chaos.Books{Source: "database", History: map[string][]chaos.Entry{}, Records: map[string]string{}}

	var a chaos.Account
	var kind string
	var held int64
	rows, _ := tx.Query(ctx, `SELECT id::text, kind, balance, held FROM ledger.accounts ORDER BY id`)
	if _, err := pgx.ForEachRow(rows, []any{&a.ID, &kind, &a.Balance, &held}, func() error {
		a.Settlement, a.Available = kind == "settlement", a.Balance-held
		b.Accounts = append(b.Accounts, a)
		return nil
	}); err != nil {
		return chaos.Books{}, fmt.Errorf("read ledger.accounts: %w", err)
	}

	var account string
	var e chaos.Entry
	rows, _ = tx.Query(ctx, `SELECT e.account_id::text, e.transfer_id::text, e.amount, e.balance_after, t.description
		FROM ledger.entries e JOIN ledger.transfers t ON t.id = e.transfer_id ORDER BY e.account_id, e.seq`)
	if _, err := pgx.ForEachRow(rows, []any{&account, &e.TransferID, &e.Amount, &e.BalanceAfter, &e.Description}, func() error {
		b.History[account] = append(b.History[account], e)
		return nil
	}); err != nil {
		return chaos.Books{}, fmt.Errorf("read ledger.entries: %w", err)
	}

	var key, transfer string
	rows, _ = tx.Query(ctx, `SELECT key, transfer_id::text FROM ledger.idempotency_keys`)
	if _, err := pgx.ForEachRow(rows, []any{&key, &transfer}, func() error {
		b.Records[key] = transfer
		return nil
	}); err != nil {
		return chaos.Books{}, fmt.Errorf("read ledger.idempotency_keys: %w", err)
	}
	return b, nil
}
