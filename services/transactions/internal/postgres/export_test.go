package postgres

// ReadStoredSQL is the batch's read of stored idempotency records, for a
// test of its plan.
const ReadStoredSQL = readStoredSQL
