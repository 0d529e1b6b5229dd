//! Password hashes brought from other systems: bcrypt (`$2a$`, `$2b$`, `$2y$`), Django's
//! `pbkdf2_sha256$…` and `pbkdf2_sha1$…`, and PHC strings for scrypt and PBKDF2 (`$scrypt$…`,
//! `$pbkdf2-sha256$…`, `$pbkdf2-sha512$…`, `$pbkdf2$…` for SHA-1, in the RustCrypto and the
//! passlib spellings). argon2 PHC strings are `argon2id.rs`'s.
//!
//! A stored hash is parsed and its cost checked against this module's caps before any work, so
//! a corrupted or hostile hash cannot ask for unbounded time or memory: bcrypt's cost, PBKDF2's
//! iterations, scrypt's memory (128·r·N bytes), lanes and total work each have their own bound.
//! The same check refuses such a hash at import. Comparisons are constant-time. A legacy hash
//! that matches is always replaced by argon2id at the current parameters.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// bcrypt doubles its work with each cost step; 14 is ~1 s on one core, four times the
/// highest default in use (Devise and Rails use 12, Parse 10).
pub const MAX_BCRYPT_COST: u32 = 14;
/// Django's 5.x default is 870,000–1,200,000 for SHA-256; OWASP asks 1,300,000 for SHA-1.
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;
/// scrypt's memory, 128·r·N bytes: passlib's and Python's common choice (N=2^16, r=8) is
/// 64 MiB.
pub const MAX_SCRYPT_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
/// scrypt's lanes run one after the other here, each over the full memory.
pub const MAX_SCRYPT_PARALLELISM: u32 = 16;
/// A derived key longer than SHA-512's output is not a password hash anyone makes.
const MAX_OUTPUT_BYTES: usize = 64;
const MAX_SALT_BYTES: usize = 64;

/// A recognised legacy hash, parsed and within the caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Legacy {
    Bcrypt,
    Pbkdf2 {
        digest: Digest,
        iterations: u32,
        salt: Vec<u8>,
        expected: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        expected: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha256,
    Sha512,
}

/// Why a hash is not accepted: shown to the operator at import, logged at login. Never holds
/// the hash itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(reason: impl Into<String>) -> Refused {
    Refused(reason.into())
}

impl Legacy {
    /// Parses a stored hash of a scheme this module handles, checking its caps. `Ok(None)`
    /// when the string is not one of these schemes at all.
    pub fn parse(stored: &str) -> Result<Option<Self>, Refused> {
        if let Some(rest) = stored
            .strip_prefix("$2a$")
            .or_else(|| stored.strip_prefix("$2b$"))
            .or_else(|| stored.strip_prefix("$2y$"))
        {
            return parse_bcrypt(rest).map(Some);
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            return parse_django(Digest::Sha256, rest).map(Some);
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha1$") {
            return parse_django(Digest::Sha1, rest).map(Some);
        }
        if let Some(rest) = stored.strip_prefix("$scrypt$") {
            return parse_scrypt(rest).map(Some);
        }
        for (prefix, digest) in [
            ("$pbkdf2-sha256$", Digest::Sha256),
            ("$pbkdf2-sha512$", Digest::Sha512),
            ("$pbkdf2-sha1$", Digest::Sha1),
            ("$pbkdf2$", Digest::Sha1),
        ] {
            if let Some(rest) = stored.strip_prefix(prefix) {
                return parse_phc_pbkdf2(digest, rest).map(Some);
            }
        }
        Ok(None)
    }

