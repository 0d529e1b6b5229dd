//! The domain parsers (user IDs, e-mails, passwords, nonces, profile fields) and Layer app IDs.
//!
//! Beyond "never panics": what parses prints back to what was parsed (nonces and user IDs
//! byte for byte, app IDs through their canonical form), and an e-mail's uniqueness key is
//! stable: parsing the key gives the same key.

#![no_main]

use layer_idp::app_id::{AppId, ClientAppId, differing_digits, parse_uuid};
use layer_idp::domain::{AvatarUrl, Email, Nonce, Password, PasswordPolicy, ProfileName, UserId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(id) = UserId::parse(text) {
        assert_eq!(id.as_str(), text);
    }
    if let Ok(nonce) = Nonce::parse(text) {
        assert_eq!(nonce.as_str(), text);
    }
    if let Ok(email) = Email::parse(text) {
        assert_eq!(email.as_str(), text.trim());
        // Lower-casing may lengthen a key past what an address may be; else it parses, to
        // itself.
        match Email::parse(email.key()) {
            Ok(again) => assert_eq!(again.key(), email.key(), "the uniqueness key is not stable"),
            Err(_) => assert!(email.key().len() > Email::MAX_LEN),
        }
    }
    let policy = PasswordPolicy::default();
    let new = Password::parse(text, policy);
    let candidate = Password::candidate(text, policy);
    if let Ok(new) = &new {
        assert_eq!(
            candidate.as_ref().map(Password::expose).ok(),
            Some(new.expose())
        );
    }
    let _ = ProfileName::parse("display_name", text);
    let _ = AvatarUrl::parse(text);
    if let Ok(app) = AppId::parse(text) {
        assert_eq!(AppId::parse(&app.to_string()), Ok(app));
    }
    if let Ok(app) = ClientAppId::parse(text) {
        assert_eq!(ClientAppId::parse(&app.to_string()), Ok(app));
    }
    if let Some((a, b)) = text.split_once('|')
        && let (Some(a), Some(b)) = (parse_uuid(a), parse_uuid(b))
    {
        assert!(differing_digits(&a, &b) <= 32);
        assert_eq!(differing_digits(&a, &b) == 0, a == b);
    }
});
