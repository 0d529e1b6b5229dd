//! Password hashing: argon2id PHC strings, computed on a fixed set of hashing threads with
//! bounded memory, behind a fair queue.
//!
//! - `argon2id.rs` — the hash and the check, in a reusable per-thread buffer; bounds on stored
//!   hashes.
//! - `queue.rs` — who goes next: logins before sign-ups (with a guaranteed share for each),
//!   client addresses in turn, a cap per address.
//! - `legacy.rs` — hashes imported from other systems (bcrypt, Django and PHC PBKDF2, scrypt),
//!   each scheme with its own cost caps; verified on the same threads, then replaced.
//! - `pool.rs` — the threads, the queue timeout, carrying the request's span.
//!
//! Each hash holds `argon2_memory_kib` of memory and tens of milliseconds of a core, so at most
//! `max_concurrent_hashes` run at once, each on its own thread with its own buffer: memory
//! stays within that many buffers however hard the service is flooded, and goes back to the
//! system when the queue empties. A request that cannot get a turn within the queue timeout,
//! or whose address already has its share of the queue, is turned away with 503. An unknown
//! e-mail is verified against a dummy hash made at start-up with the current parameters, so it
//! costs what a wrong password costs and timing does not reveal who has an account.

mod argon2id;
mod legacy;
mod pool;
mod queue;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::Params;
use prometheus_client::metrics::histogram::Histogram;

pub use argon2id::Verification;
use legacy::Legacy;
pub use legacy::Refused;

/// No supported scheme makes a string this long; longer input is refused unread.
const MAX_STORED_HASH_LEN: usize = 512;
pub use queue::Lane;
use queue::{Refusal, Source};

use super::client::ClientAddr;
use super::error::IdpError;
use crate::config::PasswordSettings;
use crate::domain::{Password, PasswordPolicy};
use pool::{Pool, PoolSettings, Rejected};

/// Who a hash is for, which decides where it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRequest {
    lane: Lane,
    source: Source,
}

impl HashRequest {
    /// Checking an existing password (login, `current_password`), or a hash asked for by an
    /// authenticated user or an administrator.
    pub fn login(client: ClientAddr) -> Self {
        Self {
            lane: Lane::Login,
            source: Source::of(client.0),
        }
    }

    /// An anonymous sign-up.
    pub fn sign_up(client: ClientAddr) -> Self {
        Self {
            lane: Lane::SignUp,
            source: Source::of(client.0),
        }
    }

    /// The command line: the operator, in a process of their own.
    pub fn command_line() -> Self {
        Self {
            lane: Lane::Login,
            source: Source::Local,
        }
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    policy: PasswordPolicy,
    pool: Arc<Pool>,
    dummy_hash: Arc<str>,
    /// Verifications that ran on a hashing thread (for an account or against the dummy hash).
    verifications: Arc<AtomicU64>,
    /// How long each job waited for a thread (`layer_idp_hash_queue_wait_seconds`).
    wait: Histogram,
}

impl PasswordHasher {
    /// Starts the hashing threads and makes the dummy hash. Blocks for one hash; call at
    /// start-up.
    pub fn new(settings: &PasswordSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let dummy_hash = {
            // Made on the calling thread, in a buffer freed right after.
            let mut scratch = argon2id::Scratch::new(settings.argon2_memory_kib);
            argon2id::hash(
                &params,
                b"layer-idp dummy password, never matches",
                &mut scratch,
            )
            .map_err(|e| e.context("could not compute the dummy hash"))?
        };
        let pool = Pool::start(PoolSettings {
            threads: settings.max_concurrent_hashes,
            memory_kib: settings.argon2_memory_kib,
            queue_timeout: Duration::from_millis(settings.hash_queue_timeout_ms),
            capacity: settings.hash_queue_capacity,
            per_source: settings.hash_queue_per_address,
        })
        .map_err(|e| anyhow::anyhow!("could not start the password hashing threads: {e}"))?;
        Ok(Self {
            params,
            policy: PasswordPolicy {
                min_chars: settings.min_length,
                max_chars: settings.max_length,
            },
            pool: Arc::new(pool),
            dummy_hash: dummy_hash.into(),
            verifications: Arc::new(AtomicU64::new(0)),
            wait: crate::metrics::wait_histogram(),
        })
    }

    /// Records each job's wait for a thread in `wait` (a registered histogram).
    pub fn with_wait_histogram(mut self, wait: Histogram) -> Self {
        self.wait = wait;
        self
    }

    /// Jobs waiting for a hashing thread now.
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }

