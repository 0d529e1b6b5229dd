//! The identity-token rules as the emulator applies them (`mock_layer/identity_token.rs`:
//! structure and header, then the key, signature and claims), on near-valid tokens.
//!
//! The input chooses each header member and claim (the right value, missing, or a wrong
//! value or type), the key lookup's verdict, how the token is encoded and what happens to the
//! signature; the token is then signed with a fixed RSA test key, so the signature can be
//! valid and every rule past it is reached.
//!
//! Beyond "never panics": a token is accepted only if it was signed over exactly the bytes
//! checked, with a key trusted for the app, and the verified user and nonce are the claims'.

#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use layer_idp::identity_token::{Inspection, KeyVerdict};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const KID: &str = "fuzz-key";
const PROVIDER: &str = "layer:///providers/6f4a2b1c-0000-4000-8000-000000000001";
const NOW: i64 = 1_800_000_000;

/// A key generated when the fuzzer starts and used nowhere else (no private key is
/// committed; an input describes how a token is built, so the corpus needs no fixed key).
static SIGNING: LazyLock<KeyPair> =
    LazyLock::new(|| KeyPair::generate(KeySize::Rsa2048).unwrap());
static VERIFYING: LazyLock<DecodingKey> = LazyLock::new(|| {
    let public = PublicKeyComponents::<Vec<u8>>::from(SIGNING.public_key());
    DecodingKey::from_rsa_raw_components(&public.n, &public.e)
});

/// One header member or claim.
#[derive(Arbitrary, Debug, Clone)]
enum Slot {
    Good,
    Missing,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Array(Vec<String>),
    Object,
}

/// A time claim: the right kind of value, or a classic mistake.
#[derive(Arbitrary, Debug, Clone)]
enum Time {
    /// Seconds from `NOW`.
    Offset(i32),
    /// Milliseconds, the classic `Date.now()`.
    Millis(i32),
    Other(Slot),
}

#[derive(Arbitrary, Debug)]
enum Verdict {
    Trusted,
    Unknown { named: Option<String> },
    OtherApps,
}

#[derive(Arbitrary, Debug)]
enum SignatureMode {
    Valid,
    /// Valid, then one byte of the signature changed (`xor` is made non-zero).
    FlipByte {
        index: u16,
        xor: u8,
    },
    Truncated {
        keep: u16,
    },
    /// A valid signature over other bytes than the token's.
    OverOther(Vec<u8>),
    Raw(Vec<u8>),
    Empty,
}

#[derive(Arbitrary, Debug)]
enum Encoding {
    Plain,
    /// Padded base64url for the header or claims.
    Padded {
        claims: bool,
    },
    /// Standard base64 (`+`, `/`, `=`) for the header or claims.
    Standard {
        claims: bool,
    },
    ExtraPart(String),
    DropSignature,
    /// Text spliced in at a byte offset (after signing).
    Splice {
        at: u16,
        text: String,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    alg: Slot,
    typ: Slot,
    cty: Slot,
    kid: Slot,
    crit: bool,
    header_extra: Vec<(String, String)>,
    duplicate_header_member: Option<String>,
    iss: Slot,
    prn: Slot,
    iat: Time,
    exp: Time,
    nce: Slot,
    profile: Vec<(u8, Slot)>,
    duplicate_claim: Option<String>,
    /// Raw text instead of a JSON object, for the header or the claims.
    raw_header: Option<String>,
    raw_claims: Option<String>,
    provider_known: bool,
    verdict: Verdict,
    encoding: Encoding,
    signature: SignatureMode,
}

fn value(slot: &Slot, good: Value) -> Option<Value> {
    Some(match slot {
        Slot::Good => good,
        Slot::Missing => return None,
        Slot::Str(s) => Value::String(s.clone()),
        Slot::Int(i) => json!(i),
        Slot::Float(f) => json!(f),
        Slot::Bool(b) => json!(b),
        Slot::Null => Value::Null,
        Slot::Array(items) => json!(items),
        Slot::Object => json!({"a": 1}),
    })
}

fn time(t: &Time, good: i64) -> Option<Value> {
    match t {
        Time::Offset(s) => Some(json!(NOW + i64::from(*s))),
        Time::Millis(s) => Some(json!((NOW + i64::from(*s)) * 1000)),
        Time::Other(slot) => value(slot, json!(good)),
    }
}

/// A JSON object's text, with one member repeated when asked (serde_json can't make that).
fn object_text(members: &Map<String, Value>, duplicate: Option<&String>) -> String {
    let mut text = serde_json::to_string(members).unwrap();
    if let Some(name) = duplicate {
        let repeated = format!(",{}:\"dup\"}}", serde_json::to_string(name).unwrap());
        if members.is_empty() {
            text = format!("{{{}", &repeated[1..]);
        } else {
            text.pop();
            text.push_str(&repeated);
        }
    }
    text
}

fn encode(text: &str, padded: bool, standard: bool) -> String {
    if standard {
        STANDARD.encode(text)
    } else if padded {
        let mut s = URL_SAFE_NO_PAD.encode(text);
        while s.len() % 4 != 0 {
            s.push('=');
        }
        s
    } else {
        URL_SAFE_NO_PAD.encode(text)
    }
}

fn sign(input: &[u8]) -> String {
    let mut signature = vec![0; SIGNING.public_modulus_len()];
    SIGNING
        .sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input,
            &mut signature,
        )
        .unwrap();
    URL_SAFE_NO_PAD.encode(signature)
}

