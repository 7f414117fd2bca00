package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
)

func TestMapErrorConnectionsAndCancellation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		lost bool
		kind errs.Kind
	}{
		{"backend terminated", &pgconn.PgError{Code: "57P01"}, true, errs.Unavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true, errs.Unavailable},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true, errs.Unavailable},
		{"lost connection inside another kind", errs.Wrap(errs.Internal, "audit failed", io.EOF), true, errs.Unavailable},
		{"cancelled request", fmt.Errorf("query: %w", context.Canceled), false, errs.Unavailable},
		{"a refused statement is not a lost connection", &pgconn.PgError{Code: "23514"}, false, errs.Refused},
		{"a kind is kept", errs.New(errs.NotFound, "account not found"), false, errs.NotFound},
		{"anything else is internal", errors.New("boom"), false, errs.Internal},
	}
	for _, tt := range tests {
		if got := postgres.ConnectionLost(tt.err); got != tt.lost {
			t.Errorf("ConnectionLost(%s) = %v, want %v", tt.name, got, tt.lost)
		}
		if got := errs.KindOf(postgres.MapError(tt.err)); got != tt.kind {
			t.Errorf("MapError(%s) kind = %v, want %v", tt.name, got, tt.kind)
		}
	}
}
