//! Layer's rules for an identity token, in the order Layer applied them, shared by both faces:
//! the Layer emulator stops at the first rule that fails and answers its message in a 422; the
//! token inspector (`layer-idp token inspect`, `POST /admin/tokens/inspect`) runs every rule it
//! can and reports each, with Layer's `eit_*` reason code and the likely cause of the classic
//! mistakes. Neither face is imported here; keys arrive as a [`KeyVerdict`] the caller looked
//! up (the emulator in its trust table, the inspector in its key set, see [`keys`]).
//!
//! The token is a compact JWS: `base64url(header).base64url(claims).base64url(signature)`.
//!
//! 1. at most [`MAX_TOKEN_BYTES`], three non-empty base64url parts;
//! 2. header: a JSON object without duplicate members, `alg` exactly `RS256` (never `none`,
//!    never an HMAC that would take the public key as its secret), `typ` `JWT` or `JWS`,
//!    `cty` `layer-eit;v=1`, no `crit`, a `kid` that is trusted *for this app*;
//! 3. the RSA-SHA256 signature over the exact signing input, with that key;
//! 4. claims: a JSON object without duplicate members, `iss` the app's provider, `prn` a
//!    non-empty string, `iat` and `exp` integers, `exp` in the future, `iat` not in it,
//!    `nce` a string — whose consumption the emulator does last.
//!
//! The algorithm is pinned here, never read from the token: `alg` is only compared.

mod hints;
mod json;
pub mod keys;
mod report;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Serialize;
use serde_json::{Map, Value};

use json::{DecodeError, decode_object};
pub use report::{Options, Report, inspect};

/// Identity tokens are a few hundred bytes; anything this large is not one.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Layer's `cty` for identity tokens: "Layer External Identity Token, version 1".
pub const LAYER_CONTENT_TYPE: &str = "layer-eit;v=1";

/// How far `iat` may be ahead of the checker's clock.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Layer's reason codes, from its authentication guide's "Error Messages" table.
pub mod reason {
    pub const WRONG_JWS_PART_COUNT: &str = "eit_wrong_jws_part_count";
    pub const MALFORMED_BASE64URL: &str = "eit_malformed_base64url";
    pub const MALFORMED_JSON: &str = "eit_malformed_json";
    pub const HEADER_PARAM_NOT_FOUND: &str = "eit_header_param_not_found";
    pub const HEADER_PARAM_WRONG_TYPE: &str = "eit_header_param_wrong_type";
    pub const HEADER_PARAM_WRONG_VALUE: &str = "eit_header_param_wrong_value";
    pub const KEY_NOT_FOUND: &str = "eit_key_not_found";
    pub const KEY_MALFORMED: &str = "eit_key_malformed";
    pub const SIGNATURE_VERIFICATION_FAILED: &str = "eit_signature_verification_failed";
    pub const PROVIDER_NOT_FOUND: &str = "eit_provider_not_found";
    pub const PROVIDER_NOT_BOUND_TO_APP: &str = "eit_provider_not_bound_to_app";
    pub const CLAIM_NOT_FOUND: &str = "eit_claim_not_found";
    pub const CLAIM_WRONG_TYPE: &str = "eit_claim_wrong_type";
    pub const EXPIRED: &str = "eit_expired";
    pub const NOT_BEFORE: &str = "eit_not_before";
    pub const NONCE_NOT_FOUND: &str = "eit_nonce_not_found";
}

/// One rule's outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rule {
    /// The rule's name: `size`, `structure`, `header`, `alg`, `typ`, `cty`, `crit`, `kid`,
    /// `key`, `signature`, `claims`, `iss`, `prn`, `exp`, `iat`, `expiry`, `not_before`,
    /// `nce`, `nce_format`.
    pub rule: &'static str,
    pub ok: bool,
    /// Layer's `eit_*` reason for this failure; absent where Layer had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<&'static str>,
    pub message: String,
    /// The likely cause, in plain words, when the token looks like a classic mistake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// A check Layer made only implicitly (the nonce's format, which fails as
    /// `eit_nonce_not_found` once the nonce is looked up); the emulator does not stop on it.
    #[serde(skip)]
    pub advisory: bool,
}

