//! The identity outbox's queries (identity sync, `idp::sync`): claim, complete, retry, count.
//! The rows themselves are written by the user-changing queries in `sql.rs`, inside their
//! transactions, with [`ENQUEUE`].
//!
//! A claim is a lease, not a held transaction: the worker sends to Layer with no connection
//! and no lock held, and a worker that dies leaves rows that come free when the lease ends.
//! Only the first row of each user's queue can be claimed, so a user's changes go out one at a
//! time, in order, across every replica.

use super::Pool;
use crate::store::{ClaimedChange, IdentityChange, OutboxBacklog, StoreError};

/// A new row, due at once (`next_attempt_at` 0, so a worker on any clock takes it).
pub(super) const ENQUEUE: &str = "INSERT INTO identity_outbox \
     (user_id, change, created_at, next_attempt_at) VALUES ($1, $2, $3, 0)";

/// Whether any row is due and free: a read, so an idle worker polling every second never
/// takes SQLite's single write connection (the one every login's write queues for).
pub(super) async fn any_due(pool: &Pool, now: i64) -> Result<bool, StoreError> {
    let sql = "SELECT COUNT(*) FROM (SELECT 1 FROM identity_outbox WHERE next_attempt_at <= $1 \
               AND (leased_until IS NULL OR leased_until <= $1) LIMIT 1) AS due";
    let n: i64 = db_run!(pool, p => sqlx::query_scalar(sql).bind(now).fetch_one(p).await)?;
    Ok(n > 0)
}

/// Leases the claimable rows. On PostgreSQL the candidate rows are locked with `FOR UPDATE
/// SKIP LOCKED`, so two replicas claiming at once take disjoint rows without waiting for each
/// other, and a row whose lease another replica has just committed is re-checked and dropped.
/// SQLite has one writer: its `UPDATE … RETURNING` is the whole claim.
pub(super) async fn claim(
    pool: &Pool,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> Result<Vec<ClaimedChange>, StoreError> {
    let rows: Vec<(i64, String, String, i32)> = match pool {
        Pool::Sqlite(p) => {
            sqlx::query_as(
                "UPDATE identity_outbox SET leased_until = $2 WHERE id IN ( \
                   SELECT o.id FROM identity_outbox o \
                   WHERE o.next_attempt_at <= $1 \
                     AND (o.leased_until IS NULL OR o.leased_until <= $1) \
                     AND NOT EXISTS (SELECT 1 FROM identity_outbox e \
                                     WHERE e.user_id = o.user_id AND e.id < o.id) \
                   ORDER BY o.id LIMIT $3) \
                 RETURNING id, user_id, change, attempts",
            )
            .bind(now)
            .bind(lease_until)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        }
        Pool::Postgres(p) => {
            sqlx::query_as(
                "UPDATE identity_outbox SET leased_until = $2 WHERE id IN ( \
                   SELECT o.id FROM identity_outbox o \
                   WHERE o.next_attempt_at <= $1 \
                     AND (o.leased_until IS NULL OR o.leased_until <= $1) \
                     AND NOT EXISTS (SELECT 1 FROM identity_outbox e \
                                     WHERE e.user_id = o.user_id AND e.id < o.id) \
                   ORDER BY o.id LIMIT $3 \
                   FOR UPDATE SKIP LOCKED) \
                 RETURNING id, user_id, change, attempts",
            )
            .bind(now)
            .bind(lease_until)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        }
    };
    let mut claimed = Vec::with_capacity(rows.len());
    for (id, user_id, change, attempts) in rows {
        match IdentityChange::parse(&change) {
            Some(change) => claimed.push(ClaimedChange {
                id,
                user_id,
                change,
                attempts: u32::try_from(attempts).unwrap_or(0),
            }),
            // Written by a newer version; leave it leased to no one useful rather than guess.
            None => tracing::warn!(id, change, "an identity-outbox row of an unknown kind"),
        }
    }
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

pub(super) async fn complete(pool: &Pool, id: i64) -> Result<(), StoreError> {
    let sql = "DELETE FROM identity_outbox WHERE id = $1";
    db_run!(pool, p => sqlx::query(sql).bind(id).execute(p).await.map(drop))?;
    Ok(())
}

pub(super) async fn retry(
    pool: &Pool,
    id: i64,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), StoreError> {
    let sql = "UPDATE identity_outbox SET attempts = attempts + 1, next_attempt_at = $2, \
               leased_until = NULL, last_error = $3 WHERE id = $1";
    db_run!(pool, p => sqlx::query(sql)
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(p)
        .await
        .map(drop))?;
    Ok(())
}

pub(super) async fn backlog(pool: &Pool) -> Result<OutboxBacklog, StoreError> {
    let sql = "SELECT COUNT(*) AS pending, \
               COUNT(CASE WHEN attempts > 0 THEN 1 END) AS failing, \
               MIN(created_at) AS oldest_created_at FROM identity_outbox";
    Ok(db_run!(pool, p => sqlx::query_as(sql).fetch_one(p).await)?)
}
