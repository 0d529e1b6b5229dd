//! The token inspector: every rule for one token, against a [`KeySet`], as a report for the
//! command line (text or JSON) and the admin API (JSON). The token itself is never part of
//! the report, nor logged.

use serde::Serialize;

use super::keys::KeySet;
use super::{Inspection, Rule};
use crate::app_id::AppId;

/// What to check against besides the keys.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The app the token is meant for; else the app whose provider is the token's `iss`.
    pub app: Option<AppId>,
    /// The provider ID `iss` must be; else the app's or the key's provider.
    pub provider_id: Option<String>,
    /// Unix seconds, UTC.
    pub now: i64,
}

/// The inspector's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Every rule passed.
    pub valid: bool,
    /// Each rule checked, in Layer's order; rules that could not be checked (no key, claims
    /// that do not decode) are absent.
    pub rules: Vec<Rule>,
    /// The time `iat` and `exp` were checked against, Unix seconds.
    pub checked_at: i64,
    /// The provider ID `iss` was checked against, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// The app the key was checked for, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Where the keys came from.
    pub keys: String,
    /// What the inspector cannot know: whether the nonce is outstanding.
    pub note: &'static str,
}

const NOTE: &str = "whether the nce is an outstanding nonce is known only to Layer when the \
     token is exchanged (eit_nonce_not_found): a nonce is single-use and expires after 10 minutes";

/// Runs every rule on `token`.
pub fn inspect(token: &str, keys: &KeySet, options: &Options) -> Report {
    let mut inspection = Inspection::start(token);
    let kid = inspection.kid().map(str::to_owned);
    let iss = inspection.claim_str("iss").map(str::to_owned);
    let app = options
        .app
        .or_else(|| iss.as_deref().and_then(|iss| keys.app_of_provider(iss)));
    let verdict = kid.as_deref().map(|kid| keys.verdict(kid, app));
    let provider = options
        .provider_id
        .clone()
        .or_else(|| {
            let app = app.or_else(|| kid.as_deref().and_then(|k| keys.app_of_key(k)))?;
            keys.keys
                .iter()
                .find(|k| k.app == Some(app))
                .and_then(|k| k.provider.clone())
        })
        .or_else(|| kid.as_deref().and_then(|k| keys.provider_of_key(k)))
        .or_else(|| {
            let providers = keys.providers();
            match iss {
                Some(iss) if providers.contains(&iss) => Some(iss),
                _ if providers.len() == 1 => providers.into_iter().next(),
                _ => None,
            }
        });
    let checked = provider.clone().ok_or_else(|| {
        "no provider ID to check iss against: give the provider ID (--provider-id, or \
         provider_id in the request)"
            .to_owned()
    });
    inspection.finish(verdict, checked, options.now);
    Report {
        valid: inspection.valid(),
        rules: inspection.rules().to_vec(),
        checked_at: options.now,
        provider_id: provider,
        app_id: app.map(|a| a.to_string()),
        keys: keys.source.clone(),
        note: NOTE,
    }
}

impl Report {
    /// The report as lines for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for rule in &self.rules {
            let mark = if rule.ok { "ok  " } else { "FAIL" };
            out.push_str(&format!("{mark} {:<10} {}", rule.rule, rule.message));
            if let Some(code) = rule.reason_code {
                out.push_str(&format!(" [{code}]"));
            }
            out.push('\n');
            if let Some(hint) = &rule.hint {
                out.push_str(&format!("     {:<10} likely cause: {hint}\n", ""));
            }
        }
        out.push('\n');
        let failed = self.rules.iter().filter(|r| !r.ok).count();
        if self.valid {
            out.push_str("valid: every rule passed\n");
        } else {
            out.push_str(&format!("INVALID: {failed} rule(s) failed\n"));
        }
        out.push_str(&format!(
            "checked at {} against {}",
            self.checked_at, self.keys
        ));
        if let Some(provider) = &self.provider_id {
            out.push_str(&format!(", provider {provider}"));
        }
        if let Some(app) = &self.app_id {
            out.push_str(&format!(", app {app}"));
        }
        out.push_str(&format!("\nnote: {}\n", self.note));
        out
    }
}
