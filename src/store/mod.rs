//! Persistence for the identity provider: one [`Store`] trait, one implementation per database.
//!
//! SQLite (the embedded default) and PostgreSQL (production) run the same use cases through
//! one implementation, [`SqlStore`], holding either pool. Every query is written once, with
//! `$N` placeholders both dialects accept; `sql.rs` runs it against whichever pool is open.
//! What genuinely differs — connection options, migrations — lives in `sqlite.rs` and
//! `postgres.rs`; a query that had to differ would be a visible two-armed `match` in `sql.rs`,
//! never a branch in a handler. Migrations are embedded per dialect under the same versions.
//! sqlx errors are classified once, here, by kind — never by constraint name, which SQLite does
//! not report.
//!
//! The store speaks records and parsed domain values; it knows nothing of HTTP or tokens. Times
//! are Unix seconds, made by the caller, so tests and both databases agree on them.

mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use sql::SqlStore;

use crate::config::DatabaseUrl;
use crate::domain::{Email, Profile, UserId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (an e-mail or ID already taken, a token already stored).
    #[error("a record with the same unique value already exists")]
    Conflict,
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(e),
        }
    }
}

/// A user as stored. Fields were validated on the way in.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the current address was verified; `None` until then.
    pub email_verified_at: Option<i64>,
}

impl User {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }

    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

/// A session and the enabled user owning it ([`Store::find_session_users`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionOwner {
    pub token_hash: Vec<u8>,
    pub expires_at: i64,
    #[sqlx(flatten)]
    pub user: User,
}

/// What a login needs: the user and the stored password hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Login {
    #[sqlx(flatten)]
    pub user: User,
    pub password_hash: String,
}

#[derive(Debug)]
pub struct NewUser<'a> {
    pub id: &'a UserId,
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub profile: &'a Profile,
    pub now: i64,
}

/// A user brought from another system, with the hash it had there.
#[derive(Debug)]
pub struct ImportedUser<'a> {
    pub id: &'a UserId,
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub profile: &'a Profile,
    pub email_verified: bool,
    pub now: i64,
}

/// What became of one imported user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Created,
    /// Already there, with the same ID and e-mail (a re-run).
    Skipped,
    Refused(&'static str),
}

#[derive(Debug)]
pub struct AccountUpdate<'a> {
    pub id: &'a str,
    pub email: &'a Email,
    pub profile: &'a Profile,
    pub password_hash: Option<&'a str>,
    /// The session making the change, kept when the password changes (empty: none kept).
    pub keep_session: &'a [u8],
    /// Marks the e-mail verified (`Some(Some(time))`) or not (`Some(None)`); `None` leaves it.
    pub email_verified: Option<Option<i64>>,
    pub now: i64,
}

#[derive(Debug)]
pub struct NewSession<'a> {
    pub token_hash: &'a [u8],
    pub user_id: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// The password login that made the session, recorded in the same transaction.
    pub login: Option<LoginSuccess<'a>>,
}

/// A nonce about to be signed: its SHA-256, for whom, and until when Layer would accept it.
#[derive(Debug, Clone, Copy)]
pub struct NonceClaim<'a> {
    pub nonce_hash: &'a [u8],
    pub user_id: &'a str,
    pub expires_at: i64,
    /// The password login this token answers (`POST /authenticate`), recorded in the same
    /// batch; `None` for a token asked for with a session.
    pub login: Option<LoginSuccess<'a>>,
}

/// A successful password login: the account (by the case-folded e-mail that was typed), the
/// client's address key, and when. Recorded only inside writes a login already makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginSuccess<'a> {
    pub email_key: &'a str,
    pub client: &'a str,
    pub at: i64,
}

/// What the throttling rules ask about one login attempt: failures after the `*_since` times
/// count; a success after `successes_since` exempts the client from the shared ceilings.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleQuery<'a> {
    pub email_key: &'a str,
    pub client: &'a str,
    pub failures_since: i64,
    pub client_failures_since: i64,
    pub successes_since: i64,
}

/// The counters behind one login attempt, read in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ThrottleState {
    /// Failures of this account from this client…
    pub pair_failures: i64,
    pub pair_last_failure: Option<i64>,
    /// …of this account from every client…
    pub account_failures: i64,
    pub account_oldest_failure: Option<i64>,
    /// …and of every account from this client.
    pub client_failures: i64,
    pub client_oldest_failure: Option<i64>,
    /// This client logged in to this account successfully within the session lifetime.
    pub recent_success: bool,
    /// The account's ID, for the security log, when the e-mail has one.
    pub user_id: Option<String>,
}

/// The answer to a sign-up asking for a place in its address's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupClaim {
    Admitted,
    /// Over budget; the oldest sign-up still counted happened at `oldest`.
    Refused {
        oldest: i64,
    },
}

