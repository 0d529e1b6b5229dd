//! The queries behind e-mailed single-use tokens (verification, password reset) and what using
//! one changes. `idp/lifecycle.rs` owns the rules; only hashes of tokens reach these queries.

use super::Pool;
use crate::store::{NewAccountToken, StoreError, TokenPurpose, User};

/// Stores a token, replacing any earlier one of the same user and purpose (a newer request
/// invalidates the older link).
pub(super) async fn replace(pool: &Pool, token: NewAccountToken<'_>) -> Result<(), StoreError> {
    let delete = "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2";
    let insert = "INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at) \
                  VALUES ($1, $2, $3, $4, $5)";
    db_run!(pool, p => {
        let mut tx = p.begin().await?;
        sqlx::query(delete)
            .bind(token.user_id)
            .bind(token.purpose.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(insert)
            .bind(token.token_hash)
            .bind(token.user_id)
            .bind(token.purpose.as_str())
            .bind(token.now)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// Deletes the token and answers its user when it was live. An expired token is deleted too
/// and answers `None`, so every token works at most once.
pub(super) async fn consume(
    pool: &Pool,
    token_hash: &[u8],
    purpose: TokenPurpose,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let sql = "DELETE FROM account_tokens WHERE token_hash = $1 AND purpose = $2 \
               RETURNING user_id, expires_at";
    let row: Option<(String, i64)> = db_run!(pool, p => sqlx::query_as(sql)
        .bind(token_hash)
        .bind(purpose.as_str())
        .fetch_optional(p)
        .await)?;
    Ok(row.and_then(|(user_id, expires_at)| (expires_at > now).then_some(user_id)))
}

/// Whether the token is live, without using it (the built-in reset form checks before showing).
pub(super) async fn is_live(
    pool: &Pool,
    token_hash: &[u8],
    purpose: TokenPurpose,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = "SELECT COUNT(*) FROM account_tokens \
               WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3";
    let count: i64 = db_run!(pool, p => sqlx::query_scalar(sql)
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_one(p)
        .await)?;
    Ok(count > 0)
}

/// Marks the user's current address verified (keeping the first time it was).
pub(super) async fn mark_verified(
    pool: &Pool,
    user_id: &str,
    now: i64,
) -> Result<Option<User>, StoreError> {
    let sql = concat!(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $2) \
         WHERE id = $1 RETURNING ",
        user_columns!()
    );
    Ok(db_run!(pool, p => sqlx::query_as(sql).bind(user_id).bind(now).fetch_optional(p).await)?)
}

/// A completed reset: the new hash, the address verified (the reset link reached it), every
/// session ended and every other pending token of the user gone — in one transaction.
pub(super) async fn reset_password(
    pool: &Pool,
    user_id: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<User>, StoreError> {
    let user_sql = concat!(
        "UPDATE users SET password_hash = $2, updated_at = $3, \
         email_verified_at = COALESCE(email_verified_at, $3) WHERE id = $1 RETURNING ",
        user_columns!()
    );
    let sessions_sql = "DELETE FROM sessions WHERE user_id = $1";
    let tokens_sql = "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2";
    Ok(db_run!(pool, p => {
        let mut tx = p.begin().await?;
        let user: Option<User> = sqlx::query_as(user_sql)
            .bind(user_id)
            .bind(password_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query(sessions_sql).bind(user_id).execute(&mut *tx).await?;
        sqlx::query(tokens_sql)
            .bind(user_id)
            .bind(TokenPurpose::PasswordReset.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        user
    }))
}