impl Rule {
    fn pass(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule,
            ok: true,
            reason_code: None,
            message: message.into(),
            hint: None,
            advisory: false,
        }
    }

    fn fail(rule: &'static str, code: Option<&'static str>, message: impl Into<String>) -> Self {
        Self {
            rule,
            ok: false,
            reason_code: code,
            message: message.into(),
            hint: None,
            advisory: false,
        }
    }

    fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

/// What the key lookup for the token's `kid` found.
pub enum KeyVerdict {
    /// A key trusted for the app; `note` says where it came from, for the report.
    Trusted { key: DecodingKey, note: String },
    /// No such key. `truster` names who looked ("the emulator"); `named` is the ID of a key
    /// whose *name* the `kid` is (the key's file name, say).
    Unknown {
        truster: String,
        known: Vec<String>,
        named: Option<String>,
    },
    /// The key is registered only for other apps: `(app, environment)` pairs, and the app the
    /// token was presented for.
    OtherApps {
        registered: Vec<(String, String)>,
        presented: (String, String),
    },
}

/// What a valid token says about its user.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub user_id: String,
    pub nonce: String,
    pub profile: Profile,
}

/// The optional profile claims Layer applied to the identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<String>,
    pub public_key: Option<String>,
}

/// A token taken through the rules. [`Inspection::start`] checks the structure and header;
/// the caller then looks up the `kid` and calls [`Inspection::finish`].
#[derive(Debug)]
pub struct Inspection {
    rules: Vec<Rule>,
    header: Option<Map<String, Value>>,
    claims: Option<Result<Map<String, Value>, DecodeError>>,
    signing_input: String,
    signature: String,
}

/// Layer user IDs are non-empty strings; control characters would forge log lines and
/// headers, so they are refused, as are absurd lengths.
pub fn valid_user_id(user: &str) -> bool {
    !user.is_empty() && user.len() <= 256 && !user.chars().any(char::is_control)
}

impl Inspection {
    /// The structure and header rules.
    pub fn start(token: &str) -> Self {
        let mut this = Self {
            rules: Vec::new(),
            header: None,
            claims: None,
            signing_input: String::new(),
            signature: String::new(),
        };
        if token.len() > MAX_TOKEN_BYTES {
            this.rules.push(Rule::fail(
                "size",
                None,
                format!(
                    "the token is {} bytes; identity tokens are at most {MAX_TOKEN_BYTES}",
                    token.len()
                ),
            ));
            return this;
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, claims_b64, signature_b64] = parts[..] else {
            this.rules.push(
                Rule::fail(
                    "structure",
                    Some(reason::WRONG_JWS_PART_COUNT),
                    format!(
                        "a JWS has three dot-separated parts; this token has {}",
                        parts.len()
                    ),
                )
                .with_hint(hints::part_count(token, parts.len())),
            );
            return this;
        };
        if header_b64.is_empty() || claims_b64.is_empty() || signature_b64.is_empty() {
            this.rules.push(Rule::fail(
                "structure",
                Some(reason::WRONG_JWS_PART_COUNT),
                "the header, claims and signature must all be non-empty",
            ));
        } else {
            this.rules.push(Rule::pass(
                "structure",
                "three non-empty dot-separated parts",
            ));
        }
        this.signing_input = token[..header_b64.len() + 1 + claims_b64.len()].to_owned();
        this.signature = signature_b64.to_owned();
        if !claims_b64.is_empty() {
            this.claims = Some(decode_object(claims_b64, "claims"));
        }
        if header_b64.is_empty() {
            return this;
        }
        match decode_object(header_b64, "header") {
            Ok(header) => {
                this.rules
                    .push(Rule::pass("header", "a base64url JSON object"));
                this.check_header(&header);
                this.header = Some(header);
            }
            Err(e) => this.rules.push(decode_failure("header", &e)),
        }
        this
    }

