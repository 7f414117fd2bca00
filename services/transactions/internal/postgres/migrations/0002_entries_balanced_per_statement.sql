-- The double-entry check ran deferred, at COMMIT, once per entry: that is
-- inside the audit chain's lock, which every money transaction queues on.
-- It now runs once per INSERT statement, at its end, over the transfers that
-- statement touched: the ledger inserts both entries of a transfer in one
-- statement, and a statement that inserts only one side of a transfer (or a
-- third entry) fails at once, which is stricter than before.
DROP TRIGGER entries_balanced ON ledger.entries;
DROP FUNCTION ledger.entries_balanced();

CREATE FUNCTION ledger.entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad uuid;
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
    RETURN NULL;
END $$;

CREATE TRIGGER entries_balanced AFTER INSERT ON ledger.entries
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.entries_balanced();
