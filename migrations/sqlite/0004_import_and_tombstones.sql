-- Imported users keep whether their address was verified in users.email_verified_at
-- (0003_mail_tokens).

-- The IDs of deleted accounts, so an ID is never given to someone else (Layer would take the
-- new account for the old one: same conversations, same identity).
CREATE TABLE deleted_user_ids (
    id         TEXT PRIMARY KEY NOT NULL,
    deleted_at INTEGER NOT NULL
);

-- Security-relevant events (sign-ups, login failures, password and e-mail changes, admin
-- actions, deletions): who did what to whom, from where, with what outcome. Never a secret.
CREATE TABLE audit_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    subject TEXT,
    client  TEXT,
    outcome TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_at ON audit_events (at);
