-- Login throttling, shared by every replica (idp/throttle). Times are Unix seconds.

-- One row per failed password check that was evaluated (held attempts are not recorded).
-- `email_key` is the case-folded e-mail that was typed, known or not, so unknown e-mails are
-- throttled exactly like known ones; `client` is the address (IPv4) or /64 (IPv6).
CREATE TABLE login_failures (
    email_key TEXT NOT NULL,
    client    TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX login_failures_pair ON login_failures (email_key, client, at);
CREATE INDEX login_failures_account ON login_failures (email_key, at);
CREATE INDEX login_failures_client ON login_failures (client, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- The last successful login of an account from an address, written inside writes a login
-- already makes (the session row's transaction, the signed-nonce ledger's batch). Such an
-- address is not held by other addresses' failures.
CREATE TABLE login_successes (
    email_key TEXT NOT NULL,
    client    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (email_key, client)
);
CREATE INDEX login_successes_at ON login_successes (at);

-- Sign-ups by address (POST /users), for the per-address sign-up rate.
CREATE TABLE signup_attempts (
    id     BIGSERIAL PRIMARY KEY,
    client TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX signup_attempts_client ON signup_attempts (client, at);
CREATE INDEX signup_attempts_at ON signup_attempts (at);
