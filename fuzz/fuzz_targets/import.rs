//! `layer-idp users import`: the input split into lines as the importer reads them (at most
//! `MAX_LINE_BYTES`, lossy UTF-8, trimmed), each line checked as a user record, legacy
//! password hashes included. Plaintext passwords are checked but not hashed (argon2id per
//! input would leave no time for anything else).
//!
//! Beyond "never panics": an accepted line's user ID and e-mail are the ones it gave.

#![no_main]

use std::sync::LazyLock;

use layer_idp::config::PasswordSettings;
use layer_idp::fuzzing::check_line;
use layer_idp::idp::import::MAX_LINE_BYTES;
use layer_idp::idp::password::PasswordHasher;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static HASHER: LazyLock<PasswordHasher> = LazyLock::new(|| {
    PasswordHasher::new(&PasswordSettings {
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        max_concurrent_hashes: 1,
        ..PasswordSettings::default()
    })
    .unwrap()
});

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        if line.len() > MAX_LINE_BYTES {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if let Ok(checked) = check_line(text, &HASHER) {
            let record: Value = serde_json::from_str(text).unwrap();
            assert_eq!(record["id"].as_str(), Some(checked.id.as_str()));
            assert_eq!(
                record["email"].as_str().map(str::trim),
                Some(checked.email.as_str())
            );
        }
    }
});
