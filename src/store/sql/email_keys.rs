//! Re-keys stored e-mail addresses whose uniqueness key was computed by an earlier rule.
//!
//! `email_key` is computed in Rust (`domain::Email::key`), because SQLite's `LOWER()` folds
//! ASCII only, so no SQL migration can recompute it. Keys of ASCII addresses never change;
//! for the others this runs after the SQL migrations, each start, and rewrites the keys that
//! differ from today's rule (the rule gained a second NFC after lower-casing: `J` + caron
//! lower-cases to `ǰ`'s decomposition). Only addresses with a non-ASCII character are read
//! (`LENGTH <> OCTET_LENGTH`, in both dialects), so a start costs one indexed-free scan of
//! `users` that returns almost nothing.
//!
//! If two accounts turn out to be one address under the current rule — the bug the new rule
//! fixes let that happen — the second keeps its old key and an error names both accounts for
//! an operator to merge or remove; nothing is deleted here.

use super::Pool;
use crate::domain::Email;
use crate::store::StoreError;

/// How many keys were rewritten, and the IDs left on an old key because another account
/// holds the new one.
#[derive(Debug, Default)]
pub(super) struct Rekeyed {
    pub rewritten: usize,
    pub conflicts: Vec<(String, String)>,
}

pub(super) async fn rekey(pool: &Pool) -> Result<Rekeyed, StoreError> {
    let rows: Vec<(String, String, String)> = db_run!(pool, p => sqlx::query_as(
        "SELECT id, email, email_key FROM users WHERE LENGTH(email) <> OCTET_LENGTH(email)"
    )
    .fetch_all(p)
    .await)?;
    let mut done = Rekeyed::default();
    for (id, email, stored_key) in rows {
        let Ok(parsed) = Email::parse(&email) else {
            continue;
        };
        if parsed.key() == stored_key {
            continue;
        }
        let holder: Option<(String,)> = db_run!(pool, p => sqlx::query_as(
            "SELECT id FROM users WHERE email_key = $1"
        )
        .bind(parsed.key())
        .fetch_optional(p)
        .await)?;
        if let Some((holder,)) = holder {
            tracing::error!(
                user_id = %id,
                other_user_id = %holder,
                "two accounts have one e-mail address under the current comparison rule; \
                 the first keeps its old key (it cannot log in by e-mail) until an operator \
                 merges or removes one"
            );
            done.conflicts.push((id, holder));
            continue;
        }
        db_run!(pool, p => sqlx::query("UPDATE users SET email_key = $2 WHERE id = $1")
            .bind(&id)
            .bind(parsed.key())
            .execute(p)
            .await
            .map(drop))?;
        done.rewritten += 1;
    }
    Ok(done)
}