    fn check_header(&mut self, header: &Map<String, Value>) {
        let alg = match header.get("alg") {
            Some(Value::String(alg)) if alg == "RS256" => Rule::pass("alg", "RS256"),
            Some(Value::String(alg)) => Rule::fail(
                "alg",
                Some(reason::HEADER_PARAM_WRONG_VALUE),
                format!("alg is {alg:?}; Layer identity tokens must be signed with RS256"),
            )
            .with_hint(hints::alg(alg)),
            other => Rule::fail(
                "alg",
                Some(missing_or_wrong_type(other)),
                "the header has no alg; it must be \"RS256\"",
            ),
        };
        self.rules.push(alg);
        let typ = match header.get("typ") {
            Some(Value::String(typ)) if typ == "JWT" || typ == "JWS" => {
                Rule::pass("typ", typ.clone())
            }
            Some(other) => Rule::fail(
                "typ",
                Some(wrong_value_or_type(other)),
                format!("typ is {other}; it must be \"JWT\" (or \"JWS\")"),
            ),
            None => Rule::fail(
                "typ",
                Some(reason::HEADER_PARAM_NOT_FOUND),
                "the header has no typ; it must be \"JWT\"",
            ),
        };
        self.rules.push(typ);
        let cty = match header.get("cty") {
            Some(Value::String(cty)) if cty == LAYER_CONTENT_TYPE => {
                Rule::pass("cty", LAYER_CONTENT_TYPE)
            }
            Some(other) => Rule::fail(
                "cty",
                Some(wrong_value_or_type(other)),
                format!("cty is {other}; it must be \"{LAYER_CONTENT_TYPE}\""),
            ),
            None => Rule::fail(
                "cty",
                Some(reason::HEADER_PARAM_NOT_FOUND),
                format!("the header has no cty; it must be \"{LAYER_CONTENT_TYPE}\""),
            )
            .with_hint(Some(hints::MISSING_CTY.to_owned())),
        };
        self.rules.push(cty);
        self.rules.push(if header.contains_key("crit") {
            Rule::fail(
                "crit",
                None,
                "the header has crit extensions, which Layer does not support",
            )
        } else {
            Rule::pass("crit", "no critical extensions")
        });
        self.rules.push(match header.get("kid") {
            Some(Value::String(kid)) => Rule::pass("kid", kid.clone()),
            other => Rule::fail(
                "kid",
                Some(missing_or_wrong_type(other)),
                "the header has no kid (string): set it to the Layer key ID",
            ),
        });
    }

    /// The header's `kid`, when it is a string.
    pub fn kid(&self) -> Option<&str> {
        self.header.as_ref()?.get("kid")?.as_str()
    }

