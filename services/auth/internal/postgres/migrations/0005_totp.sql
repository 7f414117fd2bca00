-- TOTP multi-factor authentication. A user's secret is stored sealed
-- (AES-256-GCM under BANK_TOTP_KEY_FILE, bound to the user's id): a stolen
-- table or backup gives no usable secret. last_step is the newest time step
-- whose code was accepted: each code is accepted once, and never one older
-- than the newest. Every change happens under the user's row lock.
CREATE TABLE auth.totp (
    user_id      uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    secret       bytea CHECK (length(secret) BETWEEN 40 AND 128),   -- the active secret; NULL while MFA is off
    pending      bytea CHECK (length(pending) BETWEEN 40 AND 128),  -- an enrolment not yet verified
    pending_at   timestamptz,
    enabled_at   timestamptz CHECK ((enabled_at IS NULL) = (secret IS NULL)),
    last_step    bigint NOT NULL DEFAULT 0 CHECK (last_step >= 0),
    updated_at   timestamptz NOT NULL
);

-- The ticket a login with the right password gets when MFA is on: opaque,
-- single use, short-lived, stored only as SHA-256 like refresh tokens.
CREATE TABLE auth.mfa_tickets (
    ticket_hash bytea PRIMARY KEY CHECK (length(ticket_hash) = 32),
    user_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX mfa_tickets_expiry ON auth.mfa_tickets (expires_at);

-- How each session's login was proven (RFC 8176 amr): its refreshes issue
-- tokens with the same methods, so a session from a password-only login
-- never gains "otp" by refreshing.
ALTER TABLE auth.refresh_families
    ADD COLUMN amr text[] NOT NULL DEFAULT '{pwd}' CHECK (cardinality(amr) >= 1 AND amr <@ ARRAY['pwd', 'otp']::text[]);
