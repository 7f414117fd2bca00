-- The ledger: accounts with their money, transfers, append-only entries,
-- daily usage for the outgoing limit, and idempotency records.

-- Accounts mirror the facts the accounts service owns (owner, currency,
-- status) and hold the money only the ledger owns. One settlement account per
-- currency is the other side of every deposit, so the balances of a currency
-- always sum to zero and a customer balance changes only by deposits and
-- transfers.
CREATE TABLE ledger.accounts (
    id         uuid PRIMARY KEY,
    owner_id   uuid,
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status     text NOT NULL CHECK (status IN ('ACTIVE', 'FROZEN', 'CLOSED')),
    kind       text NOT NULL CHECK (kind IN ('customer', 'settlement')),
    balance    bigint NOT NULL DEFAULT 0,
    held       bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT accounts_no_overdraft CHECK (kind = 'settlement' OR balance >= 0),
    CONSTRAINT accounts_held_covered CHECK (held >= 0 AND (kind = 'settlement' OR held <= balance)),
    CONSTRAINT accounts_owner_iff_customer CHECK ((kind = 'customer') = (owner_id IS NOT NULL))
);

CREATE UNIQUE INDEX accounts_one_settlement_per_currency ON ledger.accounts (currency) WHERE kind = 'settlement';

CREATE TABLE ledger.transfers (
    id              uuid PRIMARY KEY,
    from_account_id uuid NOT NULL REFERENCES ledger.accounts (id),
    to_account_id   uuid NOT NULL REFERENCES ledger.accounts (id),
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    description     text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('COMPLETED', 'PENDING_APPROVAL', 'REJECTED')),
    kind            text NOT NULL CHECK (kind IN ('transfer', 'deposit')),
    initiated_by    uuid NOT NULL,
    decided_by      uuid,
    reason          text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    decided_at      timestamptz,
    CONSTRAINT transfers_distinct_accounts CHECK (from_account_id <> to_account_id),
    CONSTRAINT transfers_deposits_never_held CHECK (kind = 'transfer' OR status = 'COMPLETED'),
    CONSTRAINT transfers_pending_undecided CHECK (status <> 'PENDING_APPROVAL' OR (decided_by IS NULL AND decided_at IS NULL)),
    CONSTRAINT transfers_rejected_decided CHECK (status <> 'REJECTED' OR (decided_by IS NOT NULL AND decided_at IS NOT NULL))
);

-- A transfer's amount, sides and origin never change; only a pending transfer
-- may be decided, once. Nothing is ever deleted.
CREATE FUNCTION ledger.transfers_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'ledger.transfers is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status <> 'PENDING_APPROVAL'
       OR NEW.status = 'PENDING_APPROVAL'
       OR (NEW.id, NEW.from_account_id, NEW.to_account_id, NEW.amount, NEW.currency, NEW.description,
           NEW.kind, NEW.initiated_by, NEW.created_at)
          IS DISTINCT FROM
          (OLD.id, OLD.from_account_id, OLD.to_account_id, OLD.amount, OLD.currency, OLD.description,
           OLD.kind, OLD.initiated_by, OLD.created_at) THEN
        RAISE EXCEPTION 'ledger.transfers: only a pending transfer''s decision may change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER transfers_guard BEFORE UPDATE OR DELETE ON ledger.transfers
    FOR EACH ROW EXECUTE FUNCTION ledger.transfers_guard();

-- Entries are the books: two per posted transfer, summing to zero, never
-- changed or removed. seq orders an account's history (it is taken under the
-- account's row lock, so it follows the order the balance moved in).
CREATE TABLE ledger.entries (
    seq                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id             uuid NOT NULL REFERENCES ledger.transfers (id),
    account_id              uuid NOT NULL REFERENCES ledger.accounts (id),
    counterparty_account_id uuid NOT NULL REFERENCES ledger.accounts (id),
    amount                  bigint NOT NULL CHECK (amount <> 0),
    balance_after           bigint NOT NULL,
    created_at              timestamptz NOT NULL,
    CONSTRAINT entries_one_per_side UNIQUE (transfer_id, account_id)
);

CREATE INDEX entries_account_history ON ledger.entries (account_id, seq DESC);

CREATE FUNCTION ledger.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON ledger.entries
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON ledger.entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON ledger.transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- Double entry, checked by the database at commit: a transfer with entries
-- has exactly two, on its own two accounts, summing to zero, and it is
-- COMPLETED. Deferred, so both entries are in place when it runs.
CREATE FUNCTION ledger.entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n int;
    total bigint;
    ok boolean;
BEGIN
    SELECT count(*), coalesce(sum(e.amount), 0),
           bool_and(t.status = 'COMPLETED'
                    AND ((e.account_id = t.from_account_id AND e.counterparty_account_id = t.to_account_id AND e.amount = -t.amount)
                      OR (e.account_id = t.to_account_id AND e.counterparty_account_id = t.from_account_id AND e.amount = t.amount)))
      INTO n, total, ok
      FROM ledger.entries e JOIN ledger.transfers t ON t.id = e.transfer_id
     WHERE e.transfer_id = NEW.transfer_id;
    IF n <> 2 OR total <> 0 OR NOT ok THEN
        RAISE EXCEPTION 'transfer % is not balanced (% entries, sum %)', NEW.transfer_id, n, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON ledger.entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger.entries_balanced();

-- What each user has sent (or holds for approval) per UTC day.
CREATE TABLE ledger.daily_usage (
    user_id uuid NOT NULL,
    day     date NOT NULL,
    amount  bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
    PRIMARY KEY (user_id, day)
);

-- Idempotency records: the first response to a key, per user, kept at least
-- the configured TTL and then pruned. Written in the same transaction as the
-- money, so a crash leaves either both or neither.
CREATE TABLE ledger.idempotency_keys (
    user_id     uuid NOT NULL,
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
    response    bytea NOT NULL,
    transfer_id uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_created ON ledger.idempotency_keys (created_at);
