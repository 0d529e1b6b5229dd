-- Accounts, app sessions, signed nonces and admin tokens.
-- Times are Unix seconds (BIGINT), made in Rust so both dialects store the same values.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    -- Case-folded in Rust (see domain::Email) so SQLite and PostgreSQL agree on duplicates.
    email_key     TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT,
    first_name    TEXT,
    last_name     TEXT,
    avatar_url    TEXT,
    disabled_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- App sessions (POST /sessions). Only SHA-256 of the token is stored.
CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- SHA-256 of every nonce signed while Layer would still accept it, so none is signed twice.
-- No foreign key: the record must outlive a deleted user.
CREATE TABLE signed_nonces (
    nonce_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX signed_nonces_expires_at ON signed_nonces (expires_at);

-- Admin API tokens. Only SHA-256 of the token is stored.
CREATE TABLE admin_tokens (
    token_hash   BYTEA PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
