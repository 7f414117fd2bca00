package postgres_test

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

type nopAuditor struct{}

func (nopAuditor) Append(context.Context, pgx.Tx, domain.Event) error { return nil }

func newAuditor() nopAuditor { return nopAuditor{} }
