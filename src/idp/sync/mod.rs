//! Identity sync: keeps each user's Layer Identity in step with the identity provider.
//!
//! Every change to a user (sign-up, profile change, admin change, import, disable, enable,
//! delete) writes a row to the `identity_outbox` table in the same transaction as the change
//! (`store/sql.rs`), so a change that is committed is a change Layer will hear of, whatever
//! happens to the process or to Layer afterwards. A request never talks to Layer.
//!
//! [`Worker`] sends the rows: it claims a batch with a lease (`store/sql/identity_outbox.rs`:
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas take disjoint rows), sends them
//! concurrently — one row per user, since only the head of a user's queue is claimable —
//! and deletes each row Layer took, or frees it for a later attempt with a backoff that
//! doubles from 1 s up to `max_backoff_secs`, measured on the application [`Clock`].
//!
//! An `identity` row carries no profile: the worker reads the user as they are when it sends,
//! so pending profile changes coalesce into the latest state and no copy of personal data
//! waits in the outbox. This module knows nothing of the emulator; `startup.rs` hands it a
//! [`SyncTarget`] (plain data) either from the settings or from the emulator beside it.

mod platform;
mod settings;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub use settings::{IdentitySyncSettings, SyncTarget};

use crate::clock::Clock;
use crate::store::{ClaimedChange, IdentityChange, OutboxBacklog, Store, StoreError};
use platform::{Outcome, PlatformClient};

/// How often the backlog is counted and, when not empty, logged.
const BACKLOG_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// A backlog older than this is logged as a warning: Layer has been unreachable for a while.
const STALE_BACKLOG_SECS: i64 = 600;

/// The sync worker of one process. Several processes (replicas) may run one each on the same
/// database.
pub struct Worker {
    store: Arc<dyn Store>,
    clock: Clock,
    client: PlatformClient,
    settings: IdentitySyncSettings,
    status: Arc<SyncStatus>,
}

/// What the worker last counted, readable without a query (for a metrics gauge).
#[derive(Debug, Default)]
pub struct SyncStatus {
    backlog: AtomicI64,
}

impl SyncStatus {
    /// Changes waiting to reach Layer, as last counted (at start, then every minute).
    pub fn backlog(&self) -> i64 {
        self.backlog.load(Ordering::Relaxed)
    }
}

