//! Parsed values of the identity provider's domain: user IDs, e-mail addresses, passwords,
//! nonces and profile fields.
//!
//! Each type is made by `parse`, which either returns a value that satisfies every rule or a
//! [`Invalid`] that says what to fix; nothing past a request handler handles a raw `String`
//! for these. The rules follow Layer's Identity limits (display and person names ≤ 128
//! characters, avatar URLs ≤ 1024) and NIST SP 800-63B for passwords. This module knows no
//! HTTP, no SQL and no configuration file; limits that operators tune arrive as arguments.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

/// Why a value was refused, phrased for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A user's stable ID: the `prn` of every identity token and the `user_id` Layer knows.
///
/// Generated as a UUID for new accounts; imported accounts keep the ID their old system
/// gave them, because Layer conversations name participants by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 255;

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() {
            return Err(Invalid::new("id", "must not be empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(Invalid::new(
                "id",
                format!("must be at most {} bytes", Self::MAX_LEN),
            ));
        }
        if raw.trim() != raw || has_control_chars(raw) {
            return Err(Invalid::new(
                "id",
                "must not start or end with whitespace or contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address as the user typed it, plus the key it is unique under.
///
/// Uniqueness is case-insensitive. The key is computed here, in Rust, rather than with SQL
/// `LOWER()`: SQLite's `LOWER` folds ASCII only while PostgreSQL's folds Unicode, and the two
/// databases must agree on who is a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    key: String,
}

impl Email {
    /// RFC 5321 limits a forward path to 256 octets, so an address to 254.
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let address = raw.trim();
        if address.is_empty() {
            return Err(Invalid::new("email", "must not be empty"));
        }
        if address.len() > Self::MAX_LEN {
            return Err(Invalid::new(
                "email",
                format!("must be at most {} bytes", Self::MAX_LEN),
            ));
        }
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new(
                "email",
                "must not contain spaces or control characters",
            ));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(Invalid::new("email", "must look like name@example.com"));
        };
        if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.')
        {
            return Err(Invalid::new("email", "must look like name@example.com"));
        }
        Ok(Self {
            address: address.to_owned(),
            // Normalised again after lower-casing: a capital with no precomposed form (`J` +
            // caron) lower-cases to a pair that does compose (`ǰ`), and the key must be
            // the key of its own lower-case spelling.
            key: address
                .nfc()
                .collect::<String>()
                .to_lowercase()
                .nfc()
                .collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The value the uniqueness constraint compares.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A password that satisfies the policy. NIST SP 800-63B: a minimum length, no composition
/// rules, any Unicode (normalised to NFKC so the same passphrase typed on two keyboards
/// matches), long passphrases welcome. The maximum only bounds the work one request can ask
/// for.
#[derive(Clone)]
pub struct Password(SecretString);

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 8,
            max_chars: 1024,
        }
    }
}

impl Password {
    /// Parses a new password against the policy.
    pub fn parse(raw: &str, policy: PasswordPolicy) -> Result<Self, Invalid> {
        let normalized: String = raw.nfkc().collect();
        let chars = normalized.chars().count();
        if chars < policy.min_chars {
            return Err(Invalid::new(
                "password",
                format!("must be at least {} characters", policy.min_chars),
            ));
        }
        if chars > policy.max_chars {
            return Err(Invalid::new(
                "password",
                format!("must be at most {} characters", policy.max_chars),
            ));
        }
        Ok(Self(SecretString::from(normalized)))
    }

