//! Properties of the parsers that a fuzzer, which only sees one input at a time, cannot
//! state: round trips between two forms of a value, and what must hold for every change to
//! a valid input. Case counts stay moderate so the suite stays fast.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use aws_lc_rs::rsa::{KeyPair, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{PatchOp, conversation_patch, parse_form, parse_json};
use crate::app_id::{AppId, ClientAppId, Environment};
use crate::domain::{Email, Nonce};
use crate::identity_token::{Inspection, KeyVerdict};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// A form field's value as a browser or an SDK would send it: any text.
fn form_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[ -~]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

/// A form body's fields: plain `name=value` or one-level `group[name]=value`. A plain name
/// has no `[` (that would start a group); a member name has neither bracket.
fn form_fields() -> impl Strategy<Value = Map<String, Value>> {
    let field = prop_oneof![
        form_value(),
        prop::collection::btree_map("[^\\[\\]]{1,8}", form_value(), 1..4)
            .prop_map(|group| Value::Object(group.into_iter().collect())),
    ];
    prop::collection::btree_map("[^\\[]{0,8}", field, 0..6)
        .prop_map(|fields: BTreeMap<String, Value>| fields.into_iter().collect())
}

/// Percent-encodes a form component; `plus` chooses `+` or `%20` for spaces, as clients differ.
fn encode_component(s: &str, plus: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b' ' if plus => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The form body a client would send for `fields`, brackets left unencoded or encoded.
fn encode_form(fields: &Map<String, Value>, plus: bool, raw_brackets: bool) -> String {
    let mut pairs = Vec::new();
    for (name, value) in fields {
        match value {
            Value::String(v) => pairs.push(format!(
                "{}={}",
                encode_component(name, plus),
                encode_component(v, plus)
            )),
            Value::Object(group) => {
                for (member, v) in group {
                    let (open, close) = if raw_brackets {
                        ("[", "]")
                    } else {
                        ("%5B", "%5D")
                    };
                    pairs.push(format!(
                        "{}{open}{}{close}={}",
                        encode_component(name, plus),
                        encode_component(member, plus),
                        encode_component(v.as_str().unwrap(), plus)
                    ));
                }
            }
            _ => unreachable!("forms hold strings and groups of strings"),
        }
    }
    pairs.join("&")
}

proptest! {
    #![proptest_config(config(256))]

    /// A form → its JSON object → that object sent as JSON → the same object → sent as a
    /// form again → the same object.
    #[test]
    fn forms_round_trip_through_json(
        fields in form_fields(),
        plus in any::<bool>(),
        raw_brackets in any::<bool>(),
    ) {
        let form = encode_form(&fields, plus, raw_brackets);
        let parsed = parse_form(form.as_bytes()).map_err(|e| e.code()).unwrap();
        prop_assert_eq!(&parsed, &Value::Object(fields.clone()));
        let json = serde_json::to_vec(&parsed).unwrap();
        let from_json = parse_json(&json).map_err(|e| e.code()).unwrap();
        prop_assert_eq!(&from_json, &parsed);
        let again = encode_form(from_json.as_object().unwrap(), !plus, !raw_brackets);
        prop_assert_eq!(parse_form(again.as_bytes()).map_err(|e| e.code()).unwrap(), parsed);
    }

    /// Sending any field twice, plain or in a group, is refused: no parser in front of the
    /// identity provider can read a different value than it does.
    #[test]
    fn a_repeated_form_field_is_always_refused(
        fields in form_fields().prop_filter("non-empty", |f| !f.is_empty()),
        pick in any::<prop::sample::Index>(),
        plus in any::<bool>(),
    ) {
        let form = encode_form(&fields, plus, true);
        let pairs: Vec<&str> = form.split('&').collect();
        let repeated = pairs[pick.index(pairs.len())];
        let body = format!("{form}&{repeated}");
        prop_assert!(parse_form(body.as_bytes()).is_err());
    }

    /// An e-mail's uniqueness key is stable: parsing the key gives the same key, so two
    /// addresses that differ only in case or in Unicode composition are one account. Letters
    /// and combining marks are mixed freely, capitals with marks that have no precomposed
    /// capital (J + caron) included.
    #[test]
    fn an_email_key_is_its_own_key(
        local in prop::collection::vec(prop_oneof![
            "[a-zA-Z0-9._+]",
            "[\u{c0}-\u{24f}\u{370}-\u{3ff}\u{400}-\u{4ff}\u{1e00}-\u{1eff}\u{130}\u{131}\u{212a}\u{212b}]",
            "[A-Z\u{130}\u{1e9e}][\u{300}-\u{36f}]{1,2}",
        ], 1..8).prop_map(|parts| parts.concat()),
        domain in "[a-zA-Z\u{df}\u{130}\u{1e9e}]{1,8}\\.[a-z]{2,4}",
    ) {
        let email = Email::parse(&format!("{local}@{domain}")).unwrap();
        if let Ok(again) = Email::parse(email.key()) {
            prop_assert_eq!(again.key(), email.key());
        }
    }

    /// Nonces are kept byte for byte: what parses prints as given, and exactly the printable
    /// ASCII strings of 1 to 512 bytes parse.
    #[test]
    fn nonces_parse_exactly_printable_ascii_and_print_as_given(raw in prop_oneof![
        "[!-~]{1,64}",
        "[A-Za-z0-9+/=]{512,513}",
        any::<String>(),
    ]) {
        let accepted = !raw.is_empty()
            && raw.len() <= Nonce::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_graphic());
        match Nonce::parse(&raw) {
            Ok(nonce) => {
                prop_assert!(accepted);
                prop_assert_eq!(nonce.as_str(), raw.as_str());
            }
            Err(_) => prop_assert!(!accepted),
        }
    }

    /// An app ID prints in its canonical form, which parses back to it, in any case.
    #[test]
    fn app_ids_print_and_parse_back(bits in any::<u128>(), production in any::<bool>(), upper in any::<bool>()) {
        let app = AppId {
            environment: if production { Environment::Production } else { Environment::Staging },
            uuid: Uuid::from_u128(bits),
        };
        let printed = app.to_string();
        prop_assert_eq!(AppId::parse(&printed), Ok(app));
        let bare = app.uuid.hyphenated().to_string();
        let bare = if upper { bare.to_uppercase() } else { bare };
        let client = ClientAppId::parse(&bare).unwrap();
        prop_assert!(client.names(&app));
        prop_assert_eq!(ClientAppId::parse(&client.to_string()), Ok(client));
    }

    /// A metadata path's escapes (`\.` inside a key, `\\` for a backslash) round-trip: the
    /// keys a client escapes are the keys the patch sets.
    #[test]
    fn metadata_paths_unescape_to_the_keys_escaped(keys in prop::collection::vec("[a-z.\\\\ ]{1,6}", 1..=16)) {
        let escaped: Vec<String> = keys
            .iter()
            .map(|k| k.replace('\\', "\\\\").replace('.', "\\."))
            .collect();
        let property = format!("metadata.{}", escaped.join("."));
        let ops = conversation_patch(&json!([{"operation": "set", "property": property, "value": "v"}]), 25)
            .map_err(|e| e.body())
            .unwrap();
        match &ops[..] {
            [PatchOp::SetMetadata(path, value)] => {
                prop_assert_eq!(path, &keys);
                prop_assert_eq!(value, &json!("v"));
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }
}

/// A key for the token properties, made once.
static KEY: LazyLock<(KeyPair, DecodingKey)> = LazyLock::new(|| {
    let generated = crate::idp::keys::generate_key().unwrap();
    let pair = KeyPair::from_pkcs8(pem::parse(&generated.private_pem).unwrap().contents()).unwrap();
    let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let key = DecodingKey::from_rsa_raw_components(&public.n, &public.e);
    (pair, key)
});

const PROVIDER: &str = "layer:///providers/p";
const NOW: i64 = 1_800_000_000;

fn signed_token(prn: &str, nce: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "cty": "layer-eit;v=1", "kid": "k"});
    let claims = json!({"iss": PROVIDER, "prn": prn, "iat": NOW - 1, "exp": NOW + 600, "nce": nce});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; KEY.0.public_modulus_len()];
    KEY.0
        .sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// What the emulator does with a token whose `kid` it trusts.