/// Counts what is waiting in the outbox: one query (`COUNT(*)`, the oldest row).
pub async fn backlog(store: &dyn Store) -> Result<OutboxBacklog, StoreError> {
    store.identity_outbox_backlog().await
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Clock,
        target: SyncTarget,
        settings: &IdentitySyncSettings,
    ) -> anyhow::Result<Self> {
        let timeout = Duration::from_secs(settings.request_timeout_secs);
        Ok(Self {
            store,
            clock,
            client: PlatformClient::new(target, timeout)?,
            settings: settings.clone(),
            status: Arc::default(),
        })
    }

    pub fn status(&self) -> Arc<SyncStatus> {
        self.status.clone()
    }

    /// How long a claimed row stays this worker's: its calls (at most two, each within the
    /// timeout) with room to spare. A worker that dies frees its rows when this runs out.
    fn lease_secs(&self) -> i64 {
        i64::try_from(self.settings.request_timeout_secs)
            .unwrap_or(300)
            .saturating_mul(3)
            .saturating_add(30)
    }

    /// Sends changes until `stop` turns true; a round under way is finished first, so a
    /// stopping process leaves no row half-sent (a row it could not finish stays leased and
    /// the next process sends it).
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let worker = Arc::new(self);
        let target = worker.client.target();
        tracing::info!(
            platform_url = %target.base_url,
            app_id = %target.app,
            "identity sync: keeping Layer identities in step"
        );
        let poll = Duration::from_millis(worker.settings.poll_interval_ms);
        let mut last_count: Option<tokio::time::Instant> = None;
        while !*stop.borrow() {
            if last_count.is_none_or(|at| at.elapsed() >= BACKLOG_LOG_INTERVAL) {
                worker.count_backlog().await;
                last_count = Some(tokio::time::Instant::now());
            }
            match worker.round().await {
                // A full batch: more may be waiting.
                Ok(n) if n >= worker.settings.batch_size as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = ?e, "identity sync: reading the outbox failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                _ = stop.wait_for(|stopping| *stopping) => {}
            }
        }
    }

    async fn count_backlog(&self) {
        match backlog(self.store.as_ref()).await {
            Ok(b) => {
                self.status.backlog.store(b.pending, Ordering::Relaxed);
                if b.pending == 0 {
                    return;
                }
                let age = b
                    .oldest_created_at
                    .map_or(0, |at| self.clock.now().saturating_sub(at).max(0));
                if age > STALE_BACKLOG_SECS {
                    tracing::warn!(
                        pending = b.pending,
                        failing = b.failing,
                        oldest_age_secs = age,
                        "identity sync backlog: Layer has not taken changes for a while"
                    );
                } else {
                    tracing::info!(
                        pending = b.pending,
                        failing = b.failing,
                        oldest_age_secs = age,
                        "identity sync backlog"
                    );
                }
            }
            Err(e) => tracing::warn!(error = ?e, "identity sync: counting the backlog failed"),
        }
    }

    /// Claims one batch and sends it; returns how many rows were claimed.
    async fn round(self: &Arc<Self>) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_identity_changes(now, now + self.lease_secs(), self.settings.batch_size)
            .await?;
        let n = claimed.len();
        if n == 0 {
            return Ok(0);
        }
        // Each claimed row is a different user's, so they may go out together.
        let mut tasks = tokio::task::JoinSet::new();
        for change in claimed {
            let worker = self.clone();
            tasks.spawn(async move { worker.deliver(change).await });
        }
        let (mut sent, mut failed) = (0usize, 0usize);
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(true) => sent += 1,
                Ok(false) => failed += 1,
                Err(e) => {
                    failed += 1;
                    tracing::error!(error = ?e, "identity sync: a delivery task failed");
                }
            }
        }
        tracing::debug!(sent, failed, "identity sync round");
        if failed > 0 {
            // Failures mean a backlog worth knowing about now, not in a minute.
            self.count_backlog().await;
        }
        Ok(n)
    }

    /// Sends one change and records what became of it. True when the row is done with.
    #[tracing::instrument(skip_all, fields(user_id = %change.user_id, change = change.change.as_str(), attempt = change.attempts + 1))]
    async fn deliver(&self, change: ClaimedChange) -> bool {
        let outcome = match self.send(&change).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Retry(format!("reading the user failed: {e}")),
        };
        let recorded = match &outcome {
            Outcome::Done => {
                tracing::debug!("identity sync: Layer has the change");
                self.store.complete_identity_change(change.id).await
            }
            Outcome::GiveUp(reason) => {
                tracing::error!(
                    reason,
                    "identity sync: Layer refused the change; it is dropped (fix the user and \
                     change them again to resend)"
                );
                self.store.complete_identity_change(change.id).await
            }
            Outcome::Retry(reason) => {
                let attempts = change.attempts + 1;
                let wait = backoff_secs(attempts, self.settings.max_backoff_secs);
                tracing::warn!(
                    reason,
                    retry_in_secs = wait,
                    "identity sync: Layer did not take the change; it will be sent again"
                );
                self.store
                    .retry_identity_change(change.id, self.clock.now() + wait, reason)
                    .await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the row is sent again: at least once.
            tracing::warn!(error = ?e, "identity sync: recording the outcome failed");
        }
        matches!(outcome, Outcome::Done)
    }

    async fn send(&self, change: &ClaimedChange) -> Result<Outcome, StoreError> {
        Ok(match change.change {
            IdentityChange::Identity => match self.store.find_user(&change.user_id).await? {
                Some(user) => self.client.sync_identity(&user).await,
                // Deleted since: its `delete` row follows this one.
                None => Outcome::Done,
            },
            IdentityChange::Suspend => self.client.set_suspended(&change.user_id, true).await,
            IdentityChange::Unsuspend => self.client.set_suspended(&change.user_id, false).await,
            IdentityChange::Delete => self.client.delete_identity(&change.user_id).await,
        })
    }
}

/// The wait before the next attempt of a change that has failed `attempts` times (counting
/// the last one): 1 s, 2 s, 4 s, … up to `max`.
fn backoff_secs(attempts: u32, max: u64) -> i64 {
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let exponent = attempts.saturating_sub(1).min(40);
    (1i64 << exponent).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_one_second_up_to_the_maximum() {
        let waits: Vec<i64> = (1..=8).map(|attempts| backoff_secs(attempts, 60)).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff_secs(u32::MAX, u64::MAX), 1 << 40);
    }
}
