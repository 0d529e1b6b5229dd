//! The identity provider's series (docs/operations.md lists them). The handles live here and
//! in the parts that record them; [`IdpMetrics::register`] names them in the application's
//! [`Metrics`] at start. Labels are fixed sets (an outcome, a purpose, a pool): never a user,
//! an e-mail, an address or a nonce.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::password::PasswordHasher;
use crate::metrics::{Metrics, wait_histogram};
use crate::store::Store;

/// How a password login ended (`layer_idp_logins_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Ok,
    /// A known account, a wrong password.
    Wrong,
    /// Held by the throttling rules before any hashing.
    Held,
    /// No account has this e-mail.
    Unknown,
    /// The password was right; the account is disabled.
    Disabled,
    /// The password was right; the address is not verified and must be.
    Unverified,
}

impl LoginOutcome {
    const ALL: [LoginOutcome; 6] = [
        LoginOutcome::Ok,
        LoginOutcome::Wrong,
        LoginOutcome::Held,
        LoginOutcome::Unknown,
        LoginOutcome::Disabled,
        LoginOutcome::Unverified,
    ];

    fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Ok => "ok",
            LoginOutcome::Wrong => "wrong",
            LoginOutcome::Held => "held",
            LoginOutcome::Unknown => "unknown",
            LoginOutcome::Disabled => "disabled",
            LoginOutcome::Unverified => "unverified",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PurposeLabels {
    purpose: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    batch: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
}

/// The identity provider's instruments; cheap to clone (clones share values). Made
/// unregistered by the command line, which exposes nothing.
#[derive(Clone)]
pub struct IdpMetrics {
    tokens_issued: Counter,
    logins: Family<OutcomeLabels, Counter>,
    throttled: Family<PurposeLabels, Counter>,
    /// Time a password job waited in the hash queue before a thread took it.
    pub hash_wait: Histogram,
    /// Claims written per signed-nonce ledger statement.
    pub nonce_batch_sizes: Histogram,
    /// Time each batched database call of the token path took, by batch.
    batch_durations: Family<BatchLabels, Histogram, fn() -> Histogram>,
}

impl Default for IdpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl IdpMetrics {
    pub fn new() -> Self {
        Self {
            tokens_issued: Counter::default(),
            logins: Family::default(),
            throttled: Family::default(),
            hash_wait: wait_histogram(),
            // 1 to 256 (the ledger's largest batch), in powers of two.
            nonce_batch_sizes: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            batch_durations: Family::new_with_constructor(batch_histogram),
        }
    }

    /// The histogram of the nonce ledger's writes (`db_batch_seconds{batch="nonce_ledger"}`).
    pub fn nonce_ledger_seconds(&self) -> Histogram {
        self.batch_seconds("nonce_ledger")
    }

    /// The histogram of the session lookups' reads (`db_batch_seconds{batch="session_lookup"}`).
    pub fn session_lookup_seconds(&self) -> Histogram {
        self.batch_seconds("session_lookup")
    }

    fn batch_seconds(&self, batch: &'static str) -> Histogram {
        self.batch_durations
            .get_or_create(&BatchLabels { batch })
            .clone()
    }

    /// Names every series in `metrics`, with the gauges read at scrape time from the hash
    /// queue and the database pools. Every outcome and purpose starts at 0, so `rate()` and
    /// alerts see a series from the first scrape, not from the first event.
    pub fn register(&self, metrics: &Metrics, hasher: &PasswordHasher, store: &Arc<dyn Store>) {
        for outcome in LoginOutcome::ALL {
            drop(self.logins.get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            }));
        }
        for purpose in ["login", "current_password", "password_reset", "signup"] {
            drop(self.throttled.get_or_create(&PurposeLabels { purpose }));
        }
        metrics.register(
            "identity_tokens_issued",
            "Identity tokens signed and answered",
            self.tokens_issued.clone(),
        );
        metrics.register(
            "logins",
            "Password logins (POST /sessions, /authenticate) by outcome: ok, wrong, held, \
             unknown, disabled, unverified",
            self.logins.clone(),
        );
        metrics.register(
            "throttled_attempts",
            "Attempts held by the throttling rules, by purpose: login, current_password, \
             password_reset, signup",
            self.throttled.clone(),
        );
        metrics.register(
            "hash_queue_wait_seconds",
            "Time a password hash waited for a hashing thread",
            self.hash_wait.clone(),
        );
        metrics.register(
            "nonce_ledger_batch_size",
            "Nonces recorded per signed-nonce ledger write (group commit)",
            self.nonce_batch_sizes.clone(),
        );
        drop(self.nonce_ledger_seconds());
        drop(self.session_lookup_seconds());
        metrics.register(
            "db_batch_seconds",
            "Time each batched database call of the token path took, by batch: nonce_ledger \
             (one write of every nonce claimed meanwhile), session_lookup (one read of every \
             session asked for meanwhile)",
            self.batch_durations.clone(),
        );
        let hasher = hasher.clone();
        metrics.gauge_fn(
            "hash_queue_depth",
            "Password hashes waiting for a hashing thread",
            move || i64::try_from(hasher.queued()).unwrap_or(i64::MAX),
        );
        let open: Family<PoolLabels, Gauge> = Family::default();
        let idle: Family<PoolLabels, Gauge> = Family::default();
        let max: Family<PoolLabels, Gauge> = Family::default();
        metrics.register(
            "db_pool_connections",
            "Open database connections, by pool (read, write; one shared pool on PostgreSQL)",
            open.clone(),
        );
        metrics.register(
            "db_pool_idle_connections",
            "Open database connections not in use, by pool",
            idle.clone(),
        );
        metrics.register(
            "db_pool_max_connections",
            "The most connections each pool opens",
            max.clone(),
        );
        let store = store.clone();
        metrics.on_scrape(move || {
            for pool in store.pool_use() {
                let labels = PoolLabels { pool: pool.name };
                open.get_or_create(&labels).set(i64::from(pool.size));
                idle.get_or_create(&labels)
                    .set(i64::try_from(pool.idle).unwrap_or(i64::MAX));
                max.get_or_create(&labels).set(i64::from(pool.max));
            }
        });
    }

    pub fn token_issued(&self) {
        self.tokens_issued.inc();
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// An attempt the throttle held (`purpose`: login, current_password, password_reset,
    /// signup).
    pub fn throttled(&self, purpose: &'static str) {
        self.throttled
            .get_or_create(&PurposeLabels { purpose })
            .inc();
    }
}

/// Buckets from 0.1 ms to about 3 s: a batched statement takes well under a millisecond on an
/// idle SQLite database, and anything near a second means the database is in trouble.
fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}
