-- Users imported with their hashes: whether the address was verified by the system they come
-- from (Unix seconds; NULL when not known to be verified).
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;

-- The IDs of deleted accounts, so an ID is never given to someone else (Layer would take the
-- new account for the old one: same conversations, same identity).
CREATE TABLE deleted_user_ids (
    id         TEXT PRIMARY KEY NOT NULL,
    deleted_at INTEGER NOT NULL
);