/// Login-throttling records older than these times are deleted.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePurge {
    pub failures_before: i64,
    pub successes_before: i64,
    pub signups_before: i64,
}

/// The outcome of recording that a nonce is about to be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceRecord {
    /// First time: go ahead and sign.
    Fresh,
    /// Already signed (for this or another user) and still within its lifetime.
    AlreadySigned { user_id: String },
}

/// What an e-mailed single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    PasswordReset,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
        }
    }
}

/// An e-mailed token about to be stored: only its SHA-256.
#[derive(Debug, Clone, Copy)]
pub struct NewAccountToken<'a> {
    pub token_hash: &'a [u8],
    pub user_id: &'a str,
    pub purpose: TokenPurpose,
    pub now: i64,
    pub expires_at: i64,
}

/// A recorded security event (see `idp::audit`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub actor: String,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub outcome: String,
}

#[derive(Debug, Clone, Copy)]
pub struct NewAuditEvent<'a> {
    pub at: i64,
    pub kind: &'a str,
    pub actor: &'a str,
    pub subject: Option<&'a str>,
    pub client: Option<&'a str>,
    pub outcome: &'a str,
}

/// How stale an admin token's `last_used_at` may get before a use rewrites it, in seconds.
pub const ADMIN_TOKEN_USE_GRANULARITY: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminToken {
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A change to a user that Layer must hear about (identity sync, `idp::sync`). Written to
/// the outbox in the transaction that makes the change, when the store's outbox is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityChange {
    /// Created or changed: send the user's profile as it is when the row is sent.
    Identity,
    Suspend,
    Unsuspend,
    Delete,
}

impl IdentityChange {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityChange::Identity => "identity",
            IdentityChange::Suspend => "suspend",
            IdentityChange::Unsuspend => "unsuspend",
            IdentityChange::Delete => "delete",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Identity, Self::Suspend, Self::Unsuspend, Self::Delete]
            .into_iter()
            .find(|c| c.as_str() == raw)
    }
}

