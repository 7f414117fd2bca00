-- A balance changes only with the entries that explain it, in the same
-- transaction. Two rules make it so:
--
-- 1. When entries are inserted (in the statement trigger that already checks
--    each transfer's two sides), each must continue its account's history:
--    its balance_after is the previous entry's balance_after (0 before the
--    first) plus its amount, and it is the account's balance at that moment,
--    so the posting moves the balance first, then books the entries (as the
--    store does, in one batch). Entries that move no balance are refused.
-- 2. At commit, an account whose balance changed (or that was opened with
--    money) holds exactly the balance_after of its newest entry, or 0 if it
--    has none. A constraint trigger, deferred to commit, since the balance
--    moves before its entries are booked.
--
-- With both, a stored balance is always the sum of its account's entries,
-- and entries come only in balanced pairs on a completed transfer: money
-- cannot be made or moved by an UPDATE of ledger.accounts alone. Each check
-- reads one index entry (entries_account_history) per account touched.

CREATE OR REPLACE FUNCTION ledger.entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad uuid;
    gap bigint;
BEGIN
    SELECT t.id INTO bad
      FROM ledger.transfers t
      JOIN ledger.entries e ON e.transfer_id = t.id
     WHERE t.id IN (SELECT DISTINCT transfer_id FROM inserted)
     GROUP BY t.id
    HAVING count(*) <> 2
        OR sum(e.amount) <> 0
        OR NOT bool_and(t.status = 'COMPLETED'
               AND ((e.account_id = t.from_account_id AND e.counterparty_account_id = t.to_account_id AND e.amount = -t.amount)
                 OR (e.account_id = t.to_account_id AND e.counterparty_account_id = t.from_account_id AND e.amount = t.amount)))
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'transfer % is not balanced', bad USING ERRCODE = 'check_violation';
    END IF;
    SELECT i.seq INTO gap
      FROM inserted i JOIN ledger.accounts a ON a.id = i.account_id
     WHERE i.balance_after <> a.balance
        OR i.balance_after <> i.amount + coalesce((SELECT p.balance_after FROM ledger.entries p
                WHERE p.account_id = i.account_id AND p.seq < i.seq ORDER BY p.seq DESC LIMIT 1), 0)
     LIMIT 1;
    IF gap IS NOT NULL THEN
        RAISE EXCEPTION 'entry % does not continue its account''s history to its balance', gap
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION ledger.balance_explained() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
DECLARE
    stored bigint;
    booked bigint;
BEGIN
    SELECT a.balance, coalesce((SELECT e.balance_after FROM ledger.entries e
                                 WHERE e.account_id = a.id ORDER BY e.seq DESC LIMIT 1), 0)
      INTO stored, booked
      FROM ledger.accounts a WHERE a.id = NEW.id;
    IF stored IS DISTINCT FROM booked THEN
        RAISE EXCEPTION 'the balance of account % (%) is not what its entries say (%)', NEW.id, stored, booked
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER accounts_balance_changed AFTER UPDATE OF balance ON ledger.accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.balance IS DISTINCT FROM NEW.balance)
    EXECUTE FUNCTION ledger.balance_explained();

CREATE CONSTRAINT TRIGGER accounts_opened_with_money AFTER INSERT ON ledger.accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.balance <> 0)
    EXECUTE FUNCTION ledger.balance_explained();

-- SET CONSTRAINTS cannot skip these checks: it only moves them between the
-- end of each statement and commit, and they run at either.
