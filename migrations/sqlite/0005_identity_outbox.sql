-- Changes to users that Layer must hear about (identity sync): one row per change, written
-- in the same transaction as the change, deleted once Layer has it. No foreign key to users:
-- a deleted user's row must outlive the user.
CREATE TABLE identity_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT NOT NULL,
    -- 'identity' (send the current profile), 'suspend', 'unsuspend' or 'delete'.
    change          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- A worker holds the row until then; after it, the row is free again (the worker died).
    leased_until    INTEGER,
    last_error      TEXT
);
-- A user's changes go out in ID order: the head of each user's queue is found by (user_id, id).
CREATE INDEX identity_outbox_user ON identity_outbox (user_id, id);
CREATE INDEX identity_outbox_due ON identity_outbox (next_attempt_at, id);
