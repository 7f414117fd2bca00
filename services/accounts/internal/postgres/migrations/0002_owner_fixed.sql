-- An account's owner is fixed when it is opened. The services remember who
-- owns an id for the ownership check (platform/rbac CacheOwners,
-- BANK_OWNER_CACHE_SIZE), and the runtime role could never change it
-- (its grants). These triggers hold it for every role, the schema's owner
-- and a superuser included: an UPDATE that changes an account's id or
-- owner, a DELETE and a TRUNCATE are refused, so a remembered answer never
-- goes stale and an id never comes back with another owner. An account
-- that is done with is closed, not deleted.
CREATE FUNCTION accounts.refuse_owner_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'accounts.accounts: an account''s id and owner never change and it is never deleted: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- WHEN keeps the function out of every other update (a name, a status).
CREATE TRIGGER accounts_owner_fixed BEFORE UPDATE ON accounts.accounts
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION accounts.refuse_owner_change();
CREATE TRIGGER accounts_never_deleted BEFORE DELETE ON accounts.accounts
    FOR EACH ROW EXECUTE FUNCTION accounts.refuse_owner_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts.accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts.refuse_owner_change();