fn verify(token: &str) -> Result<crate::identity_token::VerifiedToken, String> {
    let mut inspection = Inspection::start(token);
    if let Some(rule) = inspection.first_failure() {
        return Err(rule.message.clone());
    }
    let verdict = KeyVerdict::Trusted {
        key: KEY.1.clone(),
        note: "test key".to_owned(),
    };
    inspection.finish(Some(verdict), Ok(PROVIDER.to_owned()), NOW);
    inspection.into_verified()
}

proptest! {
    #![proptest_config(config(48))]

    /// A token signed over its bytes is accepted for its user and nonce; the same token with
    /// any byte of its signature changed is refused, as is one whose signature text is
    /// changed anywhere.
    #[test]
    fn a_changed_signature_is_never_accepted(
        prn in "[A-Za-z0-9@._-]{1,24}",
        nce in "[A-Za-z0-9+/=]{8,44}",
        byte in any::<prop::sample::Index>(),
        xor in 1u8..,
        char_at in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_-]",
    ) {
        let token = signed_token(&prn, &nce);
        let verified = verify(&token).unwrap();
        prop_assert_eq!(&verified.user_id, &prn);
        prop_assert_eq!(&verified.nonce, &nce);

        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let i = byte.index(bytes.len());
        bytes[i] ^= xor;
        let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        prop_assert!(verify(&flipped).is_err(), "byte {} ^ {:#x} accepted", i, xor);

        let mut text: Vec<char> = signature.chars().collect();
        let j = char_at.index(text.len());
        let new = replacement.chars().next().unwrap();
        prop_assume!(text[j] != new);
        text[j] = new;
        let edited = format!("{input}.{}", text.into_iter().collect::<String>());
        prop_assert!(verify(&edited).is_err(), "signature character {} -> {:?} accepted", j, new);
    }
}
