//! Layer identity tokens: the claims, the once-per-nonce rule, and issuance.
//!
//! A token carries `iss` (provider ID), `prn` (the stable user ID), `iat`/`exp` (integer UTC
//! seconds), `nce` (the nonce, byte for byte) and the profile claims that are set — nothing
//! else. Before signing, the nonce's SHA-256 is recorded in the [`NonceLedger`]: a nonce is
//! never signed twice while Layer would still accept it, and one nonce asked for on behalf of
//! two different users is logged as a likely relayed nonce.
//!
//! The RSA signature (~0.25 ms of CPU) runs on the HTTP worker. It once ran on the blocking
//! pool, which paid when each token also waited for its own database reads and writes; with
//! session lookups and nonce claims batched, the hand-off to a pool thread and back (two
//! wake-ups per token) cost more CPU than it saved (DEVELOPERS.md, "Benchmark: identity tokens
//! per second").

use std::sync::Arc;

use serde::Serialize;

use super::apps::Apps;
use super::error::IdpError;
use super::keys::KeyRing;
use super::metrics::IdpMetrics;
use super::nonces::NonceLedger;
use super::throttle::Success;
use crate::domain::Nonce;
use crate::store::{NonceRecord, Store, User};

/// How long Layer honours a nonce; a signed nonce is remembered at least this long.
pub const NONCE_LIFETIME_SECS: i64 = 600;

/// The claims of a Layer identity token, in the order Layer's documentation lists them.
#[derive(Debug, Serialize)]
pub struct IdentityClaims<'a> {
    pub iss: &'a str,
    pub prn: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub nce: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<&'a str>,
}

#[derive(Clone)]
pub struct TokenIssuer {
    apps: Arc<Apps>,
    ledger: NonceLedger,
    metrics: IdpMetrics,
}

impl TokenIssuer {
    /// Builds the issuer and starts its nonce ledger on the current Tokio runtime.
    pub fn new(apps: Arc<Apps>, store: Arc<dyn Store>, metrics: &IdpMetrics) -> Self {
        Self {
            apps,
            ledger: NonceLedger::start(
                store,
                metrics.nonce_batch_sizes.clone(),
                metrics.nonce_ledger_seconds(),
            ),
            metrics: metrics.clone(),
        }
    }

    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    /// Signs an identity token for `user` and `nonce` with the active key of the app `keys`
    /// (one of [`Self::apps`]), unless the nonce was signed before.
    pub async fn issue(
        &self,
        user: &User,
        nonce: &Nonce,
        keys: &Arc<KeyRing>,
        now: i64,
    ) -> Result<String, IdpError> {
        self.issue_inner(user, nonce, keys, now, None).await
    }

    /// [`Self::issue`] right after a password login: the ledger's batch also records the
    /// login's address for the throttling rules, so the login costs no write of its own.
    pub async fn issue_after_login(
        &self,
        user: &User,
        nonce: &Nonce,
        keys: &Arc<KeyRing>,
        now: i64,
        login: &Success,
    ) -> Result<String, IdpError> {
        self.issue_inner(user, nonce, keys, now, Some(login.clone()))
            .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user.id, provider_id = keys.provider_id()))]
    async fn issue_inner(
        &self,
        user: &User,
        nonce: &Nonce,
        keys: &Arc<KeyRing>,
        now: i64,
        login: Option<Success>,
    ) -> Result<String, IdpError> {
        let nonce_hash: [u8; 32] =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, nonce.as_str().as_bytes())
                .as_ref()
                .try_into()
                .map_err(IdpError::internal)?;
        let record = self
            .ledger
            .claim(nonce_hash, &user.id, now + NONCE_LIFETIME_SECS, login)
            .await
            .map_err(IdpError::internal)?;
        if let NonceRecord::AlreadySigned { user_id } = record {
            // The holder is unknown ("") if the record was purged a moment ago.
            if !user_id.is_empty() && user_id != user.id {
                tracing::warn!(
                    first_user_id = %user_id,
                    "one nonce was presented for two different users; a nonce may have been relayed"
                );
            }
            return Err(IdpError::Conflict {
                code: "nonce_already_signed",
                description: "an identity token was already issued for this nonce; ask Layer \
                              for a new nonce (each nonce is single use)"
                    .to_owned(),
            });
        }
        let claims = IdentityClaims {
            iss: keys.provider_id(),
            prn: &user.id,
            iat: now,
            exp: now.saturating_add(i64::try_from(keys.token_lifetime_secs()).unwrap_or(i64::MAX)),
            nce: nonce.as_str(),
            first_name: user.first_name.as_deref(),
            last_name: user.last_name.as_deref(),
            display_name: user.display_name.as_deref(),
            avatar_url: user.avatar_url.as_deref(),
        };
        let claims = serde_json::to_vec(&claims).map_err(IdpError::internal)?;
        let token = keys
            .active()
            .sign_json(&claims)
            .map_err(IdpError::internal)?;
        self.metrics.token_issued();
        Ok(token)
    }
}
