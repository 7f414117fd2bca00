package postgres

import "github.com/bastion-bank/bastion/platform/postgres"

// mapErr gives every error leaving the store a kind, through the
// platform's one mapping: a lost connection or a cancelled request is
// Unavailable (safe to retry), an error that already has a kind (a
// callback's, the audit log's) keeps it, and Postgres's own text never
// reaches a client message.
func mapErr(err error) error { return postgres.MapError(err) }
