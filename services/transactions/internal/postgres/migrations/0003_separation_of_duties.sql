-- Separation of duties: deposits follow the approval rules of transfers, a
-- transfer records why it was held, and each manager's deposits of a day are
-- counted apart from their outgoing transfers.

-- A deposit at or above the approval threshold now waits for a second
-- person like a transfer does.
ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_deposits_never_held;

-- Why a transfer was held: its own amount, or the initiator's total of the
-- day. Empty for one that posted at once. It stays after the decision, so an
-- approved or rejected transfer still says why it needed one.
ALTER TABLE ledger.transfers
    ADD COLUMN hold_reason text NOT NULL DEFAULT ''
        CHECK (hold_reason IN ('', 'amount', 'daily_total')),
    ADD CONSTRAINT transfers_held_for_a_reason
        CHECK (status <> 'PENDING_APPROVAL' OR hold_reason <> ''),
    -- Nobody decides their own request; the service refuses first, this is
    -- the last line.
    ADD CONSTRAINT transfers_not_self_decided
        CHECK (decided_by IS NULL OR decided_by <> initiated_by);

-- The guard now keeps hold_reason as immutable as the amount and the sides.
CREATE OR REPLACE FUNCTION ledger.transfers_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'ledger.transfers is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status <> 'PENDING_APPROVAL'
       OR NEW.status = 'PENDING_APPROVAL'
       OR (NEW.id, NEW.from_account_id, NEW.to_account_id, NEW.amount, NEW.currency, NEW.description,
           NEW.kind, NEW.initiated_by, NEW.created_at, NEW.hold_reason)
          IS DISTINCT FROM
          (OLD.id, OLD.from_account_id, OLD.to_account_id, OLD.amount, OLD.currency, OLD.description,
           OLD.kind, OLD.initiated_by, OLD.created_at, OLD.hold_reason) THEN
        RAISE EXCEPTION 'ledger.transfers: only a pending transfer''s decision may change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

-- Daily usage per kind: 'transfer' is a user's outgoing total (the daily
-- limit and the cumulative approval threshold), 'deposit' a manager's
-- deposits (the deposit cap). Existing rows are outgoing totals.
ALTER TABLE ledger.daily_usage
    ADD COLUMN kind text NOT NULL DEFAULT 'transfer' CHECK (kind IN ('transfer', 'deposit'));
ALTER TABLE ledger.daily_usage DROP CONSTRAINT daily_usage_pkey;
ALTER TABLE ledger.daily_usage ADD PRIMARY KEY (user_id, day, kind);
ALTER TABLE ledger.daily_usage ALTER COLUMN kind DROP DEFAULT;
