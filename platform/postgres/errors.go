package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-bank/bastion/platform/errs"
)

// The SQLSTATE codes this package acts on.
const (
	codeUniqueViolation      = "23505"
	codeCheckViolation       = "23514"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeDuplicateObject      = "42710"
	codeDuplicateDatabase    = "42P04"
	codeDuplicateSchema      = "42P06"
)

// IsUniqueViolation reports whether err is, or wraps, a Postgres unique
// constraint violation: the usual sign of a duplicate a service should
// report as a conflict in its own words.
func IsUniqueViolation(err error) bool {
	return sqlState(err) == codeUniqueViolation
}

// ConnectionLost reports whether err means the connection to the database
// failed (a network error, the server shutting down or ending our backend),
// as opposed to the database refusing a statement. Such a transaction was
// rolled back, or committed together with whatever marks it done, so
// retrying is safe.
func ConnectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is connection exceptions; 57P01-57P03 are the server
		// shutting down or terminating our backend.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// MapError turns an error from pgx into an *errs.Error whose kind tells the
// caller what to do and whose message is safe to show:
//
//   - a lost connection becomes Unavailable (checked first: it may arrive
//     wrapped in another package's error, and it is still safe to retry);
//   - an *errs.Error already in the chain is returned unchanged;
//   - a cancelled or timed-out request becomes Unavailable;
//   - pgx.ErrNoRows becomes NotFound;
//   - a unique violation becomes Conflict ("already exists");
//   - a check violation becomes Refused (a CHECK is a business rule, such as
//     a balance that may not go negative);
//   - anything else becomes Internal.
//
// The Postgres error, which may name tables, constraints and values, is kept
// only as the cause, for the log. MapError(nil) is nil.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	if ConnectionLost(err) {
		return errs.Wrap(errs.Unavailable, "database unavailable", err)
	}
	if _, ok := errs.As(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errs.Wrap(errs.Unavailable, "request cancelled", err)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.Wrap(errs.NotFound, "not found", err)
	}
	switch sqlState(err) {
	case codeUniqueViolation:
		return errs.Wrap(errs.Conflict, "already exists", err)
	case codeCheckViolation:
		return errs.Wrap(errs.Refused, "refused by a rule", err)
	}
	return errs.Wrap(errs.Internal, "internal error", err)
}
