-- An account's owner and kind are fixed when the ledger records it. The
-- ledger remembers who owns an account or a transfer for the ownership
-- check (platform/rbac CacheOwners, BANK_OWNER_CACHE_SIZE); a transfer's
-- sides are already fixed (ledger.transfers_guard, 0001 and 0003) and a
-- transfer is never deleted, so its owners are fixed once its accounts'
-- are. The runtime role could never change an owner (its grants); these
-- triggers hold it for every role, the schema's owner and a superuser
-- included: an UPDATE that changes an account's id, owner or kind and a
-- DELETE are refused, so a remembered answer never goes stale and an id
-- never comes back with another owner. (A TRUNCATE must cascade to the
-- transfers, which refuse it.)
CREATE FUNCTION ledger.refuse_owner_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger.accounts: an account''s id, owner and kind never change and it is never deleted: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- WHEN keeps the function out of every balance update: two per transfer.
CREATE TRIGGER accounts_owner_fixed BEFORE UPDATE ON ledger.accounts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.owner_id IS DISTINCT FROM NEW.owner_id
                       OR OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION ledger.refuse_owner_change();
CREATE TRIGGER accounts_never_deleted BEFORE DELETE ON ledger.accounts
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_owner_change();