    /// Whether a hash brought from elsewhere (import, `password_hash` on admin create) can be
    /// verified here, without running it: a supported scheme, within its caps.
    pub fn check_stored(&self, stored: &str) -> Result<(), Refused> {
        if stored.len() > MAX_STORED_HASH_LEN {
            return Err(Refused(
                "a password hash longer than any supported scheme makes".into(),
            ));
        }
        match argon2id::check_stored(stored, self.params.m_cost()) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(reason) => return Err(Refused(reason)),
        }
        match Legacy::parse(stored)? {
            Some(_) => Ok(()),
            None => Err(Refused(
                "an unsupported password hash (supported: argon2id, argon2i, bcrypt, Django \
                 PBKDF2, PHC PBKDF2 and scrypt)"
                    .into(),
            )),
        }
    }

    pub fn policy(&self) -> PasswordPolicy {
        self.policy
    }

    /// How many password verifications have run on the hashing threads since start — one per
    /// login that got past the throttle, known account or not.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: Password, request: HashRequest) -> Result<String, IdpError> {
        let params = self.params.clone();
        self.run(request, move |scratch| {
            argon2id::hash(&params, password.expose().as_bytes(), scratch)
        })
        .await?
        .map_err(IdpError::internal)
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no account
    /// (the result is then always a mismatch, after the same amount of work).
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
        request: HashRequest,
    ) -> Result<Verification, IdpError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        let verifications = self.verifications.clone();
        let verification = self
            .run(request, move |scratch| {
                verifications.fetch_add(1, Ordering::Relaxed);
                match Legacy::parse(&stored) {
                Ok(None) => {
                    argon2id::verify(&params, password.expose().as_bytes(), &stored, scratch)
                }
                Ok(Some(legacy)) => {
                    let matches = legacy.verify(password.expose().as_bytes(), &stored);
                    Verification {
                        matches,
                        needs_rehash: matches,
                    }
                }
                Err(refused) => {
                    tracing::error!(reason = %refused, "a stored password hash is refused; the login fails");
                    Verification {
                        matches: false,
                        needs_rehash: false,
                    }
                }
                }
            })
            .await?;
        Ok(Verification {
            matches: known && verification.matches,
            needs_rehash: known && verification.needs_rehash,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        request: HashRequest,
        work: impl FnOnce(&mut argon2id::Scratch) -> T + Send + 'static,
    ) -> Result<T, IdpError> {
        let queued_at = Instant::now();
        let wait = self.wait.clone();
        let work = move |scratch: &mut argon2id::Scratch| {
            wait.observe(queued_at.elapsed().as_secs_f64());
            work(scratch)
        };
        self.pool
            .run(request.lane, request.source, work)
            .await
            .map_err(|rejected| {
                match rejected {
                    Rejected::Full(Refusal::SourceFull) => tracing::warn!(
                        lane = ?request.lane,
                        source = ?request.source,
                        "this client already has its share of the password hashing queue; \
                         shedding the request"
                    ),
                    Rejected::Full(Refusal::QueueFull) => {
                        tracing::warn!("password hashing queue is full; shedding the request")
                    }
                    Rejected::TimedOut => tracing::warn!(
                        "no password hashing slot within the queue timeout; shedding the request"
                    ),
                    Rejected::Lost => {
                        return IdpError::internal(anyhow::anyhow!(
                            "a password hashing job was lost (it panicked)"
                        ));
                    }
                }
                IdpError::Busy
            })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn cheap() -> PasswordSettings {
        PasswordSettings {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..PasswordSettings::default()
        }
    }

    fn pw(s: &str) -> Password {
        Password::candidate(s, PasswordPolicy::default()).unwrap()
    }

    fn client() -> HashRequest {
        HashRequest::login(ClientAddr(IpAddr::V4(Ipv4Addr::LOCALHOST)))
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let hash = hasher.hash(pw("correct horse"), client()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        let ok = hasher
            .verify(pw("correct horse"), Some(hash.clone()), client())
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        let wrong = hasher
            .verify(pw("wrong horse"), Some(hash), client())
            .await
            .unwrap();
        assert!(!wrong.matches);
    }

    #[test]
    fn the_dummy_hash_is_made_with_the_current_parameters() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        assert!(
            hasher
                .dummy_hash
                .starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{}",
            hasher.dummy_hash
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_matches_even_the_dummy_password() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let v = hasher
            .verify(
                pw("layer-idp dummy password, never matches"),
                None,
                client(),
            )
            .await
            .unwrap();
        assert!(!v.matches);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_hash_costs() {
        let hasher = PasswordHasher::new(&PasswordSettings::default()).unwrap();
        let dummy = argon2::password_hash::phc::PasswordHash::new(&hasher.dummy_hash).unwrap();
        assert_eq!(Params::try_from(&dummy).unwrap().m_cost(), 19_456);
        assert!(
            hasher
                .dummy_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
    }

    #[tokio::test]
    async fn a_hash_below_the_current_policy_is_flagged_for_rehashing() {
        let weak = PasswordHasher::new(&cheap()).unwrap();
        let hash = weak.hash(pw("correct horse"), client()).await.unwrap();
        let stronger = PasswordHasher::new(&PasswordSettings {
            argon2_memory_kib: 128,
            ..cheap()
        })
        .unwrap();
        let v = stronger
            .verify(pw("correct horse"), Some(hash), client())
            .await
            .unwrap();
        assert_eq!(
            v,
            Verification {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[tokio::test]
    async fn a_hash_stored_with_more_memory_than_configured_is_refused() {
        let strong = PasswordHasher::new(&PasswordSettings {
            argon2_memory_kib: 128,
            ..cheap()
        })
        .unwrap();
        let hash = strong.hash(pw("correct horse"), client()).await.unwrap();
        let weaker = PasswordHasher::new(&cheap()).unwrap();
        let v = weaker
            .verify(pw("correct horse"), Some(hash), client())
            .await
            .unwrap();
        assert!(!v.matches);
    }

    #[tokio::test]
    async fn the_default_parameters_are_the_owasp_baseline() {
        let hasher = PasswordHasher::new(&PasswordSettings::default()).unwrap();
        let hash = hasher.hash(pw("correct horse"), client()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify(pw("correct horse"), Some(hash), client())
                .await
                .unwrap()
                .matches
        );
    }

    /// Hashes made by each scheme's reference implementation (tests/fixtures/
    /// make_legacy_hashes.py: Python's bcrypt, Django, hashlib, passlib, argon2-cffi).
    #[tokio::test]
    async fn hashes_from_other_systems_verify_on_the_pool_and_ask_to_be_replaced() {
        let fixtures: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/legacy_hashes.json"))
                .unwrap();
        let password = fixtures["password"].as_str().unwrap();
        let hasher = PasswordHasher::new(&PasswordSettings {
            argon2_memory_kib: 2048,
            ..cheap()
        })
        .unwrap();
        let hashes = fixtures["hashes"].as_array().unwrap();
        assert_eq!(hashes.len(), 14);
        for fixture in hashes {
            let scheme = fixture["scheme"].as_str().unwrap();
            let stored = fixture["hash"].as_str().unwrap().to_owned();
            hasher
                .check_stored(&stored)
                .unwrap_or_else(|e| panic!("{scheme}: {e}"));
            let right = hasher
                .verify(pw(password), Some(stored.clone()), client())
                .await
                .unwrap();
            assert!(right.matches, "{scheme}");
            assert!(
                right.needs_rehash,
                "{scheme}: replaced by argon2id at the current parameters"
            );
            let wrong = hasher
                .verify(pw("correct horse battery!"), Some(stored), client())
                .await
                .unwrap();
            assert!(!wrong.matches, "{scheme}");
        }
    }

    #[test]
    fn hashes_over_their_schemes_caps_or_unknown_are_refused_unrun() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        for hostile in [
            "$2b$20$4sUynEODO0cYEmODNFgyQ.zaqQ2oQGSETwwe7OQiXI4EHOLqt11VG",
            "pbkdf2_sha256$100000000$vwQUDgI8H8xNVvnGoSbnnb$8S8E91iDyHYJ/ANOjRsJtqrHnDzL3rk2DMb48s/ZegU=",
            "$scrypt$ln=24,r=8,p=1$Wiml0XgS+jnTM55sr7yGmw$vWZJUwQmEO9H8wPaywTJ4YAtYS1Uha5+d0JVg+imubs",
            "$argon2id$v=19$m=1048576,t=2,p=1$YYm8rcPTBtT4oioyE9ohoQ$oBHPOJKvX6jTYauTrOm9BiQ4OqFriIc96R15+x6+xIM",
            "md5$salt$0123456789abcdef",
            "plain text",
        ] {
            assert!(hasher.check_stored(hostile).is_err(), "{hostile}");
        }
    }

    #[tokio::test]
    async fn a_hostile_stored_hash_fails_the_login_without_running() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        // Cost 31 would take days; refused at once.
        let v = hasher
            .verify(
                pw("correct horse battery"),
                Some("$2b$31$4sUynEODO0cYEmODNFgyQ.zaqQ2oQGSETwwe7OQiXI4EHOLqt11VG".into()),
                client(),
            )
            .await
            .unwrap();
        assert!(!v.matches);
    }

    #[tokio::test]
    async fn an_address_over_its_share_of_the_queue_is_shed_with_busy() {
        let hasher = PasswordHasher::new(&PasswordSettings {
            max_concurrent_hashes: 1,
            hash_queue_per_address: 0,
            ..cheap()
        })
        .unwrap();
        let err = hasher
            .hash(pw("correct horse"), client())
            .await
            .unwrap_err();
        assert!(matches!(err, IdpError::Busy));
    }
}
