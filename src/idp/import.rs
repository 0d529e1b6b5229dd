//! Importing users from another system with their password hashes (`layer-idp users import`):
//! JSON lines in, batched inserts out, a report per refused line and a summary.
//!
//! The input streams: one line and one batch are in memory at a time, so a million lines cost
//! what a thousand do. Hashes are checked (a supported scheme within its caps, see
//! `password/legacy.rs`) and stored as given, never recomputed; a line with a plaintext
//! `password` instead is hashed with argon2id on the hash pool. Re-running an import skips the
//! users already there with the same ID and e-mail.

use std::io::BufRead;

use serde::Deserialize;

use super::accounts::ProfileInput;
use super::password::{HashRequest, PasswordHasher};
use crate::clock::unix_now;
use crate::domain::{Email, Password, Profile, UserId};
use crate::store::{ImportOutcome, ImportedUser, Store};

/// The longest line read; a longer one is refused unread (no user record is near this).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Users inserted per transaction.
pub const BATCH: usize = 1000;

/// One line of the input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    email: String,
    #[serde(default)]
    email_verified: bool,
    password_hash: Option<String>,
    password: Option<String>,
    #[serde(flatten)]
    profile: ProfileInput,
}

/// A line that parsed.
struct Parsed {
    line: u64,
    id: UserId,
    email: Email,
    password_hash: String,
    profile: Profile,
    email_verified: bool,
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub created: u64,
    pub skipped: u64,
    pub refused: u64,
}

/// Reads JSON lines from `input` and imports them. Every refused line goes to `report` with
/// its number and reason; `progress` hears the bytes and lines read so far.
pub async fn import(
    store: &dyn Store,
    hasher: &PasswordHasher,
    mut input: impl BufRead,
    mut report: impl FnMut(u64, &str),
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let mut batch: Vec<Parsed> = Vec::with_capacity(BATCH);
    let mut buf = Vec::with_capacity(1024);
    let mut bytes = 0u64;
    loop {
        buf.clear();
        let read = std::io::Read::take(input.by_ref(), MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        bytes += read as u64;
        summary.lines += 1;
        let number = summary.lines;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of the oversized line without holding it.
            bytes += skip_line(&mut input)?;
            summary.refused += 1;
            report(number, &format!("the line is over {MAX_LINE_BYTES} bytes"));
            progress(bytes, summary.lines);
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            summary.lines -= 1;
            continue;
        }
        match parse(text, number, hasher).await {
            Ok(parsed) => batch.push(parsed),
            Err(reason) => {
                summary.refused += 1;
                report(number, &reason);
            }
        }
        if batch.len() >= BATCH {
            flush(store, &mut batch, &mut summary, &mut report).await?;
        }
        progress(bytes, summary.lines);
    }
    flush(store, &mut batch, &mut summary, &mut report).await?;
    Ok(summary)
}

fn skip_line(input: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(skipped);
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return Ok(skipped + end as u64 + 1);
            }
            None => {
                let n = chunk.len();
                input.consume(n);
                skipped += n as u64;
            }
        }
    }
}

/// A line's password: a hash to store as given, or a plaintext to hash with argon2id.
pub enum LinePassword {
    Hash(String),
    Plain(Password),
}

/// One line's user record with every rule checked, before any plaintext password is hashed.
pub struct CheckedLine {
    pub id: UserId,
    pub email: Email,
    pub profile: Profile,
    pub email_verified: bool,
    pub password: LinePassword,
}

/// Reads one (trimmed, non-empty) line and checks it; the error is the line's report. Public
/// for the fuzzers.
pub fn check_line(text: &str, hasher: &PasswordHasher) -> Result<CheckedLine, String> {
    let input: Line = serde_json::from_str(text).map_err(|e| format!("not a user record: {e}"))?;
    let id = UserId::parse(&input.id).map_err(|e| e.to_string())?;
    let email = Email::parse(&input.email).map_err(|e| e.to_string())?;
    let profile = input.profile.parse().map_err(|e| e.to_string())?;
    let password = match (input.password_hash, input.password) {
        (Some(hash), None) => {
            hasher.check_stored(&hash).map_err(|e| e.to_string())?;
            LinePassword::Hash(hash)
        }
        (None, Some(password)) => LinePassword::Plain(
            Password::parse(&password, hasher.policy()).map_err(|e| e.to_string())?,
        ),
        _ => return Err("give exactly one of password_hash and password".to_owned()),
    };
    Ok(CheckedLine {
        id,
        email,
        profile,
        email_verified: input.email_verified,
        password,
    })
}

async fn parse(text: &str, line: u64, hasher: &PasswordHasher) -> Result<Parsed, String> {
    let checked = check_line(text, hasher)?;
    let password_hash =
        match checked.password {
            LinePassword::Hash(hash) => hash,
            LinePassword::Plain(password) => hasher
                .hash(password, HashRequest::command_line())
                .await
                .map_err(|e| format!("could not hash the password: {e}"))?,
        };
    Ok(Parsed {
        line,
        id: checked.id,
        email: checked.email,
        password_hash,
        profile: checked.profile,
        email_verified: checked.email_verified,
    })
}

async fn flush(
    store: &dyn Store,
    batch: &mut Vec<Parsed>,
    summary: &mut Summary,
    report: &mut impl FnMut(u64, &str),
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let now = unix_now();
    let users: Vec<ImportedUser<'_>> = batch
        .iter()
        .map(|p| ImportedUser {
            id: &p.id,
            email: &p.email,
            password_hash: &p.password_hash,
            profile: &p.profile,
            email_verified: p.email_verified,
            now,
        })
        .collect();
    let outcomes = store.import_users(&users).await?;
    for (parsed, outcome) in batch.iter().zip(outcomes) {
        match outcome {
            ImportOutcome::Created => summary.created += 1,
            ImportOutcome::Skipped => summary.skipped += 1,
            ImportOutcome::Refused(reason) => {
                summary.refused += 1;
                report(parsed.line, reason);
            }
        }
    }
    batch.clear();
    Ok(())
}
