//! Throttled guessing: every password check (`/authenticate`, `POST /sessions`, the
//! `current_password` of `PATCH /users/me`) and every sign-up asks here first.
//!
//! The counters live in the database, so every replica enforces one budget: a failed check
//! writes one row; a check reads every counter in one query; a successful login writes
//! nothing of its own — the address it came from rides along in the session row's transaction
//! or the signed-nonce ledger's batch — except to clear failures it has to clear. An attempt
//! that a rule holds answers 429 before any argon2 work and writes nothing.
//!
//! Counters are keyed on the case-folded e-mail that was typed, never on a user ID, so an
//! unknown e-mail is throttled exactly like a known one and a held answer reveals no account.
//!
//! Within one process, checks of one account run one at a time ([`AccountLocks`]): otherwise
//! a burst of parallel guesses would all pass the check before the first failure is recorded.
//! That lock is not a counter — it holds nothing once the check is done — so across replicas a
//! burst gets at most one extra guess per replica.
//!
//! The rules themselves are in `rules.rs`.

mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

pub use rules::{Hold, NIST_MAX_FAILURES, Rule, ThrottleSettings, evaluate};

use super::client::ClientAddr;
use super::error::IdpError;
use super::metrics::IdpMetrics;
use crate::clock::Clock;
use crate::store::{LoginSuccess, SignupClaim, Store, ThrottlePurge, ThrottleQuery, ThrottleState};

/// What a password was checked for, for the security log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    CurrentPassword,
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::CurrentPassword => "current_password",
            Purpose::PasswordReset => "password_reset",
        }
    }
}

pub struct Throttle {
    store: Arc<dyn Store>,
    clock: Clock,
    settings: ThrottleSettings,
    /// How long a successful login exempts its address from the shared ceilings.
    session_ttl_secs: i64,
    locks: AccountLocks,
    metrics: IdpMetrics,
}

impl Throttle {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Clock,
        settings: ThrottleSettings,
        session_ttl_secs: i64,
        metrics: IdpMetrics,
    ) -> Self {
        Self {
            store,
            clock,
            settings,
            session_ttl_secs,
            locks: AccountLocks::default(),
            metrics,
        }
    }

    pub fn settings(&self) -> &ThrottleSettings {
        &self.settings
    }

    /// Admits a password check of the account `email_key` from `client`, or answers
    /// 429 `too_many_attempts` when a rule holds it. Call before any hashing; report the
    /// outcome on the returned [`Attempt`].
    pub async fn begin(
        &self,
        email_key: &str,
        client: ClientAddr,
        purpose: Purpose,
    ) -> Result<Attempt<'_>, IdpError> {
        let lock = self.locks.lock(email_key).await;
        let now = self.clock.now();
        let bucket = client.bucket();
        let state = self
            .store
            .login_throttle_state(ThrottleQuery {
                email_key,
                client: &bucket,
                failures_since: now.saturating_sub(secs(self.settings.failure_window_secs)),
                client_failures_since: now.saturating_sub(secs(self.settings.address_window_secs)),
                successes_since: now.saturating_sub(self.session_ttl_secs),
            })
            .await?;
        if let Some(hold) = evaluate(&self.settings, &state, now) {
            self.metrics.throttled(purpose.as_str());
            tracing::warn!(
                security_event = "password_attempt_held",
                purpose = purpose.as_str(),
                user_id = state.user_id.as_deref(),
                client = %client,
                reason = hold.rule.as_str(),
                retry_after = hold.retry_after,
                "password attempt held by throttling"
            );
            return Err(IdpError::TooManyAttempts {
                retry_after_secs: hold.retry_after.unsigned_abs(),
            });
        }
        Ok(Attempt {
            throttle: self,
            email_key: email_key.to_owned(),
            client,
            bucket,
            purpose,
            state,
            _lock: lock,
        })
    }

    /// Admits a sign-up from `client`, or answers 429 `too_many_signups`.
    pub async fn admit_signup(&self, client: ClientAddr) -> Result<(), IdpError> {
        let now = self.clock.now();
        let window = secs(self.settings.signup_window_secs);
        let claim = self
            .store
            .claim_signup(
                &client.bucket(),
                now,
                now.saturating_sub(window),
                self.settings.signups_per_address,
            )
            .await?;
        match claim {
            SignupClaim::Admitted => Ok(()),
            SignupClaim::Refused { oldest } => {
                self.metrics.throttled("signup");
                let retry_after = (oldest.saturating_add(window) - now).max(1);
                tracing::warn!(
                    security_event = "signup_held",
                    client = %client,
                    retry_after,
                    "sign-up held: too many from this address"
                );
                Err(IdpError::TooManySignups {
                    retry_after_secs: retry_after.unsigned_abs(),
                })
            }
        }
    }

    /// Deletes records that no rule counts any more (called by the purge task).
    pub async fn purge(&self) -> Result<u64, crate::store::StoreError> {
        let now = self.clock.now();
        let longest_failure_window = self
            .settings
            .failure_window_secs
            .max(self.settings.address_window_secs);
        self.store
            .purge_throttle_records(ThrottlePurge {
                failures_before: now.saturating_sub(secs(longest_failure_window)),
                successes_before: now.saturating_sub(self.session_ttl_secs),
                signups_before: now.saturating_sub(secs(self.settings.signup_window_secs)),
            })
            .await
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A password check the rules admitted; say how it ended. Holds the account's in-process
/// lock until dropped.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    email_key: String,
    client: ClientAddr,
    bucket: String,
    purpose: Purpose,
    state: ThrottleState,
    _lock: AccountLock<'a>,
}

