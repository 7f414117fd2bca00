-- An entry's transfer and accounts are checked once per INSERT statement,
-- by the statement trigger that already checks each transfer's two sides,
-- instead of by three foreign keys: each a query run per entry inserted,
-- that is six per posted transfer, the most the ledger ran per transfer.
--
-- What the foreign keys asked, and what asks it now:
-- - entries.transfer_id names a transfer: the trigger refuses an entry whose
--   transfer does not exist (below). A transfer is never deleted and its id
--   never changes (transfers_guard, transfers_no_truncate), so it stays.
-- - entries.account_id and counterparty_account_id name accounts: the
--   trigger already refuses an entry whose account and counterparty are not
--   its transfer's two sides, and a transfer's sides are accounts by the
--   foreign keys of ledger.transfers, which stay. No role the ledger runs
--   as may delete an account, and one that has entries has transfers, whose
--   foreign keys keep it.

ALTER TABLE ledger.entries
    DROP CONSTRAINT entries_transfer_id_fkey,
    DROP CONSTRAINT entries_account_id_fkey,
    DROP CONSTRAINT entries_counterparty_account_id_fkey;

CREATE OR REPLACE FUNCTION ledger.entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad uuid;
    gap bigint;
BEGIN
    SELECT n.transfer_id INTO bad
      FROM (SELECT DISTINCT transfer_id FROM inserted) n
      LEFT JOIN ledger.transfers t ON t.id = n.transfer_id
      JOIN ledger.entries e ON e.transfer_id = n.transfer_id
     GROUP BY n.transfer_id
    HAVING count(t.id) = 0
        OR count(*) <> 2
        OR sum(e.amount) <> 0
        OR NOT bool_and(t.status = 'COMPLETED'
               AND ((e.account_id = t.from_account_id AND e.counterparty_account_id = t.to_account_id AND e.amount = -t.amount)
                 OR (e.account_id = t.to_account_id AND e.counterparty_account_id = t.from_account_id AND e.amount = t.amount)))
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'transfer % is not balanced', bad USING ERRCODE = 'check_violation';
    END IF;
    SELECT i.seq INTO gap
      FROM (SELECT n.*, n.seq = max(n.seq) OVER (PARTITION BY n.account_id) AS newest FROM inserted n) i
      JOIN ledger.accounts a ON a.id = i.account_id
     WHERE (i.newest AND i.balance_after <> a.balance)
        OR (a.kind <> 'settlement' AND i.balance_after < 0)
        OR i.balance_after <> i.amount + coalesce((SELECT p.balance_after FROM ledger.entries p
                WHERE p.account_id = i.account_id AND p.seq < i.seq ORDER BY p.seq DESC LIMIT 1), 0)
     LIMIT 1;
    IF gap IS NOT NULL THEN
        RAISE EXCEPTION 'entry % does not continue its account''s history to its balance', gap
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
