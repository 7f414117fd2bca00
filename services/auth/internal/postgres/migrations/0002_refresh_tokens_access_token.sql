-- Logout finds the session an access token belongs to through the refresh
-- token issued beside it (access_token_id, with user_id); without this index
-- that is a scan of every refresh token. Migrations run in a transaction, so
-- this is a plain CREATE INDEX: logins and refreshes, which insert into the
-- table, wait until it is built. The table holds only tokens not yet purged
-- (expired ones go with the purge), so that is one pass over live sessions.
CREATE INDEX refresh_tokens_access_token ON auth.refresh_tokens (access_token_id);
