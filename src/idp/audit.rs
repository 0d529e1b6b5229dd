//! The audit trail: security-relevant events (sign-up, login failure, password and e-mail
//! changes, admin actions with the admin token's name, deletion), each with its time, actor,
//! subject, client address and outcome, in the `audit_events` table. Never a secret: no
//! password, hash, token or link is ever an argument here.
//!
//! Recording is best effort: a failure to record is logged and does not fail the request it
//! describes.

use super::client::ClientAddr;
use crate::store::{NewAuditEvent, Store};

/// Who did it.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The user themselves (by ID), or someone trying to be them.
    User(&'a str),
    /// An admin token, by its name.
    Admin(&'a str),
    /// Nobody authenticated (a sign-up, a failed login).
    Anonymous,
    /// The operator, on the command line.
    CommandLine,
}

/// One event. `kind` and `outcome` are short fixed words (`login`, `failure: wrong password`).
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub kind: &'a str,
    pub actor: Actor<'a>,
    pub subject: Option<&'a str>,
    pub client: Option<ClientAddr>,
    pub outcome: &'a str,
}

/// Records `event` at `now` (Unix seconds).
pub async fn record(store: &dyn Store, now: i64, event: Event<'_>) {
    let actor = match event.actor {
        Actor::User(id) => format!("user:{id}"),
        Actor::Admin(name) => format!("admin:{name}"),
        Actor::Anonymous => "anonymous".to_owned(),
        Actor::CommandLine => "command-line".to_owned(),
    };
    let client = event.client.map(|c| c.0.to_string());
    let recorded = store
        .record_audit_event(NewAuditEvent {
            at: now,
            kind: event.kind,
            actor: &actor,
            subject: event.subject,
            client: client.as_deref(),
            outcome: event.outcome,
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, kind = event.kind, "could not record an audit event");
    }
}