fuzz_target!(|input: Input| {
    let mut header = Map::new();
    for (name, slot, good) in [
        ("alg", &input.alg, "RS256"),
        ("typ", &input.typ, "JWT"),
        ("cty", &input.cty, "layer-eit;v=1"),
        ("kid", &input.kid, KID),
    ] {
        if let Some(v) = value(slot, json!(good)) {
            header.insert(name.to_owned(), v);
        }
    }
    if input.crit {
        header.insert("crit".to_owned(), json!(["exp"]));
    }
    for (k, v) in input.header_extra.iter().take(4) {
        header.insert(k.clone(), json!(v));
    }
    let mut claims = Map::new();
    for (name, slot, good) in [
        ("iss", &input.iss, PROVIDER),
        ("prn", &input.prn, "user-1"),
        ("nce", &input.nce, "bm9uY2U+Lz0="),
    ] {
        if let Some(v) = value(slot, json!(good)) {
            claims.insert(name.to_owned(), v);
        }
    }
    if let Some(v) = time(&input.iat, NOW - 5) {
        claims.insert("iat".to_owned(), v);
    }
    if let Some(v) = time(&input.exp, NOW + 600) {
        claims.insert("exp".to_owned(), v);
    }
    const PROFILE: [&str; 5] = [
        "display_name",
        "first_name",
        "last_name",
        "avatar_url",
        "public_key",
    ];
    for (which, slot) in input.profile.iter().take(5) {
        if let Some(v) = value(slot, json!("x")) {
            claims.insert(PROFILE[usize::from(*which) % PROFILE.len()].to_owned(), v);
        }
    }

    let header_text = input
        .raw_header
        .clone()
        .unwrap_or_else(|| object_text(&header, input.duplicate_header_member.as_ref()));
    let claims_text = input
        .raw_claims
        .clone()
        .unwrap_or_else(|| object_text(&claims, input.duplicate_claim.as_ref()));
    let (pad_header, pad_claims, std_header, std_claims) = match input.encoding {
        Encoding::Padded { claims } => (!claims, claims, false, false),
        Encoding::Standard { claims } => (false, false, !claims, claims),
        _ => (false, false, false, false),
    };
    let signing_input = format!(
        "{}.{}",
        encode(&header_text, pad_header, std_header),
        encode(&claims_text, pad_claims, std_claims)
    );
    let mut signature_intact = false;
    let signature = match &input.signature {
        SignatureMode::Valid => {
            signature_intact = true;
            sign(signing_input.as_bytes())
        }
        SignatureMode::FlipByte { index, xor } => {
            let mut bytes = URL_SAFE_NO_PAD
                .decode(sign(signing_input.as_bytes()))
                .unwrap();
            let i = usize::from(*index) % bytes.len();
            bytes[i] ^= (*xor).max(1);
            URL_SAFE_NO_PAD.encode(bytes)
        }
        SignatureMode::Truncated { keep } => {
            let mut s = sign(signing_input.as_bytes());
            s.truncate(usize::from(*keep) % s.len());
            s
        }
        SignatureMode::OverOther(other) => {
            signature_intact = other.as_slice() == signing_input.as_bytes();
            sign(other)
        }
        SignatureMode::Raw(bytes) => URL_SAFE_NO_PAD.encode(bytes),
        SignatureMode::Empty => String::new(),
    };
    let mut token = format!("{signing_input}.{signature}");
    match &input.encoding {
        Encoding::ExtraPart(extra) => {
            token.push('.');
            token.push_str(extra);
        }
        Encoding::DropSignature => token = signing_input.clone(),
        Encoding::Splice { at, text } if !text.is_empty() => {
            let mut at = usize::from(*at) % (token.len() + 1);
            while !token.is_char_boundary(at) {
                at -= 1;
            }
            token.insert_str(at, text);
            // Spliced into the signature, the signing input is unchanged and the signature
            // now differs; either way the token is no longer the one signed.
            signature_intact = false;
        }
        _ => {}
    }
    let trusted = matches!(input.verdict, Verdict::Trusted);

    // What `mock_layer::identity_token::verify` does, with the trust table's answer chosen.
    let mut inspection = Inspection::start(&token);
    let stopped_early = inspection.first_failure().is_some();
    if !stopped_early {
        let verdict = match &input.verdict {
            Verdict::Trusted => KeyVerdict::Trusted {
                key: VERIFYING.clone(),
                note: "trusted".to_owned(),
            },
            Verdict::Unknown { named } => KeyVerdict::Unknown {
                truster: "the fuzzer".to_owned(),
                known: vec![KID.to_owned()],
                named: named.clone(),
            },
            Verdict::OtherApps => KeyVerdict::OtherApps {
                registered: vec![(
                    "layer:///apps/production/x".to_owned(),
                    "production".to_owned(),
                )],
                presented: ("layer:///apps/staging/x".to_owned(), "staging".to_owned()),
            },
        };
        let provider = if input.provider_known {
            Ok(PROVIDER.to_owned())
        } else {
            Err("no provider".to_owned())
        };
        inspection.finish(Some(verdict), provider, NOW);
    }
    // The report serialises whatever the rules said.
    let _ = serde_json::to_string(inspection.rules()).unwrap();
    let valid = inspection.valid();
    if let Ok(verified) = inspection.into_verified() {
        assert!(!stopped_early);
        assert!(trusted, "accepted without a trusted key");
        assert!(input.provider_known, "accepted without a provider");
        assert!(
            signature_intact,
            "accepted a token whose signature is not over its bytes"
        );
        if input.raw_claims.is_none() && input.duplicate_claim.is_none() {
            assert_eq!(claims.get("prn"), Some(&json!(verified.user_id)));
            assert_eq!(claims.get("nce"), Some(&json!(verified.nonce)));
            assert_eq!(claims.get("iss"), Some(&json!(PROVIDER)));
        }
    } else {
        assert!(!valid, "valid() but into_verified() refused");
    }
});
