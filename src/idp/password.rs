//! Password hashing: argon2id, PHC strings, off the async workers, at most N at once.
//!
//! Each hash holds `argon2_memory_kib` of memory and ~10 ms of a core, so hashes run on the
//! blocking pool behind a semaphore; a login that cannot get a slot within the queue timeout
//! is turned away with 503 rather than letting a burst exhaust memory or starve token
//! issuance. An unknown e-mail is verified against a dummy hash made at start-up with the
//! current parameters, so it costs what a wrong password costs and timing does not reveal who
//! has an account. Stored hashes are bounded before verification: a corrupted or imported
//! hash must not be able to ask for a gigabyte.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use super::error::IdpError;
use crate::config::PasswordSettings;
use crate::domain::{Password, PasswordPolicy};
use crate::telemetry::spawn_blocking_with_tracing;

/// Upper bounds on the parameters of a stored hash we agree to verify.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 16;
const MAX_PARALLELISM: u32 = 16;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    policy: PasswordPolicy,
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    dummy_hash: Arc<str>,
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The stored hash is weaker than the current policy; re-hash it now that we know the
    /// password.
    pub needs_rehash: bool,
}

impl PasswordHasher {
    /// Builds the hasher and its dummy hash. Blocks for one hash; call at start-up.
    pub fn new(settings: &PasswordSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let dummy_hash = hash_blocking(&params, b"layer-idp dummy password, never matches")
            .map_err(|e| anyhow::anyhow!("could not compute the dummy hash: {e}"))?;
        Ok(Self {
            params,
            policy: PasswordPolicy {
                min_chars: settings.min_length,
                max_chars: settings.max_length,
            },
            permits: Arc::new(Semaphore::new(settings.max_concurrent_hashes)),
            queue_timeout: Duration::from_millis(settings.hash_queue_timeout_ms),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub fn policy(&self) -> PasswordPolicy {
        self.policy
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: Password) -> Result<String, IdpError> {
        let params = self.params.clone();
        self.run(move || hash_blocking(&params, password.expose().as_bytes()))
            .await?
            .map_err(|e| IdpError::internal(anyhow::anyhow!("argon2 hashing failed: {e}")))
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no account
    /// (the result is then always a mismatch, after the same amount of work).
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<Verification, IdpError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        let verification = self
            .run(move || verify_blocking(&params, password.expose().as_bytes(), &stored))
            .await?;
        Ok(Verification {
            matches: known && verification.matches,
            needs_rehash: known && verification.needs_rehash,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, IdpError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                tracing::warn!("password hashing queue is full; shedding the request");
                IdpError::Busy
            })?
            .map_err(IdpError::internal)?;
        let result = spawn_blocking_with_tracing(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(IdpError::internal)?;
        Ok(result)
    }
}

fn hasher(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    Ok(hasher(params).hash_password(password)?.to_string())
}

fn verify_blocking(current: &Params, password: &[u8], stored: &str) -> Verification {
    let mismatch = Verification {
        matches: false,
        needs_rehash: false,
    };
    let Ok(hash) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash is not a PHC string; the login fails");
        return mismatch;
    };
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        tracing::error!(algorithm = %hash.algorithm, "a stored password hash uses an unsupported algorithm");
        return mismatch;
    }
    let Ok(stored_params) = Params::try_from(&hash) else {
        tracing::error!("a stored password hash has unreadable argon2 parameters");
        return mismatch;
    };
    if stored_params.m_cost() > MAX_MEMORY_KIB
        || stored_params.t_cost() > MAX_ITERATIONS
        || stored_params.p_cost() > MAX_PARALLELISM
    {
        tracing::error!("a stored password hash asks for more work than allowed; the login fails");
        return mismatch;
    }
    let matches = hasher(current).verify_password(password, &hash).is_ok();
    let needs_rehash = matches
        && (stored_params.m_cost() < current.m_cost()
            || stored_params.t_cost() < current.t_cost()
            || stored_params.p_cost() != current.p_cost()
            || hash.version != Some(Version::V0x13.into()));
    Verification {
        matches,
        needs_rehash,
    }
}

#[cfg(test)]
mod tests {
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

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let hash = hasher.hash(pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        let ok = hasher
            .verify(pw("correct horse"), Some(hash.clone()))
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        let wrong = hasher.verify(pw("wrong horse"), Some(hash)).await.unwrap();
        assert!(!wrong.matches);
    }

    #[tokio::test]
    async fn an_unknown_account_never_matches_even_the_dummy_password() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let v = hasher
            .verify(pw("layer-idp dummy password, never matches"), None)
            .await
            .unwrap();
        assert!(!v.matches);
    }

    #[tokio::test]
    async fn a_hash_below_the_current_policy_is_flagged_for_rehashing() {
        let weak = PasswordHasher::new(&cheap()).unwrap();
        let hash = weak.hash(pw("correct horse")).await.unwrap();
        let stronger = PasswordHasher::new(&PasswordSettings {
            argon2_memory_kib: 128,
            ..cheap()
        })
        .unwrap();
        let v = stronger
            .verify(pw("correct horse"), Some(hash))
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
    async fn the_default_parameters_are_the_owasp_baseline() {
        let hasher = PasswordHasher::new(&PasswordSettings::default()).unwrap();
        let hash = hasher.hash(pw("correct horse")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[test]
    fn stored_hashes_asking_for_absurd_work_are_refused_without_running() {
        let absurd = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$\
                      AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let v = verify_blocking(&Params::default(), b"x", absurd);
        assert!(!v.matches);
        assert!(!verify_blocking(&Params::default(), b"x", "not a phc string").matches);
        assert!(
            !verify_blocking(&Params::default(), b"x", "$2b$10$abcdefghijklmnopqrstuv").matches
        );
    }

    #[tokio::test]
    async fn a_full_queue_sheds_load_with_busy() {
        let hasher = PasswordHasher::new(&PasswordSettings {
            max_concurrent_hashes: 1,
            hash_queue_timeout_ms: 10,
            ..cheap()
        })
        .unwrap();
        let _held = hasher.permits.clone().acquire_owned().await.unwrap();
        let err = hasher.hash(pw("correct horse")).await.unwrap_err();
        assert!(matches!(err, IdpError::Busy));
    }
}