    /// A string claim, when the claims decoded (for the inspector, before [`Self::finish`]).
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        match self.claims.as_ref()? {
            Ok(claims) => claims.get(name)?.as_str(),
            Err(_) => None,
        }
    }

    /// The key, signature and claims rules. `key` is `None` when there was no `kid` to look
    /// up; `provider` is the provider ID the app trusts, or why there is none.
    pub fn finish(&mut self, key: Option<KeyVerdict>, provider: Result<String, String>, now: i64) {
        let kid = self.kid().unwrap_or_default().to_owned();
        let key = key.and_then(|verdict| {
            let (rule, key) = key_rule(&kid, verdict);
            self.rules.push(rule);
            key
        });
        if let Some(key) = key
            && !self.signature.is_empty()
        {
            self.rules.push(check_signature(
                &self.signing_input,
                &self.signature,
                &key,
                &kid,
            ));
        }
        let claims = match self.claims.take() {
            Some(Ok(claims)) => claims,
            Some(Err(e)) => {
                self.rules.push(decode_failure("claims", &e));
                return;
            }
            None => return,
        };
        self.rules
            .push(Rule::pass("claims", "a base64url JSON object"));
        self.check_claims(&claims, provider, now);
        self.claims = Some(Ok(claims));
    }

    fn check_claims(
        &mut self,
        claims: &Map<String, Value>,
        provider: Result<String, String>,
        now: i64,
    ) {
        self.rules.push(match (provider, claims.get("iss")) {
            (Err(message), _) => {
                Rule::fail("iss", Some(reason::PROVIDER_NOT_BOUND_TO_APP), message)
            }
            (Ok(provider), Some(Value::String(iss))) if *iss == provider => {
                Rule::pass("iss", iss.clone())
            }
            (Ok(provider), Some(Value::String(iss))) => Rule::fail(
                "iss",
                Some(reason::PROVIDER_NOT_BOUND_TO_APP),
                format!("iss is {iss:?}, but the app belongs to the provider {provider:?}"),
            )
            .with_hint(hints::iss(iss)),
            (Ok(provider), other) => Rule::fail(
                "iss",
                Some(if other.is_some() {
                    reason::CLAIM_WRONG_TYPE
                } else {
                    reason::PROVIDER_NOT_FOUND
                }),
                format!("the claims have no iss (string); it must be {provider:?}"),
            ),
        });
        self.rules.push(match claims.get("prn") {
            Some(Value::String(prn)) if valid_user_id(prn) => {
                Rule::pass("prn", prn.clone()).with_hint(hints::prn(prn))
            }
            Some(Value::String(prn)) => Rule::fail(
                "prn",
                prn.is_empty().then_some(reason::CLAIM_NOT_FOUND),
                "prn must be a non-empty user ID without control characters",
            ),
            Some(other) => Rule::fail(
                "prn",
                Some(reason::CLAIM_WRONG_TYPE),
                format!("prn is {other}; it must be a string user ID"),
            ),
            None => Rule::fail(
                "prn",
                Some(reason::CLAIM_NOT_FOUND),
                "the claims have no prn (the user ID)",
            ),
        });
        let exp = integer_claim(claims, "exp");
        let iat = integer_claim(claims, "iat");
        let (exp, iat) = (exp.ok(), iat.ok());
        self.rules.push(integer_rule(claims, "exp"));
        self.rules.push(integer_rule(claims, "iat"));
        if let Some(exp) = exp {
            self.rules.push(if exp <= now {
                Rule::fail(
                    "expiry",
                    Some(reason::EXPIRED),
                    format!("the token expired at {exp} (now {now})"),
                )
                .with_hint(hints::expired(exp, iat, now))
            } else {
                Rule::pass("expiry", format!("exp {exp} is after now ({now})"))
                    .with_hint(hints::exp_in_millis(exp, now))
            });
        }
        if let Some(iat) = iat {
            self.rules.push(if iat > now + CLOCK_SKEW_SECS {
                Rule::fail(
                    "not_before",
                    Some(reason::NOT_BEFORE),
                    format!(
                        "iat {iat} is in the future (now {now}); iat and exp are Unix seconds, UTC"
                    ),
                )
                .with_hint(hints::iat_ahead(iat, exp, now))
            } else {
                Rule::pass(
                    "not_before",
                    format!(
                        "iat {iat} is not after now ({now}, {CLOCK_SKEW_SECS} s of skew allowed)"
                    ),
                )
            });
        }
        match claims.get("nce") {
            Some(Value::String(nce)) if !nce.is_empty() => {
                self.rules
                    .push(Rule::pass("nce", "present; Layer consumes it last"));
                self.rules.push(nonce_format(nce));
            }
            other => self.rules.push(Rule::fail(
                "nce",
                Some(match other {
                    Some(Value::String(_)) | None => reason::CLAIM_NOT_FOUND,
                    Some(_) => reason::CLAIM_WRONG_TYPE,
                }),
                "the claims have no nce: put the nonce from POST /nonces in it",
            )),
        }
    }

    /// Every rule checked, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first failure of a rule Layer applied (what the emulator answers).
    pub fn first_failure(&self) -> Option<&Rule> {
        self.rules.iter().find(|r| !r.ok && !r.advisory)
    }

    /// Whether every rule passed, the advisory ones included.
    pub fn valid(&self) -> bool {
        self.rules.iter().all(|r| r.ok)
    }

    /// The verified token, or the first failure's message.
    pub fn into_verified(self) -> Result<VerifiedToken, String> {
        if let Some(rule) = self.first_failure() {
            return Err(rule.message.clone());
        }
        let Some(Ok(claims)) = self.claims else {
            return Err("the claims were not checked".to_owned());
        };
        let text = |name: &str| match claims.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        Ok(VerifiedToken {
            user_id: text("prn").unwrap_or_default(),
            nonce: text("nce").unwrap_or_default(),
            profile: Profile {
                display_name: text("display_name"),
                first_name: text("first_name"),
                last_name: text("last_name"),
                avatar_url: text("avatar_url"),
                public_key: text("public_key"),
            },
        })
    }
}

fn decode_failure(what: &'static str, e: &DecodeError) -> Rule {
    let code = match e {
        DecodeError::Base64(_) => reason::MALFORMED_BASE64URL,
        DecodeError::Json(_) => reason::MALFORMED_JSON,
    };
    Rule::fail(what, Some(code), e.message()).with_hint(hints::decode(e))
}

