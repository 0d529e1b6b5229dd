//! Layer's identifiers and the emulator's random tokens.
//!
//! Apps are `layer:///apps/{staging|production}/<uuid>`; the Client API also accepts the bare
//! UUID. Identities are `layer:///identities/<user id, percent-encoded>`; conversations,
//! messages, content, announcements and channels are `layer:///<kind>/<uuid>`, and the SDK chooses the UUIDs itself.
//! Tokens (nonces, session tokens, upload and download secrets) are URL-safe base64 of
//! random bytes, because the SDK puts the session token unencoded into a query string.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use uuid::Uuid;

/// App IDs are shared with the identity provider, which reads them from clients too.
pub use crate::app_id::{AppId, Environment, parse_uuid};

/// The kinds of object that have `layer:///<kind>/<uuid>` IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Conversations,
    Messages,
    Content,
    Announcements,
    Channels,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Conversations => "layer:///conversations/",
            Kind::Messages => "layer:///messages/",
            Kind::Content => "layer:///content/",
            Kind::Announcements => "layer:///announcements/",
            Kind::Channels => "layer:///channels/",
        }
    }
}

/// `layer:///<kind>/<uuid>` for a UUID.
pub fn object_id(kind: Kind, uuid: &Uuid) -> String {
    format!("{}{}", kind.prefix(), uuid.hyphenated())
}

/// The UUID of `layer:///<kind>/<uuid>`; a bare UUID is accepted too (the docs allow it in
/// `from_id` and paths).
pub fn parse_object_id(kind: Kind, s: &str) -> Option<Uuid> {
    parse_uuid(s.strip_prefix(kind.prefix()).unwrap_or(s))
}

/// What the SDK's `strictEncodeURI` leaves alone: `A-Z a-z 0-9 - _ . *`. It is
/// `encodeURIComponent` (which also spares `! ~ ' ( )`) with `! ~ ' ( )` escaped after all —
/// but not `*`, so `*` stays literal here too, or an identity ID the emulator hands out
/// would differ from the one the SDK builds for the same user.
const USER_ID_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

/// `layer:///identities/<user id>` with the user ID percent-encoded as the SDK does.
pub fn identity_id(user_id: &str) -> String {
    format!("layer:///identities/{}", encode_user_id(user_id))
}

pub fn encode_user_id(user_id: &str) -> String {
    utf8_percent_encode(user_id, USER_ID_ESCAPES).to_string()
}

/// The user ID in `layer:///identities/<id>`, or a bare user ID as given.
pub fn user_id_from_identity(s: &str) -> Option<String> {
    let user = match s.strip_prefix("layer:///identities/") {
        Some(encoded) => percent_decode_str(encoded).decode_utf8().ok()?.into_owned(),
        None if s.starts_with("layer:///") => return None,
        None => s.to_owned(),
    };
    valid_user_id(&user).then_some(user)
}

/// The rule is Layer's identity-token rule for `prn`, shared with the token inspector.
pub use crate::identity_token::valid_user_id;

/// `n` random bytes as URL-safe base64 without padding (`[A-Za-z0-9_-]`).
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The system RNG failing is not recoverable; a UUIDv4 (also from the OS RNG) is the
    // fallback so a request never panics for it.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = Uuid::new_v4().as_bytes().repeat(n.div_ceil(16));
        bytes.truncate(n);
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_keep_their_environment() {
        let id = "layer:///apps/production/4f6e0c84-0a0d-11e5-9d4b-0242ac110002";
        let app = AppId::parse(id).unwrap();
        assert_eq!(app.environment, Environment::Production);
        assert_eq!(app.to_string(), id);
        assert!(AppId::parse("layer:///apps/dev/4f6e0c84-0a0d-11e5-9d4b-0242ac110002").is_err());
        assert!(AppId::parse("layer:///apps/staging/nope").is_err());
        let upper = "layer:///apps/production/4F6E0C84-0A0D-11E5-9D4B-0242AC110002";
        assert_eq!(
            AppId::parse(upper).unwrap(),
            app,
            "one app, however its UUID is cased"
        );
    }

    #[test]
    fn identity_ids_round_trip_like_the_sdk_encodes_them() {
        // What `strictEncodeURI` in layer-websdk's client-utils.js makes of the same IDs.
        let cases = [
            (
                "fred.flinstone@x.com/(1)",
                "fred.flinstone%40x.com%2F%281%29",
            ),
            ("a*b!c~d'e", "a*b%21c%7Ed%27e"),
            ("é ü", "%C3%A9%20%C3%BC"),
        ];
        for (user, encoded) in cases {
            let id = identity_id(user);
            assert_eq!(id, format!("layer:///identities/{encoded}"), "{user}");
            assert_eq!(user_id_from_identity(&id).as_deref(), Some(user), "{user}");
        }
        assert_eq!(user_id_from_identity("bob").as_deref(), Some("bob"));
        assert_eq!(user_id_from_identity("layer:///conversations/x"), None);
        assert_eq!(user_id_from_identity(""), None);
    }

    #[test]
    fn tokens_are_url_safe_and_long_enough() {
        let token = random_token(32);
        assert_eq!(token.len(), 43);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(token, random_token(32));
    }
}