    /// Checks `password` against the hash. Runs the scheme's full cost; call it on a hashing
    /// thread.
    pub fn verify(&self, password: &[u8], stored: &str) -> bool {
        match self {
            Legacy::Bcrypt => bcrypt::verify(password, stored).unwrap_or(false),
            Legacy::Pbkdf2 {
                digest,
                iterations,
                salt,
                expected,
            } => {
                let mut out = vec![0u8; expected.len()];
                match digest {
                    Digest::Sha1 => {
                        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, *iterations, &mut out)
                    }
                    Digest::Sha256 => {
                        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, *iterations, &mut out)
                    }
                    Digest::Sha512 => {
                        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, *iterations, &mut out)
                    }
                }
                constant_time_eq(&out, expected)
            }
            Legacy::Scrypt {
                log_n,
                r,
                p,
                salt,
                expected,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p) else {
                    return false;
                };
                let mut out = vec![0u8; expected.len()];
                scrypt::scrypt(password, salt, &params, &mut out).is_ok()
                    && constant_time_eq(&out, expected)
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

fn parse_bcrypt(rest: &str) -> Result<Legacy, Refused> {
    // $2b$CC$ then 22 characters of salt and 31 of hash, in bcrypt's own base64.
    let (cost, body) = rest
        .split_once('$')
        .ok_or_else(|| refused("a bcrypt hash without a cost"))?;
    let cost: u32 = cost
        .parse()
        .map_err(|_| refused("a bcrypt hash with an unreadable cost"))?;
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(refused(format!(
            "a bcrypt hash with cost {cost}, outside 4..={MAX_BCRYPT_COST}"
        )));
    }
    let bcrypt_alphabet = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if body.len() != 53 || !body.chars().all(bcrypt_alphabet) {
        return Err(refused("a bcrypt hash of the wrong length or alphabet"));
    }
    Ok(Legacy::Bcrypt)
}

fn parse_iterations(s: &str) -> Result<u32, Refused> {
    let iterations: u32 = s
        .parse()
        .map_err(|_| refused("a PBKDF2 hash with unreadable iterations"))?;
    if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
        return Err(refused(format!(
            "a PBKDF2 hash with {iterations} iterations, outside 1..={MAX_PBKDF2_ITERATIONS}"
        )));
    }
    Ok(iterations)
}

fn check_lengths(salt: &[u8], expected: &[u8]) -> Result<(), Refused> {
    if salt.is_empty() || salt.len() > MAX_SALT_BYTES {
        return Err(refused("a hash whose salt is empty or too long"));
    }
    if expected.len() < 16 || expected.len() > MAX_OUTPUT_BYTES {
        return Err(refused("a hash whose output is too short or too long"));
    }
    Ok(())
}

/// Django: `pbkdf2_sha256$ITERATIONS$SALT$BASE64(HASH)`, the salt used as its UTF-8 text.
fn parse_django(digest: Digest, rest: &str) -> Result<Legacy, Refused> {
    let mut parts = rest.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused("a Django PBKDF2 hash without its four fields"));
    };
    let iterations = parse_iterations(iterations)?;
    let expected = STANDARD
        .decode(hash)
        .map_err(|_| refused("a Django PBKDF2 hash whose hash is not base64"))?;
    let salt = salt.as_bytes().to_vec();
    check_lengths(&salt, &expected)?;
    Ok(Legacy::Pbkdf2 {
        digest,
        iterations,
        salt,
        expected,
    })
}

/// PHC base64 (no padding), also in passlib's spelling with `.` for `+`.
fn phc_b64(s: &str) -> Result<Vec<u8>, Refused> {
    STANDARD_NO_PAD
        .decode(s.trim_end_matches('=').replace('.', "+"))
        .map_err(|_| refused("a PHC string whose salt or hash is not base64"))
}

/// `$pbkdf2-sha256$i=N[,l=L]$SALT$HASH` (RustCrypto) or `$pbkdf2-sha256$N$SALT$HASH`
/// (passlib).
fn parse_phc_pbkdf2(digest: Digest, rest: &str) -> Result<Legacy, Refused> {
    let mut parts = rest.split('$');
    let (Some(params), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused(
            "a PBKDF2 PHC string without parameters, salt and hash",
        ));
    };
    let mut iterations = None;
    for param in params.split(',') {
        match param.split_once('=') {
            Some(("i", n)) => iterations = Some(parse_iterations(n)?),
            Some(("l", _)) => {} // the hash's own length says it
            Some(_) => return Err(refused("a PBKDF2 PHC string with an unknown parameter")),
            None => iterations = Some(parse_iterations(param)?),
        }
    }
    let iterations = iterations.ok_or_else(|| refused("a PBKDF2 PHC string without iterations"))?;
    let salt = phc_b64(salt)?;
    let expected = phc_b64(hash)?;
    check_lengths(&salt, &expected)?;
    Ok(Legacy::Pbkdf2 {
        digest,
        iterations,
        salt,
        expected,
    })
}

