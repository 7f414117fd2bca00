-- One statement may book several entries of one account, so that a batch of
-- the group commit moves each account once and books all its entries in one
-- INSERT, instead of one UPDATE and one INSERT per posting that touches an
-- account already moved (a round per posting on a shared account: every
-- deposit of a batch moves its currency's settlement account).
--
-- What migration 0004 checked of each inserted entry, and still does:
-- it continues its account's history (its balance_after is the previous
-- entry's, in seq order, plus its amount: for the entries of one statement,
-- the previous one may be of the same statement, booked in the order the
-- postings were decided). What changes: only an account's newest entry must
-- equal its balance at the end of the statement, as the deferred check at
-- commit already asks; an earlier entry of the same statement is a step the
-- balance went through inside it. That step is now checked against the
-- overdraft rule the accounts table checks of every balance (customer
-- accounts never below zero), so no point of a customer's history is below
-- zero, whether or not a statement ended there.
--
-- A stored balance is still always the sum of its account's entries, and
-- entries still come only in balanced pairs on a completed transfer.

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
