package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5"

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

// MapError turns an error from pgx into an *errs.Error whose kind tells the
// caller what to do and whose message is safe to show:
//
//   - an *errs.Error already in the chain is returned unchanged;
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
	if _, ok := errs.As(err); ok {
		return err
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