/// `$scrypt$ln=L,r=R,p=P$SALT$HASH`.
fn parse_scrypt(rest: &str) -> Result<Legacy, Refused> {
    let mut parts = rest.split('$');
    let (Some(params), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused(
            "a scrypt PHC string without parameters, salt and hash",
        ));
    };
    let (mut log_n, mut r, mut p) = (None, None, None);
    for param in params.split(',') {
        let value = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| refused("a scrypt PHC string with an unreadable parameter"))
        };
        match param.split_once('=') {
            Some(("ln", v)) => log_n = Some(value(v)?),
            Some(("r", v)) => r = Some(value(v)?),
            Some(("p", v)) => p = Some(value(v)?),
            _ => return Err(refused("a scrypt PHC string with an unknown parameter")),
        }
    }
    let (Some(log_n), Some(r), Some(p)) = (log_n, r, p) else {
        return Err(refused("a scrypt PHC string without ln, r and p"));
    };
    if !(1..=24).contains(&log_n) || r == 0 || p == 0 {
        return Err(refused("a scrypt PHC string with impossible parameters"));
    }
    let memory = (128u64 * u64::from(r)) << log_n;
    if memory > MAX_SCRYPT_MEMORY_BYTES {
        return Err(refused(format!(
            "a scrypt hash asking for {memory} bytes of memory, over {MAX_SCRYPT_MEMORY_BYTES}"
        )));
    }
    if p > MAX_SCRYPT_PARALLELISM {
        return Err(refused(format!(
            "a scrypt hash with p={p}, over {MAX_SCRYPT_PARALLELISM}"
        )));
    }
    let salt = phc_b64(salt)?;
    let expected = phc_b64(hash)?;
    check_lengths(&salt, &expected)?;
    Ok(Legacy::Scrypt {
        log_n: log_n as u8,
        r,
        p,
        salt,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_costs_are_refused_before_any_work() {
        let salt53 = "a".repeat(53);
        assert!(Legacy::parse(&format!("$2b$31${salt53}")).is_err());
        assert!(Legacy::parse(&format!("$2b$15${salt53}")).is_err());
        assert!(
            Legacy::parse(&format!("$2b$14${salt53}"))
                .unwrap()
                .is_some()
        );
        assert!(
            Legacy::parse(
                "pbkdf2_sha256$4000000000$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            )
            .is_err()
        );
        assert!(
            Legacy::parse(
                "$pbkdf2-sha256$i=2000001$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            )
            .is_err()
        );
        // N = 2^20, r = 8: 1 GiB.
        assert!(
            Legacy::parse(
                "$scrypt$ln=20,r=8,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            )
            .is_err()
        );
        assert!(Legacy::parse("$scrypt$ln=14,r=4294967295,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_err());
        assert!(
            Legacy::parse(
                "$scrypt$ln=14,r=8,p=17$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            )
            .is_err()
        );
        assert!(
            Legacy::parse(
                "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            )
            .unwrap()
            .is_some()
        );
    }

    #[test]
    fn other_strings_are_not_legacy_hashes() {
        assert_eq!(Legacy::parse("$argon2id$v=19$m=64,t=1,p=1$x$y"), Ok(None));
        assert_eq!(Legacy::parse("md5$abc$def"), Ok(None));
        assert!(Legacy::parse("$2b$12$short").is_err());
        assert!(Legacy::parse("pbkdf2_sha256$1000$salt").is_err());
    }
}
