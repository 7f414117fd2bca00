-- The auth service's own tables. Only the auth service's role can reach this
-- schema; passwords and refresh tokens are stored only as hashes.

CREATE TABLE auth.users (
    id           uuid PRIMARY KEY,
    email        text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 256),
    roles        text[] NOT NULL CHECK (cardinality(roles) >= 1 AND roles <@ ARRAY['user', 'manager', 'admin']::text[]),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Unique case-insensitively even if a row ever bypassed the lower-case check.
CREATE UNIQUE INDEX users_email_key ON auth.users (lower(email));
-- The admins, which every role change locks.
CREATE INDEX users_admins ON auth.users (id) WHERE 'admin' = ANY (roles);

CREATE TABLE auth.credentials (
    user_id       uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    updated_at    timestamptz NOT NULL
);

-- A family is every refresh token descended from one login.
CREATE TABLE auth.refresh_families (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX refresh_families_live ON auth.refresh_families (user_id) WHERE revoked_at IS NULL;

-- token_hash is SHA-256 of the token's 32 random bytes: a stolen table
-- gives no usable token. Each row remembers the access token issued with it.
CREATE TABLE auth.refresh_tokens (
    token_hash        bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id         uuid NOT NULL REFERENCES auth.refresh_families (id) ON DELETE CASCADE,
    user_id           uuid NOT NULL,
    issued_at         timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    used_at           timestamptz,
    access_token_id   text NOT NULL,
    access_expires_at timestamptz NOT NULL
);
CREATE INDEX refresh_tokens_family ON auth.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON auth.refresh_tokens (expires_at);

-- Revoked access tokens, kept until they would have expired anyway.
CREATE TABLE auth.revoked_tokens (
    token_id   text PRIMARY KEY CHECK (length(token_id) BETWEEN 1 AND 128),
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON auth.revoked_tokens (expires_at);

-- Login attempts in the current window, per account (hashed email) and per
-- client IP.
CREATE TABLE auth.login_counters (
    scope        text NOT NULL CHECK (scope IN ('account', 'ip')),
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 128),
    count        integer NOT NULL CHECK (count >= 0),
    window_start timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX login_counters_window ON auth.login_counters (window_start);
