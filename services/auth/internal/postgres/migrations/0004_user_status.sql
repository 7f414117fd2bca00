-- An admin can disable a user (and enable them again): a disabled user's
-- logins fail as a wrong password does and their sessions are revoked. The
-- status is on the user's row, which every login and refresh locks before
-- it issues tokens, so a disable and a token issue are serialised (the lock
-- order in the domain package's doc).
ALTER TABLE auth.users
    ADD COLUMN status text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED'));

-- The user list pages through users oldest first.
CREATE INDEX users_created ON auth.users (created_at, id);

