-- Failed logins are counted per account and client network as well as per
-- account and per network (the login throttle in the domain package): the
-- counter of one account from one network has a scope of its own. Its key
-- is a hash, like an account's, so the table holds no email.
ALTER TABLE auth.login_counters
    DROP CONSTRAINT login_counters_scope_check,
    ADD CONSTRAINT login_counters_scope_check CHECK (scope IN ('account', 'account_client', 'ip'));