/// An outbox row a worker has claimed: it is leased to that worker until it is completed,
/// retried, or the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedChange {
    pub id: i64,
    pub user_id: String,
    pub change: IdentityChange,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// How much is waiting in the identity outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxBacklog {
    pub pending: i64,
    /// Rows that have failed at least once.
    pub failing: i64,
    pub oldest_created_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One connection pool's use right now (for the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// `read` and `write` on SQLite; `shared` on PostgreSQL, which has one pool.
    pub name: &'static str,
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: usize,
    /// The most connections the pool opens.
    pub max: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Each connection pool's use; cheap and never waits (read at each metrics scrape).
    fn pool_use(&self) -> Vec<PoolUse>;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes every connection; later calls fail.
    async fn close(&self);

    /// Fails with [`StoreError::Conflict`] when the e-mail is taken; returns `Ok(None)` when
    /// the ID is.
    async fn create_user(&self, user: NewUser<'_>) -> Result<Option<User>, StoreError>;

    /// Creates the users that are new, in one transaction, with their hashes as given. One
    /// outcome per user, in order: a user already there with the same ID and e-mail is
    /// skipped; an ID or e-mail held by someone else, or a deleted account's ID, is refused.
    async fn import_users(
        &self,
        users: &[ImportedUser<'_>],
    ) -> Result<Vec<ImportOutcome>, StoreError>;

    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError>;

    async fn find_login(&self, email: &Email) -> Result<Option<Login>, StoreError>;

    async fn find_login_by_id(&self, id: &str) -> Result<Option<Login>, StoreError>;

    /// Replaces the e-mail and profile and, with a new password hash, the password — ending
    /// every other session of the account — all in one transaction, so a failure changes
    /// nothing. [`StoreError::Conflict`] when the e-mail is taken.
    async fn update_account(&self, update: AccountUpdate<'_>) -> Result<Option<User>, StoreError>;

    async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> Result<(), StoreError>;

    /// Users ordered by ID, after `after` (exclusive), at most `limit`.
    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>, StoreError>;

    async fn count_users(&self) -> Result<i64, StoreError>;

    /// Disables or re-enables an account; disabling ends its sessions. Returns the updated
    /// user, or `None` if there is no such user.
    async fn set_disabled(
        &self,
        id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<Option<User>, StoreError>;

    /// Deletes the user and their sessions, and keeps the ID as taken for ever. Returns
    /// whether there was such a user.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;

    async fn create_session(&self, session: NewSession<'_>) -> Result<(), StoreError>;

    /// The enabled user owning an unexpired session: one lookup of
    /// [`Self::find_session_users`], the query every request's session goes through.
    async fn find_session_user(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let owners = self.find_session_users(&[token_hash], now).await?;
        Ok(owners.into_iter().next().map(|owner| owner.user))
    }

    /// The enabled users owning those of `token_hashes` unexpired at `now`, each with its
    /// session, in no particular order, in one query. A hash that appears twice is looked up
    /// once.
    async fn find_session_users(
        &self,
        token_hashes: &[&[u8]],
        now: i64,
    ) -> Result<Vec<SessionOwner>, StoreError>;

    async fn delete_session(&self, token_hash: &[u8]) -> Result<bool, StoreError>;

    /// Records nonces about to be signed, in one statement; a nonce recorded before (and not
    /// yet purged) is refused. Returns one record per claim, in order; of two claims of the
    /// same nonce in one call, the first wins.
    async fn record_signed_nonces(
        &self,
        claims: &[NonceClaim<'_>],
    ) -> Result<Vec<NonceRecord>, StoreError>;

    /// Deletes expired sessions and nonce records. Returns how many rows went.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;

    /// Reads every counter the login-throttling rules need, in one query.
    async fn login_throttle_state(
        &self,
        query: ThrottleQuery<'_>,
    ) -> Result<ThrottleState, StoreError>;

    async fn record_login_failure(
        &self,
        email_key: &str,
        client: &str,
        at: i64,
    ) -> Result<(), StoreError>;

    /// Forgets the failures of one account from one client (after a success).
    async fn clear_login_failures(&self, email_key: &str, client: &str) -> Result<u64, StoreError>;

    /// Counts a sign-up from `client` unless `limit` sign-ups after `since` are counted
    /// already. Never admits more than `limit`, even when replicas race.
    async fn claim_signup(
        &self,
        client: &str,
        now: i64,
        since: i64,
        limit: u32,
    ) -> Result<SignupClaim, StoreError>;

    /// Deletes login-throttling records that no rule counts any more. Returns how many.
    async fn purge_throttle_records(&self, purge: ThrottlePurge) -> Result<u64, StoreError>;

    async fn record_audit_event(&self, event: NewAuditEvent<'_>) -> Result<(), StoreError>;

    /// Events after the ID `after`, oldest first, at most `limit`; only those about
    /// `subject` when given.
    async fn list_audit_events(
        &self,
        after: i64,
        limit: u32,
        subject: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Deletes events recorded before `before`. Returns how many.
    async fn purge_audit_events(&self, before: i64) -> Result<u64, StoreError>;

    async fn create_admin_token(
        &self,
        name: &str,
        token_hash: &[u8],
        now: i64,
    ) -> Result<(), StoreError>;

    /// Looks an admin token up by its hash and notes its use, to within
    /// [`ADMIN_TOKEN_USE_GRANULARITY`]. An unknown hash writes nothing.
    async fn use_admin_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<AdminToken>, StoreError>;

    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError>;

    async fn revoke_admin_token(&self, name: &str) -> Result<bool, StoreError>;

    /// Stores an e-mailed token, replacing the user's earlier one of the same purpose.
    async fn replace_account_token(&self, token: NewAccountToken<'_>) -> Result<(), StoreError>;
    /// Uses a token up: its user when it was live, `None` when unknown, used or expired.
    async fn consume_account_token(
        &self,
        token_hash: &[u8],
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<Option<String>, StoreError>;
    async fn account_token_is_live(
        &self,
        token_hash: &[u8],
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<bool, StoreError>;
    async fn mark_email_verified(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError>;
    /// Sets a new password hash, marks the address verified, ends every session and drops
    /// pending resets, in one transaction.
    async fn reset_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError>;

    /// Whether user changes write identity-outbox rows (see [`connect`]).
    fn identity_outbox_enabled(&self) -> bool;

    /// Leases up to `limit` outbox rows until `lease_until`: only rows due at `now`, not
    /// leased, and first in their user's queue, so a user's changes go out one at a time and
    /// in order. Replicas never claim the same row while its lease lasts.
    async fn claim_identity_changes(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedChange>, StoreError>;

    /// Layer has the change: the row goes.
    async fn complete_identity_change(&self, id: i64) -> Result<(), StoreError>;

    /// The attempt failed: the row is freed, counted, and due again at `next_attempt_at`.
    async fn retry_identity_change(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// What is waiting, in one cheap query.
    async fn identity_outbox_backlog(&self) -> Result<OutboxBacklog, StoreError>;
}

/// Opens the database the URL names and returns its store (migrations not yet applied).
/// With `identity_outbox`, every change to a user also writes an identity-outbox row in the
/// same transaction (identity sync is on); without it, nothing does, so a deployment without
/// sync never grows the table. The command line opens the store the same way as the server,
/// so `users update` leaves a row that the running server sends.
pub async fn connect(url: &DatabaseUrl, identity_outbox: bool) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(
        SqlStore::connect(url)
            .await?
            .with_identity_outbox(identity_outbox),
    ))
}
