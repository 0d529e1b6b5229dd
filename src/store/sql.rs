//! The one [`Store`] implementation, over a SQLite or a PostgreSQL pool.
//!
//! Each query is written once and run by [`db_run!`] against whichever pool is open: the macro
//! expands to a two-armed `match`, so each arm is compiled for its own database type and sqlx
//! checks binds and decodes per dialect. That keeps one code path without `sqlx::Any`, whose
//! type and placeholder gaps bite (sqlx #3000, #3014, #3521). All SQL here is the subset both
//! dialects share: `$N` placeholders, `ON CONFLICT … DO`, `RETURNING`.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{PgPool, SqlitePool};

use held::Held;

use super::{
    ADMIN_TOKEN_USE_GRANULARITY, AccountUpdate, AdminToken, AuditEvent, Backend, ClaimedChange,
    IdentityChange, ImportOutcome, ImportedUser, Login, NewAccountToken, NewAuditEvent, NewSession,
    NewUser, NonceClaim, NonceRecord, OutboxBacklog, PoolUse, SessionOwner, SignupClaim, Store,
    StoreError, ThrottlePurge, ThrottleQuery, ThrottleState, TokenPurpose, User,
};
use crate::config::DatabaseUrl;
use crate::domain::{Email, Profile};

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to `$pool`'s connection pool, whichever dialect it is.
macro_rules! db_run {
    ($pool:expr, $p:ident => $body:expr) => {
        match &$pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

mod email_keys;
mod held;
mod identity_outbox;
mod throttle;

use identity_outbox::ENQUEUE as ENQUEUE_IDENTITY_CHANGE;

/// Reads go to `reader`, writes to `writer`. On PostgreSQL both are the same pool. On SQLite,
/// which allows one writer at a time, `writer` has a single connection: concurrent writes then
/// queue for it inside the pool instead of colliding on the database lock, where the losers
/// would sleep in SQLite's busy handler (measured: that halved token issuance, DEVELOPERS.md).
#[derive(Clone)]
pub struct SqlStore {
    reader: Pool,
    writer: Pool,
    /// SQLite's background checkpoints (`sqlite.rs`), closed with the others.
    checkpointer: Option<SqlitePool>,
    /// The reader connection kept between batches of session lookups.
    session_reads: Arc<Held>,
    /// The connection kept between nonce-ledger writes, on PostgreSQL only: SQLite's writer
    /// pool has one connection, which every other write needs between batches.
    nonce_writes: Arc<Held>,
    /// Changes to users write identity-outbox rows (identity sync is on).
    identity_outbox: bool,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .finish()
    }
}

impl SqlStore {
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        if url.is_postgres() {
            let pool = Pool::Postgres(super::postgres::connect(url).await?);
            Ok(Self {
                reader: pool.clone(),
                writer: pool,
                checkpointer: None,
                session_reads: Arc::new(Held::keeping()),
                nonce_writes: Arc::new(Held::keeping()),
                identity_outbox: false,
            })
        } else {
            let (reader, writer, checkpointer) = super::sqlite::connect(url).await?;
            Ok(Self {
                reader: Pool::Sqlite(reader),
                writer: Pool::Sqlite(writer),
                checkpointer,
                session_reads: Arc::new(Held::keeping()),
                nonce_writes: Arc::new(Held::passing_through()),
                identity_outbox: false,
            })
        }
    }

    /// Turns the writing of identity-outbox rows on or off (see `store::connect`).
    pub fn with_identity_outbox(mut self, on: bool) -> Self {
        self.identity_outbox = on;
        self
    }

    /// The outbox row to write with a change, if the outbox is on.
    fn outbox(&self, change: IdentityChange) -> Option<&'static str> {
        self.identity_outbox.then_some(change.as_str())
    }
}

