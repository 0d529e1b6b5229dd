//! The login-throttling queries (`idp/throttle` owns the rules): failures, recent successes
//! and sign-ups, each counted by one indexed range read. Written once for both dialects, like
//! the rest of `sql.rs`.

use super::Pool;
use crate::store::{
    LoginSuccess, SignupClaim, StoreError, ThrottlePurge, ThrottleQuery, ThrottleState,
};

pub(super) async fn state(pool: &Pool, q: ThrottleQuery<'_>) -> Result<ThrottleState, StoreError> {
    // One round trip: every rule's counter as a scalar subquery. `$3` bounds the per-account
    // and per-pair window, `$4` the per-address one, `$5` how recent a success exempts.
    let sql = "SELECT \
        (SELECT COUNT(*) FROM login_failures WHERE email_key = $1 AND client = $2 AND at > $3) \
            AS pair_failures, \
        (SELECT MAX(at) FROM login_failures WHERE email_key = $1 AND client = $2 AND at > $3) \
            AS pair_last_failure, \
        (SELECT COUNT(*) FROM login_failures WHERE email_key = $1 AND at > $3) \
            AS account_failures, \
        (SELECT MIN(at) FROM login_failures WHERE email_key = $1 AND at > $3) \
            AS account_oldest_failure, \
        (SELECT COUNT(*) FROM login_failures WHERE client = $2 AND at > $4) \
            AS client_failures, \
        (SELECT MIN(at) FROM login_failures WHERE client = $2 AND at > $4) \
            AS client_oldest_failure, \
        EXISTS (SELECT 1 FROM login_successes WHERE email_key = $1 AND client = $2 AND at > $5) \
            AS recent_success, \
        (SELECT id FROM users WHERE email_key = $1) AS user_id";
    Ok(db_run!(pool, p => sqlx::query_as(sql)
        .bind(q.email_key)
        .bind(q.client)
        .bind(q.failures_since)
        .bind(q.client_failures_since)
        .bind(q.successes_since)
        .fetch_one(p)
        .await)?)
}

pub(super) async fn record_failure(
    pool: &Pool,
    email_key: &str,
    client: &str,
    at: i64,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO login_failures (email_key, client, at) VALUES ($1, $2, $3)";
    db_run!(pool, p => sqlx::query(sql)
        .bind(email_key)
        .bind(client)
        .bind(at)
        .execute(p)
        .await
        .map(drop))?;
    Ok(())
}

pub(super) async fn clear_failures(
    pool: &Pool,
    email_key: &str,
    client: &str,
) -> Result<u64, StoreError> {
    let sql = "DELETE FROM login_failures WHERE email_key = $1 AND client = $2";
    Ok(db_run!(pool, p => sqlx::query(sql)
        .bind(email_key)
        .bind(client)
        .execute(p)
        .await?
        .rows_affected()))
}

pub(super) async fn claim_signup(
    pool: &Pool,
    client: &str,
    now: i64,
    since: i64,
    limit: u32,
) -> Result<SignupClaim, StoreError> {
    let count = "SELECT COUNT(*), MIN(at) FROM signup_attempts WHERE client = $1 AND at > $2";
    let insert = "INSERT INTO signup_attempts (client, at) VALUES ($1, $2) RETURNING id";
    let undo = "DELETE FROM signup_attempts WHERE id = $1";
    let limit = i64::from(limit);
    // A refusal costs one read, so a flood of refused sign-ups writes nothing. An admission
    // inserts first and counts after: replicas racing may then both see themselves over the
    // limit and both give way (a client retries), but never both pass it.
    Ok(db_run!(pool, p => {
        let (counted, oldest): (i64, Option<i64>) =
            sqlx::query_as(count).bind(client).bind(since).fetch_one(p).await?;
        if counted >= limit {
            SignupClaim::Refused { oldest: oldest.unwrap_or(now) }
        } else {
            let id: i64 = sqlx::query_scalar(insert).bind(client).bind(now).fetch_one(p).await?;
            let (counted, oldest): (i64, Option<i64>) =
                sqlx::query_as(count).bind(client).bind(since).fetch_one(p).await?;
            if counted > limit {
                sqlx::query(undo).bind(id).execute(p).await?;
                SignupClaim::Refused { oldest: oldest.unwrap_or(now) }
            } else {
                SignupClaim::Admitted
            }
        }
    }))
}

pub(super) async fn purge(pool: &Pool, purge: ThrottlePurge) -> Result<u64, StoreError> {
    let failures = "DELETE FROM login_failures WHERE at <= $1";
    let successes = "DELETE FROM login_successes WHERE at <= $1";
    let signups = "DELETE FROM signup_attempts WHERE at <= $1";
    Ok(db_run!(pool, p => {
        let a = sqlx::query(failures).bind(purge.failures_before).execute(p).await?.rows_affected();
        let b = sqlx::query(successes).bind(purge.successes_before).execute(p).await?.rows_affected();
        let c = sqlx::query(signups).bind(purge.signups_before).execute(p).await?.rows_affected();
        a + b + c
    }))
}

/// The successes of one batch, one per account and client (the latest): PostgreSQL refuses an
/// `ON CONFLICT DO UPDATE` that would touch one row twice.
pub(super) fn distinct_successes<'a>(
    logins: impl Iterator<Item = LoginSuccess<'a>>,
) -> Vec<LoginSuccess<'a>> {
    let mut distinct: Vec<LoginSuccess<'a>> = Vec::new();
    for login in logins {
        match distinct
            .iter_mut()
            .find(|l| l.email_key == login.email_key && l.client == login.client)
        {
            Some(seen) => seen.at = seen.at.max(login.at),
            None => distinct.push(login),
        }
    }
    distinct
}

/// The upsert that records successes, inside the caller's transaction (push the values with
/// `push_values`).
pub(super) const UPSERT_SUCCESSES: &str = "INSERT INTO login_successes (email_key, client, at) ";
pub(super) const ON_SUCCESS_CONFLICT: &str =
    " ON CONFLICT (email_key, client) DO UPDATE SET at = excluded.at";
pub(super) const UPSERT_ONE_SUCCESS: &str = "INSERT INTO login_successes (email_key, client, at) \
     VALUES ($1, $2, $3) ON CONFLICT (email_key, client) DO UPDATE SET at = excluded.at";