/// What a successful login records inside a write it makes anyway.
#[derive(Debug, Clone)]
pub struct Success {
    pub email_key: String,
    pub client: String,
    pub at: i64,
}

impl Success {
    pub fn record(&self) -> LoginSuccess<'_> {
        LoginSuccess {
            email_key: &self.email_key,
            client: &self.client,
            at: self.at,
        }
    }
}

impl Attempt<'_> {
    /// Records a failure and logs it as a security event. `user_id` is the account's, when the
    /// e-mail has one; `reason` says why (never the password or the e-mail typed).
    pub async fn failed(self, user_id: Option<&str>, reason: &'static str) -> Result<(), IdpError> {
        let now = self.throttle.clock.now();
        tracing::warn!(
            security_event = "password_check_failed",
            purpose = self.purpose.as_str(),
            user_id,
            client = %self.client,
            reason,
            failures_from_address = self.state.pair_failures + 1,
            "password check failed"
        );
        self.throttle
            .store
            .record_login_failure(&self.email_key, &self.bucket, now)
            .await?;
        Ok(())
    }

    /// Clears this address's failures on the account, if it has any (the only write a success
    /// makes of its own), and returns what the login's own write should record.
    pub async fn succeeded(self) -> Result<Success, IdpError> {
        if self.state.pair_failures > 0 {
            self.throttle
                .store
                .clear_login_failures(&self.email_key, &self.bucket)
                .await?;
        }
        Ok(Success {
            email_key: self.email_key,
            client: self.bucket,
            at: self.throttle.clock.now(),
        })
    }
}

const SWEEP_ABOVE: usize = 1024;

/// One async mutex per account being checked in this process, made on demand and dropped
/// with its last holder, so the map holds only accounts being checked right now.
#[derive(Default)]
struct AccountLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

struct AccountLock<'a> {
    locks: &'a AccountLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl AccountLocks {
    async fn lock(&self, key: &str) -> AccountLock<'_> {
        let mutex = {
            // A std mutex: held for a map lookup only, never across an await. A poisoned map
            // is still a valid map (a panic cannot leave an entry half-made).
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        AccountLock {
            locks: self,
            key: key.to_owned(),
            guard: Some(guard),
        }
    }
}

impl Drop for AccountLock<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.0.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it: nobody waits, so the entry can go.
        if map
            .get(&self.key)
            .is_some_and(|mutex| Arc::strong_count(mutex) == 1)
        {
            map.remove(&self.key);
        }
        // A waiter cancelled at the wrong moment (its client went away) can leave an entry
        // nobody holds; sweep those once the map grows.
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, mutex| Arc::strong_count(mutex) > 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_account_lock_serialises_its_holders_and_leaves_no_entry_behind() {
        let locks = AccountLocks::default();
        let first = locks.lock("a").await;
        let other = locks.lock("b").await;
        // "a" is held: a second holder must wait.
        let waiting = tokio::time::timeout(std::time::Duration::ZERO, locks.lock("a")).await;
        assert!(waiting.is_err());
        drop(first);
        let second = locks.lock("a").await;
        drop(second);
        drop(other);
        assert!(locks.0.lock().unwrap().is_empty());
    }
}