fn missing_or_wrong_type(value: Option<&Value>) -> &'static str {
    match value {
        None => reason::HEADER_PARAM_NOT_FOUND,
        Some(_) => reason::HEADER_PARAM_WRONG_TYPE,
    }
}

fn wrong_value_or_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => reason::HEADER_PARAM_WRONG_VALUE,
        _ => reason::HEADER_PARAM_WRONG_TYPE,
    }
}

fn key_rule(kid: &str, verdict: KeyVerdict) -> (Rule, Option<DecodingKey>) {
    match verdict {
        KeyVerdict::Trusted { key, note } => (Rule::pass("key", note), Some(key)),
        KeyVerdict::Unknown {
            truster,
            known,
            named,
        } => {
            let code = if hints::looks_like_key_id(kid) {
                reason::KEY_NOT_FOUND
            } else {
                reason::KEY_MALFORMED
            };
            let rule = Rule::fail(
                "key",
                Some(code),
                format!(
                    "kid {kid:?} is not a key {truster} trusts (known: {})",
                    known.join(", ")
                ),
            )
            .with_hint(hints::unknown_kid(kid, named.as_deref()));
            (rule, None)
        }
        KeyVerdict::OtherApps {
            registered,
            presented,
        } => {
            let listed = registered
                .iter()
                .map(|(app, env)| format!("{app} ({env})"))
                .collect::<Vec<_>>()
                .join(", ");
            let rule = Rule::fail(
                "key",
                Some(reason::KEY_NOT_FOUND),
                format!(
                    "kid {kid:?} is registered for {listed}, but the token was presented \
                     for {} ({}): a staging/production mix-up? Sign with the key registered \
                     for this app, or send the app_id the key belongs to",
                    presented.0, presented.1
                ),
            )
            .with_hint(hints::other_app(&registered, &presented));
            (rule, None)
        }
    }
}

fn check_signature(signing_input: &str, signature: &str, key: &DecodingKey, kid: &str) -> Rule {
    match jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), key, Algorithm::RS256) {
        Ok(true) => Rule::pass("signature", "RS256 signature verifies"),
        Ok(false) => Rule::fail(
            "signature",
            Some(reason::SIGNATURE_VERIFICATION_FAILED),
            format!("the signature does not verify with the public key registered for kid {kid:?}"),
        )
        .with_hint(Some(hints::BAD_SIGNATURE.to_owned())),
        Err(e) => Rule::fail(
            "signature",
            Some(reason::SIGNATURE_VERIFICATION_FAILED),
            format!("the signature could not be checked: {e}"),
        ),
    }
}

fn integer_claim(claims: &Map<String, Value>, name: &str) -> Result<i64, String> {
    match claims.get(name) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("{name} must be an integer number of Unix seconds")),
        Some(other) => Err(format!(
            "{name} is {other}; it must be integer Unix seconds"
        )),
        None => Err(format!("the claims have no {name}")),
    }
}

fn integer_rule(claims: &Map<String, Value>, name: &'static str) -> Rule {
    match integer_claim(claims, name) {
        Ok(value) => Rule::pass(name, value.to_string()),
        Err(message) => {
            let code = if claims.contains_key(name) {
                reason::CLAIM_WRONG_TYPE
            } else {
                reason::CLAIM_NOT_FOUND
            };
            Rule::fail(name, Some(code), message)
                .with_hint(hints::non_integer_time(claims.get(name)))
        }
    }
}

/// Layer's nonces are base64 (`+`, `/`, `=` included): visible ASCII, no spaces. A nonce
/// outside that was never issued, so Layer would answer `eit_nonce_not_found`.
fn nonce_format(nce: &str) -> Rule {
    let rule = if nce.bytes().all(|b| b.is_ascii_graphic()) {
        Rule::pass("nce_format", "visible ASCII, as Layer issues nonces")
    } else {
        Rule::fail(
            "nce_format",
            Some(reason::NONCE_NOT_FOUND),
            "nce has characters Layer's nonces never contain (spaces, control or non-ASCII \
             characters), so Layer will not find it",
        )
        .with_hint(hints::nonce(nce))
    };
    Rule {
        advisory: true,
        ..rule
    }
}

#[cfg(test)]
mod tests;