/// Column list shared by every `SELECT` and `RETURNING` of a user. A macro, not a `const`, so
/// `concat!` keeps each query a `&'static str` (sqlx refuses SQL assembled at run time).
macro_rules! user_columns {
    () => {
        "id, email, display_name, first_name, last_name, avatar_url, disabled_at, created_at, \
         updated_at, email_verified_at"
    };
}

mod account_tokens;

fn profile_columns(profile: &Profile) -> [Option<&str>; 4] {
    [
        profile.display_name.as_ref().map(|v| v.as_str()),
        profile.first_name.as_ref().map(|v| v.as_str()),
        profile.last_name.as_ref().map(|v| v.as_str()),
        profile.avatar_url.as_ref().map(|v| v.as_str()),
    ]
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        match self.writer {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    fn pool_use(&self) -> Vec<PoolUse> {
        let of = |name, pool: &Pool| {
            db_run!(pool, p => PoolUse {
                name,
                size: p.size(),
                idle: p.num_idle(),
                max: p.options().get_max_connections(),
            })
        };
        match &self.writer {
            Pool::Postgres(_) => vec![of("shared", &self.writer)],
            Pool::Sqlite(_) => vec![of("read", &self.reader), of("write", &self.writer)],
        }
    }

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<(), StoreError> {
        match &self.writer {
            Pool::Sqlite(pool) => super::sqlite::MIGRATOR.run(pool).await,
            Pool::Postgres(pool) => super::postgres::MIGRATOR.run(pool).await,
        }
        .map_err(StoreError::Migration)?;
        // The one migration SQL cannot do: keys computed in Rust by an earlier rule.
        let rekeyed = email_keys::rekey(&self.writer).await?;
        if rekeyed.rewritten > 0 {
            tracing::info!(
                users = rekeyed.rewritten,
                "recomputed e-mail keys stored under an earlier comparison rule"
            );
        }
        Ok(())
    }

    async fn close(&self) {
        // A pool closes once every connection is back, kept ones too.
        self.session_reads.release();
        self.nonce_writes.release();
        db_run!(self.reader, pool => pool.close().await);
        db_run!(self.writer, pool => pool.close().await);
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close().await;
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        db_run!(self.reader, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn create_user(&self, user: NewUser<'_>) -> Result<Option<User>, StoreError> {
        // The ID of a deleted account counts as taken.
        let sql = concat!(
            "INSERT INTO users (id, email, email_key, password_hash, display_name, first_name, \
             last_name, avatar_url, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9 \
             WHERE NOT EXISTS (SELECT 1 FROM deleted_user_ids WHERE id = $1) \
             ON CONFLICT (id) DO NOTHING RETURNING ",
            user_columns!()
        );
        let [display_name, first_name, last_name, avatar_url] = profile_columns(user.profile);
        let outbox = self.outbox(IdentityChange::Identity);
        Ok(db_run!(self.writer, pool => {
            let mut tx = pool.begin().await?;
            let created: Option<User> = sqlx::query_as(sql)
                .bind(user.id.as_str())
                .bind(user.email.as_str())
                .bind(user.email.key())
                .bind(user.password_hash)
                .bind(display_name)
                .bind(first_name)
                .bind(last_name)
                .bind(avatar_url)
                .bind(user.now)
                .fetch_optional(&mut *tx)
                .await?;
            if let (Some(_), Some(change)) = (&created, outbox) {
                sqlx::query(ENQUEUE_IDENTITY_CHANGE)
                    .bind(user.id.as_str())
                    .bind(change)
                    .bind(user.now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            created
        }))
    }

    #[tracing::instrument(skip_all, fields(users = users.len()))]
    async fn import_users(
        &self,
        users: &[ImportedUser<'_>],
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let insert = "INSERT INTO users (id, email, email_key, password_hash, display_name, \
                      first_name, last_name, avatar_url, email_verified_at, created_at, \
                      updated_at) \
                      SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10 \
                      WHERE NOT EXISTS (SELECT 1 FROM deleted_user_ids WHERE id = $1) \
                      ON CONFLICT DO NOTHING";
        let holders = "SELECT id, email_key FROM users WHERE id = $1 OR email_key = $2";
        db_run!(self.writer, pool => {
            let mut tx = pool.begin().await?;
            let mut outcomes = Vec::with_capacity(users.len());
            for user in users {
                let [display_name, first_name, last_name, avatar_url] =
                    profile_columns(user.profile);
                let inserted = sqlx::query(insert)
                    .bind(user.id.as_str())
                    .bind(user.email.as_str())
                    .bind(user.email.key())
                    .bind(user.password_hash)
                    .bind(display_name)
                    .bind(first_name)
                    .bind(last_name)
                    .bind(avatar_url)
                    .bind(user.email_verified.then_some(user.now))
                    .bind(user.now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 1 {
                    if let Some(change) = self.outbox(IdentityChange::Identity) {
                        sqlx::query(ENQUEUE_IDENTITY_CHANGE)
                            .bind(user.id.as_str())
                            .bind(change)
                            .bind(user.now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    outcomes.push(ImportOutcome::Created);
                    continue;
                }
                let rows: Vec<(String, String)> = sqlx::query_as(holders)
                    .bind(user.id.as_str())
                    .bind(user.email.key())
                    .fetch_all(&mut *tx)
                    .await?;
                let same_id = rows.iter().find(|(id, _)| id == user.id.as_str());
                outcomes.push(match same_id {
                    Some((_, key)) if key == user.email.key() => ImportOutcome::Skipped,
                    Some(_) => ImportOutcome::Refused("the ID belongs to a user with another e-mail"),
                    None if !rows.is_empty() => {
                        ImportOutcome::Refused("the e-mail belongs to a user with another ID")
                    }
                    None => ImportOutcome::Refused("the ID belonged to a deleted account"),
                });
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }

    #[tracing::instrument(skip_all)]
    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        Ok(db_run!(self.reader, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    #[tracing::instrument(skip_all)]
    async fn find_login(&self, email: &Email) -> Result<Option<Login>, StoreError> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash FROM users WHERE email_key = $1"
        );
        Ok(db_run!(self.reader, pool => sqlx::query_as(sql)
            .bind(email.key())
            .fetch_optional(pool)
            .await)?)
    }

    #[tracing::instrument(skip_all)]
    async fn find_login_by_id(&self, id: &str) -> Result<Option<Login>, StoreError> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash FROM users WHERE id = $1"
        );
        Ok(db_run!(self.reader, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    #[tracing::instrument(skip_all)]
    async fn update_account(&self, update: AccountUpdate<'_>) -> Result<Option<User>, StoreError> {
        let profile_sql = concat!(
            "UPDATE users SET email = $2, email_key = $3, display_name = $4, first_name = $5, \
             last_name = $6, avatar_url = $7, updated_at = $8, \
             email_verified_at = CASE WHEN email_key = $3 THEN email_verified_at ELSE NULL END \
             WHERE id = $1 RETURNING ",
            user_columns!()
        );
        let password_sql = "UPDATE users SET password_hash = $2 WHERE id = $1";
        let sessions_sql = "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2";
        // A password change invalidates a pending reset.
        let resets_sql = "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2";
        let verified_sql = "UPDATE users SET email_verified_at = $2 WHERE id = $1";
        let [display_name, first_name, last_name, avatar_url] = profile_columns(update.profile);
        Ok(db_run!(self.writer, pool => {
            let mut tx = pool.begin().await?;
            let user: Option<User> = sqlx::query_as(profile_sql)
                .bind(update.id)
                .bind(update.email.as_str())
                .bind(update.email.key())
                .bind(display_name)
                .bind(first_name)
                .bind(last_name)
                .bind(avatar_url)
                .bind(update.now)
                .fetch_optional(&mut *tx)
                .await?;
            if let (Some(_), Some(hash)) = (&user, update.password_hash) {
                sqlx::query(password_sql).bind(update.id).bind(hash).execute(&mut *tx).await?;
                sqlx::query(sessions_sql)
                    .bind(update.id)
                    .bind(update.keep_session)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(resets_sql)
                    .bind(update.id)
                    .bind(TokenPurpose::PasswordReset.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let (Some(_), Some(verified)) = (&user, update.email_verified) {
                sqlx::query(verified_sql).bind(update.id).bind(verified).execute(&mut *tx).await?;
            }
            if let (Some(_), Some(change)) = (&user, self.outbox(IdentityChange::Identity)) {
                sqlx::query(ENQUEUE_IDENTITY_CHANGE)
                    .bind(update.id)
                    .bind(change)
                    .bind(update.now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            user
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> Result<(), StoreError> {
        let sql = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
        db_run!(self.writer, pool => sqlx::query(sql).bind(id).bind(hash).bind(now).execute(pool).await.map(drop))?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>, StoreError> {
        // `$1 IS NULL` needs a typed NULL on PostgreSQL; an empty string sorts before every ID
        // and is never one (IDs are non-empty), so it stands for "from the start".
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id > $1 ORDER BY id LIMIT $2"
        );
        let after = after.unwrap_or("");
        Ok(db_run!(self.reader, pool => sqlx::query_as(sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    async fn count_users(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM users";
        Ok(db_run!(self.reader, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
    }

    #[tracing::instrument(skip_all)]
    async fn set_disabled(
        &self,
        id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let sql = concat!(
            "UPDATE users SET disabled_at = $2, updated_at = $3 WHERE id = $1 RETURNING ",
            user_columns!()
        );
        let sessions = "DELETE FROM sessions WHERE user_id = $1";
        Ok(db_run!(self.writer, pool => {
            let mut tx = pool.begin().await?;
            let user: Option<User> = sqlx::query_as(sql)
                .bind(id)
                .bind(disabled.then_some(now))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if user.is_some() && disabled {
                sqlx::query(sessions).bind(id).execute(&mut *tx).await?;
            }
            let change = if disabled { IdentityChange::Suspend } else { IdentityChange::Unsuspend };
            if let (Some(_), Some(change)) = (&user, self.outbox(change)) {
                sqlx::query(ENQUEUE_IDENTITY_CHANGE)
                    .bind(id)
                    .bind(change)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            user
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        // Sessions go with the user (ON DELETE CASCADE); the ID stays taken.
        let sql = "DELETE FROM users WHERE id = $1";
        let tombstone = "INSERT INTO deleted_user_ids (id, deleted_at) VALUES ($1, $2) \
                         ON CONFLICT (id) DO NOTHING";
        let now = crate::clock::unix_now();
        db_run!(self.writer, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql).bind(id).execute(&mut *tx).await?.rows_affected();
            if done > 0 {
                sqlx::query(tombstone).bind(id).bind(now).execute(&mut *tx).await?;
                if let Some(change) = self.outbox(IdentityChange::Delete) {
                    sqlx::query(ENQUEUE_IDENTITY_CHANGE)
                        .bind(id)
                        .bind(change)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(done > 0)
        })
    }

    #[tracing::instrument(skip_all, fields(user_id = %session.user_id))]
    async fn create_session(&self, session: NewSession<'_>) -> Result<(), StoreError> {
        let sql = "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4)";
        // The login that made the session is recorded in the same transaction: one commit.
        let login = throttle::UPSERT_ONE_SUCCESS;
        db_run!(self.writer, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql)
                .bind(session.token_hash)
                .bind(session.user_id)
                .bind(session.now)
                .bind(session.expires_at)
                .execute(&mut *tx)
                .await?;
            if let Some(success) = session.login {
                sqlx::query(login)
                    .bind(success.email_key)
                    .bind(success.client)
                    .bind(success.at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(sessions = token_hashes.len()))]
    async fn find_session_users(
        &self,
        token_hashes: &[&[u8]],
        now: i64,
    ) -> Result<Vec<SessionOwner>, StoreError> {
        let mut distinct: Vec<&[u8]> = token_hashes.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        Ok(db_run!(self.reader, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT s.token_hash, s.expires_at, u.id, u.email, u.display_name, u.first_name, \
                 u.last_name, u.avatar_url, u.disabled_at, u.created_at, u.updated_at, \
                 u.email_verified_at \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE u.disabled_at IS NULL AND s.expires_at > ",
            );
            query.push_bind(now).push(" AND s.token_hash IN (");
            let mut hashes = query.separated(", ");
            for hash in &distinct {
                hashes.push_bind(*hash);
            }
            hashes.push_unseparated(")");
            let mut lease = self.session_reads.lease(pool).await?;
            let owners = query.build_query_as().fetch_all(&mut *lease.conn).await?;
            self.session_reads.keep(lease);
            owners
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_session(&self, token_hash: &[u8]) -> Result<bool, StoreError> {
        let sql = "DELETE FROM sessions WHERE token_hash = $1";
        let done = db_run!(self.writer, pool => sqlx::query(sql).bind(token_hash).execute(pool).await?.rows_affected());
        Ok(done > 0)
    }

    #[tracing::instrument(skip_all, fields(claims = claims.len()))]
    async fn record_signed_nonces(
        &self,
        claims: &[NonceClaim<'_>],
    ) -> Result<Vec<NonceRecord>, StoreError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        // One multi-row INSERT: one statement, one commit for the whole batch. `RETURNING`
        // names the nonces that were new; the others were signed before.
        let holder = "SELECT user_id FROM signed_nonces WHERE nonce_hash = $1";
        // The password logins these tokens answer, in the same transaction: one commit.
        let logins = throttle::distinct_successes(claims.iter().filter_map(|c| c.login));
        let (inserted, mut holders) = db_run!(self.writer, pool => {
            let mut lease = self.nonce_writes.lease(pool).await?;
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO signed_nonces (nonce_hash, user_id, expires_at) ",
            );
            insert.push_values(claims, |mut row, claim| {
                row.push_bind(claim.nonce_hash)
                    .push_bind(claim.user_id)
                    .push_bind(claim.expires_at);
            });
            insert.push(" ON CONFLICT (nonce_hash) DO NOTHING RETURNING nonce_hash");
            let inserted: Vec<Vec<u8>> = if logins.is_empty() {
                // One statement commits on its own: no BEGIN and COMMIT, each of which was a
                // round trip to the connection's thread (SQLite) or the server.
                insert.build_query_scalar().fetch_all(&mut *lease.conn).await?
            } else {
                let mut tx = sqlx::Connection::begin(&mut *lease.conn).await?;
                let inserted = insert.build_query_scalar().fetch_all(&mut *tx).await?;
                let mut upsert = sqlx::QueryBuilder::new(throttle::UPSERT_SUCCESSES);
                upsert.push_values(&logins, |mut row, login| {
                    row.push_bind(login.email_key)
                        .push_bind(login.client)
                        .push_bind(login.at);
                });
                upsert.push(throttle::ON_SUCCESS_CONFLICT);
                upsert.build().execute(&mut *tx).await?;
                tx.commit().await?;
                inserted
            };
            // Who signed the refused nonces, read after the commit: a recorded nonce's holder
            // never changes (a purged one reads as unknown).
            let mut holders = Vec::new();
            if inserted.len() < claims.len() {
                for claim in claims {
                    if !inserted.iter().any(|hash| hash == claim.nonce_hash) {
                        let user: Option<String> = sqlx::query_scalar(holder)
                            .bind(claim.nonce_hash)
                            .fetch_optional(&mut *lease.conn)
                            .await?;
                        holders.push((claim.nonce_hash.to_vec(), user.unwrap_or_default()));
                    }
                }
            }
            self.nonce_writes.keep(lease);
            (inserted, holders)
        });
        let mut fresh: Vec<&[u8]> = inserted.iter().map(Vec::as_slice).collect();
        Ok(claims
            .iter()
            .map(|claim| {
                if let Some(i) = fresh.iter().position(|hash| *hash == claim.nonce_hash) {
                    // The first claim of a nonce inserted in this batch gets it.
                    fresh.swap_remove(i);
                    holders.push((claim.nonce_hash.to_vec(), claim.user_id.to_owned()));
                    NonceRecord::Fresh
                } else {
                    let user_id = holders
                        .iter()
                        .find(|(hash, _)| hash == claim.nonce_hash)
                        .map(|(_, user)| user.clone())
                        .unwrap_or_default();
                    NonceRecord::AlreadySigned { user_id }
                }
            })
            .collect())
    }

    #[tracing::instrument(skip_all)]
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let sessions = "DELETE FROM sessions WHERE expires_at <= $1";
        let nonces = "DELETE FROM signed_nonces WHERE expires_at <= $1";
        let tokens = "DELETE FROM account_tokens WHERE expires_at <= $1";
        Ok(db_run!(self.writer, pool => {
            let a = sqlx::query(sessions).bind(now).execute(pool).await?.rows_affected();
            let b = sqlx::query(nonces).bind(now).execute(pool).await?.rows_affected();
            let c = sqlx::query(tokens).bind(now).execute(pool).await?.rows_affected();
            a + b + c
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn login_throttle_state(
        &self,
        query: ThrottleQuery<'_>,
    ) -> Result<ThrottleState, StoreError> {
        // A read sees every commit made before it (WAL on SQLite), and the caller holds the
        // account's lock until the previous attempt's failure is committed.
        throttle::state(&self.reader, query).await
    }

    #[tracing::instrument(skip_all)]
    async fn record_login_failure(
        &self,
        email_key: &str,
        client: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        throttle::record_failure(&self.writer, email_key, client, at).await
    }

    #[tracing::instrument(skip_all)]
    async fn clear_login_failures(&self, email_key: &str, client: &str) -> Result<u64, StoreError> {
        throttle::clear_failures(&self.writer, email_key, client).await
    }

    #[tracing::instrument(skip_all)]
    async fn claim_signup(
        &self,
        client: &str,
        now: i64,
        since: i64,
        limit: u32,
    ) -> Result<SignupClaim, StoreError> {
        throttle::claim_signup(&self.writer, client, now, since, limit).await
    }

    #[tracing::instrument(skip_all)]
    async fn record_audit_event(&self, event: NewAuditEvent<'_>) -> Result<(), StoreError> {
        let sql = "INSERT INTO audit_events (at, kind, actor, subject, client, outcome) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        db_run!(self.writer, pool => sqlx::query(sql)
            .bind(event.at)
            .bind(event.kind)
            .bind(event.actor)
            .bind(event.subject)
            .bind(event.client)
            .bind(event.outcome)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit_events(
        &self,
        after: i64,
        limit: u32,
        subject: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        // An empty subject stands for "any" (IDs are never empty), avoiding a typed NULL.
        let sql = "SELECT id, at, kind, actor, subject, client, outcome FROM audit_events \
                   WHERE id > $1 AND ($2 = '' OR subject = $2) ORDER BY id LIMIT $3";
        Ok(db_run!(self.reader, pool => sqlx::query_as(sql)
            .bind(after)
            .bind(subject.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    #[tracing::instrument(skip_all)]
    async fn purge_audit_events(&self, before: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM audit_events WHERE at < $1";
        Ok(
            db_run!(self.writer, pool => sqlx::query(sql).bind(before).execute(pool).await?.rows_affected()),
        )
    }

    #[tracing::instrument(skip_all)]
    async fn purge_throttle_records(&self, purge: ThrottlePurge) -> Result<u64, StoreError> {
        throttle::purge(&self.writer, purge).await
    }

    #[tracing::instrument(skip_all, fields(name = %name))]
    async fn create_admin_token(
        &self,
        name: &str,
        token_hash: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO admin_tokens (token_hash, name, created_at) VALUES ($1, $2, $3)";
        db_run!(self.writer, pool => sqlx::query(sql)
            .bind(token_hash)
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// A read, so an unknown token — anyone can send one — takes no write lock (on SQLite the
    /// single write connection every login queues for). `last_used_at` is rewritten only when
    /// it is [`ADMIN_TOKEN_USE_GRANULARITY`] old: it answers "is this token still in use?",
    /// which needs no finer grain, and a script calling the admin API in a loop would
    /// otherwise make a write per call.
    #[tracing::instrument(skip_all)]
    async fn use_admin_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<AdminToken>, StoreError> {
        let sql = "SELECT name, created_at, last_used_at FROM admin_tokens WHERE token_hash = $1";
        let found: Option<AdminToken> = db_run!(self.reader, pool => sqlx::query_as(sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?;
        let Some(mut token) = found else {
            return Ok(None);
        };
        let stale_before = now.saturating_sub(ADMIN_TOKEN_USE_GRANULARITY);
        if token.last_used_at.is_none_or(|at| at <= stale_before) {
            // The condition is repeated so that concurrent uses write once.
            let sql = "UPDATE admin_tokens SET last_used_at = $2 WHERE token_hash = $1 \
                       AND (last_used_at IS NULL OR last_used_at <= $3)";
            db_run!(self.writer, pool => sqlx::query(sql)
                .bind(token_hash)
                .bind(now)
                .bind(stale_before)
                .execute(pool)
                .await
                .map(drop))?;
            token.last_used_at = Some(now);
        }
        Ok(Some(token))
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        let sql = "SELECT name, created_at, last_used_at FROM admin_tokens ORDER BY name";
        Ok(db_run!(self.reader, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    #[tracing::instrument(skip_all, fields(name = %name))]
    async fn revoke_admin_token(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM admin_tokens WHERE name = $1";
        let done = db_run!(self.writer, pool => sqlx::query(sql).bind(name).execute(pool).await?.rows_affected());
        Ok(done > 0)
    }

    async fn replace_account_token(&self, token: NewAccountToken<'_>) -> Result<(), StoreError> {
        account_tokens::replace(&self.writer, token).await
    }

    async fn consume_account_token(
        &self,
        token_hash: &[u8],
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        account_tokens::consume(&self.writer, token_hash, purpose, now).await
    }

    async fn account_token_is_live(
        &self,
        token_hash: &[u8],
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<bool, StoreError> {
        account_tokens::is_live(&self.reader, token_hash, purpose, now).await
    }

    async fn mark_email_verified(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        account_tokens::mark_verified(&self.writer, user_id, now).await
    }

    async fn reset_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        account_tokens::reset_password(&self.writer, user_id, password_hash, now).await
    }

    fn identity_outbox_enabled(&self) -> bool {
        self.identity_outbox
    }

    async fn claim_identity_changes(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedChange>, StoreError> {
        if !identity_outbox::any_due(&self.reader, now).await? {
            return Ok(Vec::new());
        }
        identity_outbox::claim(&self.writer, now, lease_until, limit).await
    }

    async fn complete_identity_change(&self, id: i64) -> Result<(), StoreError> {
        identity_outbox::complete(&self.writer, id).await
    }

    async fn retry_identity_change(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        identity_outbox::retry(&self.writer, id, next_attempt_at, error).await
    }

    async fn identity_outbox_backlog(&self) -> Result<OutboxBacklog, StoreError> {
        identity_outbox::backlog(&self.reader).await
    }
}
