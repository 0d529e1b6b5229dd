//! The emulator's side of identity-token validation: it looks up the token's `kid` in its
//! [`Trust`] for the app the token is presented for, and applies Layer's rules from the shared
//! [`crate::identity_token`] module (which the token inspector reports too), stopping at the
//! first rule that fails. The nonce's consumption is the caller's, last.

use crate::identity_token::{Inspection, KeyVerdict};
pub use crate::identity_token::{Profile, VerifiedToken};

use super::ids::AppId;
use super::trust::{KeyRefusal, Trust};

/// Verifies everything but the nonce's freshness; `now` is Unix seconds. The error is the
/// first failed rule's message.
pub async fn verify(
    token: &str,
    app: AppId,
    trust: &Trust,
    now: i64,
) -> Result<VerifiedToken, String> {
    let mut inspection = Inspection::start(token);
    if let Some(rule) = inspection.first_failure() {
        return Err(rule.message.clone());
    }
    let kid = inspection.kid().unwrap_or_default().to_owned();
    let verdict = match trust.key_for(&kid, app).await {
        Ok(key) => KeyVerdict::Trusted {
            key,
            note: format!("{kid} is trusted for {app}"),
        },
        Err(KeyRefusal::Unknown) => KeyVerdict::Unknown {
            truster: "the emulator".to_owned(),
            known: trust.key_ids(),
            named: None,
        },
        Err(KeyRefusal::OtherApps(apps)) => KeyVerdict::OtherApps {
            registered: apps
                .iter()
                .map(|a| (a.to_string(), a.environment.as_str().to_owned()))
                .collect(),
            presented: (app.to_string(), app.environment.as_str().to_owned()),
        },
    };
    let provider = trust.provider_for(app).ok_or_else(|| {
        format!(
            "the emulator knows no provider for {app}: give --provider-id, --app-provider \
             {app}=PROVIDER_ID, or a --jwks-url whose keys name their app and provider"
        )
    });
    inspection.finish(Some(verdict), provider, now);
    inspection.into_verified()
}
