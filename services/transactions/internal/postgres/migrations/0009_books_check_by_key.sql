-- The books' statement trigger (entries_balanced, migration 0007) reads only
-- the rows of the entries a statement inserted: their transfers, their
-- accounts, the entries of those transfers and each account's entry before
-- them, each by its key. Its plans are made once per connection, from the
-- statistics of the moment, and a young, fast-growing ledger's statistics
-- are stale: measured on a new database, the planner merged the inserted
-- transfers with a full scan of the transfers' primary key (3,436 buffers
-- for 33 transfers) and scanned the accounts whole. It then cost more the
-- more transfers the ledger held, on every batch.
--
-- The function is unchanged; it now plans its queries without sequential
-- scans, hash joins or merge joins, so each is a probe of an index per row
-- inserted, whatever the statistics say. What it checks, and when, is
-- exactly as before: these settings choose plans, never results, and hold
-- only while the function runs.
ALTER FUNCTION ledger.entries_balanced()
    SET enable_seqscan = off
    SET enable_hashjoin = off
    SET enable_mergejoin = off;