    /// A password offered at login. Only the upper bound applies: a stored account may
    /// predate a stricter minimum, and a too-short guess must cost the same hash as any other.
    pub fn candidate(raw: &str, policy: PasswordPolicy) -> Result<Self, Invalid> {
        let normalized: String = raw.nfkc().collect();
        if normalized.chars().count() > policy.max_chars {
            return Err(Invalid::new(
                "password",
                format!("must be at most {} characters", policy.max_chars),
            ));
        }
        Ok(Self(SecretString::from(normalized)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A Layer authentication nonce, kept byte for byte.
///
/// Layer's nonces are base64 (with `+`, `/`, `=`), so the accepted alphabet is visible ASCII.
/// A space is refused with a hint: it is almost always a `+` that a form-encoding client
/// forgot to escape, and signing it would only produce a token Layer refuses later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    pub const MAX_LEN: usize = 512;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() {
            return Err(Invalid::new("nonce", "must not be empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(Invalid::new(
                "nonce",
                format!("must be at most {} bytes", Self::MAX_LEN),
            ));
        }
        if raw.contains(' ') {
            return Err(Invalid::new(
                "nonce",
                "contains a space; if the nonce had a '+', URL-encode it as %2B in form bodies",
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Invalid::new(
                "nonce",
                "must be printable ASCII, exactly as Layer issued it",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display, first or last name: at most 128 characters (Layer's Identity limit), no
/// control characters. Empty input means "not set".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileName(String);

impl ProfileName {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(field: &'static str, raw: &str) -> Result<Option<Self>, Invalid> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if has_control_chars(value) {
            return Err(Invalid::new(field, "must not contain control characters"));
        }
        Ok(Some(Self(value.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An avatar URL: absolute http(s), at most 1024 characters (Layer's Identity limit).
/// Empty input means "not set".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: &str) -> Result<Option<Self>, Invalid> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                "avatar_url",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        match url::Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                Ok(Some(Self(value.to_owned())))
            }
            _ => Err(Invalid::new(
                "avatar_url",
                "must be an absolute http:// or https:// URL",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The optional profile a user carries into identity tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub display_name: Option<ProfileName>,
    pub first_name: Option<ProfileName>,
    pub last_name: Option<ProfileName>,
    pub avatar_url: Option<AvatarUrl>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_unique_regardless_of_case_in_any_script() {
        let a = Email::parse("Élodie@Example.COM").unwrap();
        let b = Email::parse("élodie@example.com").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Élodie@Example.COM");
    }

    #[test]
    fn an_email_key_is_composed_after_lower_casing() {
        // Found by a property test: "J" + caron has no precomposed capital, but its
        // lower case composes to U+01F0, so the key of "J\u{30c}" was not the key of "ǰ".
        let capital = Email::parse("J\u{30c}ohn@example.com").unwrap();
        let small = Email::parse("\u{1f0}ohn@example.com").unwrap();
        assert_eq!(capital.key(), small.key());
        assert_eq!(capital.key(), "\u{1f0}ohn@example.com");
        assert_eq!(Email::parse(capital.key()).unwrap().key(), capital.key());
    }

    #[test]
    fn emails_without_a_domain_or_with_spaces_are_refused() {
        for bad in [
            "", "plain", "a@", "@b", "a b@c.d", "a@.com", "a@b.", "a@b\u{7}",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn passwords_follow_nist_length_rules_without_composition_rules() {
        let policy = PasswordPolicy::default();
        assert!(Password::parse("short", policy).is_err());
        assert!(Password::parse("alllowercase", policy).is_ok());
        assert!(Password::parse("пароль-из-кириллицы", policy).is_ok());
        assert!(Password::parse(&"long passphrase ".repeat(40), policy).is_ok());
        assert!(Password::parse(&"x".repeat(1025), policy).is_err());
        // Eight code points, more than eight bytes.
        assert!(Password::parse("ééééééé", policy).is_err());
        assert!(Password::parse("éééééééé", policy).is_ok());
    }

    #[test]
    fn passwords_are_compared_after_nfkc_normalisation() {
        let policy = PasswordPolicy::default();
        let composed = Password::parse("caf\u{e9} au lait", policy).unwrap();
        let decomposed = Password::parse("cafe\u{301} au lait", policy).unwrap();
        assert_eq!(composed.expose(), decomposed.expose());
    }

    #[test]
    fn nonces_keep_base64_characters_and_refuse_spaces_with_a_hint() {
        let nonce = "ax+/4j=9";
        assert_eq!(Nonce::parse(nonce).unwrap().as_str(), nonce);
        let err = Nonce::parse("ax /4j=9").unwrap_err();
        assert!(err.reason.contains("%2B"));
        assert!(Nonce::parse("").is_err());
        assert!(Nonce::parse("tab\there").is_err());
        assert!(Nonce::parse("ünïcode").is_err());
        assert!(Nonce::parse(&"n".repeat(513)).is_err());
    }

    #[test]
    fn profile_fields_obey_layer_identity_limits() {
        assert!(ProfileName::parse("display_name", &"a".repeat(128)).is_ok());
        assert!(ProfileName::parse("display_name", &"a".repeat(129)).is_err());
        assert_eq!(ProfileName::parse("first_name", "   ").unwrap(), None);
        assert!(
            AvatarUrl::parse("https://example.com/a.png")
                .unwrap()
                .is_some()
        );
        assert!(AvatarUrl::parse("javascript:alert(1)").is_err());
        assert!(AvatarUrl::parse("/relative.png").is_err());
        let long = format!("https://example.com/{}", "a".repeat(1010));
        assert!(AvatarUrl::parse(&long).is_err());
    }

    #[test]
    fn user_ids_keep_imported_values_but_refuse_blank_or_control_characters() {
        assert_eq!(UserId::parse("legacy-42").unwrap().as_str(), "legacy-42");
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(" padded").is_err());
        assert!(UserId::parse("new\nline").is_err());
        assert!(UserId::parse(&"u".repeat(256)).is_err());
    }
}
