//! What a delivery carries (§D.4–D.6): the body, compact JSON so that a receiver that parses
//! and re-serialises it (as `layer-webhooks-services` does) gets the same bytes, and its
//! headers, signed `layer-webhook-signature: hex(HMAC-SHA1(secret, body))`.

use aws_lc_rs::hmac;
use serde_json::{Map, Value, json};

use super::super::Version;
use super::super::views::PlatformView;
use crate::clock::iso_ms;
use crate::mock_layer::world::World;
use crate::mock_layer::world::webhooks::{Actor, Event, Subject, Webhook, WebhookVersion};

/// One rendered delivery of one event to one webhook.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub event_type: &'static str,
    pub body: Vec<u8>,
    pub signature: String,
}

/// The Platform API shapes a webhook version uses: user IDs for 1.0, identities for 3.0.
fn shapes(version: WebhookVersion) -> Version {
    match version {
        WebhookVersion::V1 => Version::V1_0,
        WebhookVersion::V3 => Version::V3_0,
    }
}

/// The body of `event` for `hook`; `None` if the hook's version has no name for it.
pub fn render(world: &World, hook: &Webhook, event: &Event) -> Option<Rendered> {
    let event_type = event.kind.name(hook.version)?;
    let view = PlatformView {
        world,
        version: shapes(hook.version),
    };
    let mut header = Map::new();
    header.insert("created_at".into(), iso_ms(event.at_ms).into());
    header.insert("type".into(), event_type.into());
    header.insert("id".into(), event.id.to_string().into());
    let mut body = Map::new();
    let actor = event
        .actor
        .as_ref()
        .map(|actor| match (actor, hook.version) {
            (Actor::User(user), WebhookVersion::V1) => json!({ "user_id": user }),
            (Actor::User(user), WebhookVersion::V3) => world.identity_basic(user),
            (Actor::Name(name), _) => json!({ "name": name }),
        });
    match (actor, hook.version) {
        (Some(actor), WebhookVersion::V1) => {
            header.insert("actor".into(), actor);
        }
        (Some(actor), WebhookVersion::V3) => {
            body.insert("actor".into(), actor);
        }
        (None, _) => {}
    }
    body.insert("event".into(), Value::Object(header));
    match &event.subject {
        Subject::Message(message) => {
            body.insert("message".into(), view.message(message, None));
        }
        Subject::Conversation(conversation) => {
            body.insert("conversation".into(), view.conversation(conversation, None));
        }
        Subject::Part { message, part } => {
            let rendered = view.message(message, None);
            let part_view = rendered["parts"]
                .as_array()
                .and_then(|parts| {
                    parts
                        .iter()
                        .find(|p| part.id.as_deref().is_some_and(|id| p["id"] == id))
                })
                .cloned()
                .unwrap_or_else(
                    || json!({"id": part.id, "mime_type": part.mime_type, "body": part.body}),
                );
            body.insert("message_part".into(), part_view);
            body.insert(
                "message".into(),
                json!({"id": rendered["id"], "url": rendered["url"]}),
            );
        }
    }
    body.insert("config".into(), Value::Object(hook.config.clone()));
    let body = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    let signature = sign(&hook.secret, &body);
    Some(Rendered {
        event_type,
        body,
        signature,
    })
}

/// Lower-case hex HMAC-SHA1 of `body` keyed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, body);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_2202_hmac_sha1_in_lower_case_hex() {
        // RFC 2202 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
