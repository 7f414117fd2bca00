package postgres

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/postgres"
)

// mapErr gives every error leaving the repository a kind: a lost database
// connection or a cancelled request is Unavailable (safe to retry), an
// error that already has a kind (a callback's, the audit log's) keeps it,
// and anything else is mapped by postgres.MapError, which keeps Postgres's
// text out of client messages.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if connectionLost(err) {
		return errs.Wrap(errs.Unavailable, "database unavailable", err)
	}
	if _, ok := errs.As(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errs.Wrap(errs.Unavailable, "request cancelled", err)
	}
	return postgres.MapError(err)
}

// connectionLost reports whether err means the connection to the database
// failed, as opposed to the database refusing a statement.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is connection exceptions; 57P01-57P03 are the server
		// shutting down or terminating our backend.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr)
}
