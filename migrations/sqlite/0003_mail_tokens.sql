-- E-mail verification and password reset (account lifecycle).

-- When the current address was proven to belong to the user; NULL until then. Changing the
-- address clears it.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;

-- Single-use tokens sent by e-mail. Only SHA-256 of the token is stored. At most one live
-- token per user and purpose: a newer one replaces the older.
CREATE TABLE account_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'verify_email' or 'password_reset'
    purpose    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);
