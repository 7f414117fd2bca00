-- Accounts: who owns each account, its currency and name, and whether money
-- may move. Money itself lives in the ledger (schema "ledger"), which keeps
-- its own copy of owner, currency and status.

CREATE TABLE accounts.accounts (
    id                uuid PRIMARY KEY,
    owner_id          uuid NOT NULL,
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    display_name      text NOT NULL DEFAULT '' CHECK (char_length(display_name) <= 64),
    status            text NOT NULL CHECK (status IN ('ACTIVE', 'FROZEN', 'CLOSED')),
    -- Why and by whom the status last changed; empty and NULL until it does.
    status_reason     text NOT NULL DEFAULT '' CHECK (char_length(status_reason) <= 280),
    status_changed_by uuid,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT accounts_changed_by_with_reason CHECK ((status_changed_by IS NULL) = (status_reason = ''))
);

-- Serves both a user's list pages, in (created_at, id) order, and the
-- per-owner count of open accounts.
CREATE INDEX accounts_owner_created ON accounts.accounts (owner_id, created_at, id);
