-- The approval queue (GET /v1/transfers?status=PENDING_APPROVAL) reads the
-- pending transfers oldest first; a partial index keeps that read as small
-- as the queue, however large the ledger grows.
CREATE INDEX transfers_approval_queue ON ledger.transfers (created_at, id)
    WHERE status = 'PENDING_APPROVAL';
