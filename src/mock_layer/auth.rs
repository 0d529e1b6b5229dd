//! Nonces and sessions, and the [`Caller`] every authenticated request resolves to.
//!
//! Nonces are not bound to an app (`POST /nonces` names none); sessions are: a session token
//! is good for the one app it was issued for. Each table has its own `std::sync::Mutex`,
//! never held across an `.await`: every authenticated request looks its session up, and
//! every refused one mints a nonce, so neither should wait for the other. Tokens are random
//! URL-safe strings (256 bits for sessions) and are never logged; the request journal
//! redacts them too.
//!
//! Both tables are bounded and cheap to keep so: every entry of one table lives equally long
//! (one TTL each), so issuing order is expiry order, and a queue in that order lets expired
//! entries be dropped from its front, and the oldest evicted at the cap, in O(1) amortised
//! per new entry — never a scan of the whole table under the lock. The cap counts live
//! entries: a consumed nonce or a deleted session frees its place at once.

use std::collections::{HashMap, VecDeque};
use std::future::{Ready, ready};
use std::sync::Mutex;

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::error::LayerError;
use super::ids::{AppId, random_token};
use super::{MockLayer, lock};
use crate::clock::wall_clock_ms;

/// Bytes of randomness in a nonce (160 bits, like Layer's 40-hex-digit nonces).
const NONCE_BYTES: usize = 20;

/// Bytes of randomness in a session token.
const SESSION_BYTES: usize = 32;

/// Outstanding nonces beyond this make the oldest expire early, so a loop of
/// `POST /nonces` (which needs no session) cannot grow memory without bound.
const MAX_NONCES: usize = 100_000;

/// Live sessions beyond this end the oldest early (its sockets close). Each one needed a
/// valid identity token, so only a test that logs in in a loop gets near it.
const MAX_SESSIONS: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Session {
    pub app: AppId,
    pub user_id: String,
    pub expires_ms: i64,
}

/// Stale keys the queue may hold beyond as many as there are live entries before it is
/// compacted.
const COMPACTION_SLACK: usize = 64;

/// Entries by key, and the keys in expiry order. A key taken out of the map before it
/// expired (a consumed nonce, a deleted session) stays in the queue, skipped when it reaches
/// the front, until the queue holds more such stale keys than live ones (plus
/// [`COMPACTION_SLACK`]); then the queue is compacted. So the cap counts live entries only,
/// the queue stays within twice the cap, and a removal costs O(1) amortised: a compaction
/// of `n` keys follows at least `n / 2` removals.
struct ExpiringTable<V> {
    entries: HashMap<String, V>,
    by_expiry: VecDeque<(i64, String)>,
    cap: usize,
}

impl<V> ExpiringTable<V> {
    fn new(cap: usize) -> Self {
        Self {
            entries: HashMap::new(),
            by_expiry: VecDeque::new(),
            cap,
        }
    }

    /// Adds an entry that expires after every entry already there; returns the live entries
    /// evicted early to stay within the cap.
    fn insert(&mut self, key: String, expires_ms: i64, value: V, now: i64) -> Vec<(String, V)> {
        while self
            .by_expiry
            .front()
            .is_some_and(|(expires, _)| *expires <= now)
        {
            if let Some((_, key)) = self.by_expiry.pop_front() {
                self.entries.remove(&key);
            }
        }
        let mut evicted = Vec::new();
        while self.entries.len() >= self.cap {
            let Some((_, key)) = self.by_expiry.pop_front() else {
                break;
            };
            if let Some(value) = self.entries.remove(&key) {
                evicted.push((key, value));
            }
        }
        self.by_expiry.push_back((expires_ms, key.clone()));
        self.entries.insert(key, value);
        evicted
    }

    /// Takes an entry out before it expires.
    fn remove(&mut self, key: &str) -> Option<V> {
        let removed = self.entries.remove(key);
        if removed.is_some() {
            self.compact_if_stale();
        }
        removed
    }

    /// Keeps the entries for which `keep` says so.
    fn retain(&mut self, keep: impl FnMut(&String, &mut V) -> bool) {
        self.entries.retain(keep);
        self.compact_if_stale();
    }

    fn compact_if_stale(&mut self) {
        if self.by_expiry.len() > 2 * self.entries.len() + COMPACTION_SLACK {
            let entries = &self.entries;
            self.by_expiry.retain(|(_, key)| entries.contains_key(key));
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.by_expiry.clear();
    }
}

/// The emulator's nonces and sessions.
pub struct Sessions {
    /// Nonce → when it expires (ms).
    nonces: Mutex<ExpiringTable<i64>>,
    sessions: Mutex<ExpiringTable<Session>>,
    nonce_ttl_ms: i64,
    session_ttl_ms: i64,
    /// How far `POST /_mock/clock` moved each app's clock ahead of the wall clock: a session
    /// lives on its app's clock, as the app's timestamps and delayed messages do, so a test
    /// moves time instead of waiting. (Nonces name no app and keep the wall clock.)
    offsets: Mutex<HashMap<AppId, i64>>,
}

impl Sessions {
    pub fn new(nonce_ttl_secs: u64, session_ttl_secs: u64) -> Self {
        Self::with_caps(nonce_ttl_secs, session_ttl_secs, MAX_NONCES, MAX_SESSIONS)
    }

    fn with_caps(
        nonce_ttl_secs: u64,
        session_ttl_secs: u64,
        max_nonces: usize,
        max_sessions: usize,
    ) -> Self {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Self {
            nonces: Mutex::new(ExpiringTable::new(max_nonces)),
            sessions: Mutex::new(ExpiringTable::new(max_sessions)),
            nonce_ttl_ms: ms(nonce_ttl_secs),
            session_ttl_ms: ms(session_ttl_secs),
            offsets: Mutex::new(HashMap::new()),
        }
    }

    /// Now on an app's clock: the wall clock plus what the test controls added.
    pub fn now_ms(&self, app: AppId) -> i64 {
        let offset = lock(&self.offsets).get(&app).copied().unwrap_or(0);
        wall_clock_ms().saturating_add(offset)
    }

    /// Moves an app's clock forward (with its world's, `POST /_mock/clock`); returns the
    /// sessions that expired by it, ended now, whose sockets the caller must close. A test
    /// control: a scan is fine here.
    pub fn advance_clock(&self, app: AppId, ms: i64) -> Vec<(String, Session)> {
        {
            let mut offsets = lock(&self.offsets);
            let offset = offsets.entry(app).or_insert(0);
            *offset = offset.saturating_add(ms.max(0));
        }
        let now = self.now_ms(app);
        let mut ended = Vec::new();
        lock(&self.sessions).retain(|token, s| {
            let end = s.app == app && s.expires_ms <= now;
            if end {
                ended.push((token.clone(), s.clone()));
            }
            !end
        });
        ended
    }

    /// A new nonce, good for one session within the nonce lifetime.
    pub fn issue_nonce(&self) -> String {
        let nonce = random_token(NONCE_BYTES);
        let now = wall_clock_ms();
        let expires = now.saturating_add(self.nonce_ttl_ms);
        lock(&self.nonces).insert(nonce.clone(), expires, expires, now);
        nonce
    }

    /// Consumes a nonce; false if it was never issued, already used, or expired.
    pub fn consume_nonce(&self, nonce: &str) -> bool {
        let now = wall_clock_ms();
        lock(&self.nonces)
            .remove(nonce)
            .is_some_and(|expires| expires > now)
    }

    /// A new session; also the sessions ended early to make room, whose sockets the caller
    /// must close.
    /// The lifetime is the app's own in seconds, if it set one (Platform API
    /// `session_ttl_in_seconds`), else the emulator's.
    pub fn create_session_for(
        &self,
        app: AppId,
        user_id: String,
        ttl_secs: Option<u64>,
    ) -> (String, Session, Vec<(String, Session)>) {
        let token = random_token(SESSION_BYTES);
        let ttl_ms = ttl_secs.map_or(self.session_ttl_ms, |secs| {
            i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
        });
        let session = Session {
            app,
            user_id,
            expires_ms: self.now_ms(app).saturating_add(ttl_ms),
        };
        // The queue runs on the wall clock: an app's clock only moves ahead, so a session
        // never outlives its wall-clock expiry, and the queue never drops a live one.
        let now = wall_clock_ms();
        let evicted = lock(&self.sessions).insert(
            token.clone(),
            now.saturating_add(ttl_ms),
            session.clone(),
            now,
        );
        (token, session, evicted)
    }

    /// The live session for a token.
    pub fn find(&self, token: &str) -> Option<Session> {
        let session = lock(&self.sessions).entries.get(token).cloned()?;
        (session.expires_ms > self.now_ms(session.app)).then_some(session)
    }

    pub fn delete(&self, token: &str) -> Option<Session> {
        lock(&self.sessions).remove(token)
    }

    /// Ends every session of a user (in one app, or in all); returns their tokens so their
    /// sockets can be closed. A test control: a scan is fine here.
    pub fn end_user_sessions(&self, user_id: &str, app: Option<AppId>) -> Vec<(String, AppId)> {
        let mut ended = Vec::new();
        lock(&self.sessions).retain(|token, s| {
            let end = s.user_id == user_id && app.is_none_or(|a| a == s.app);
            if end {
                ended.push((token.clone(), s.app));
            }
            !end
        });
        ended
    }

    pub fn clear(&self, app: Option<AppId>) {
        match app {
            None => {
                lock(&self.nonces).clear();
                lock(&self.sessions).clear();
            }
            Some(app) => lock(&self.sessions).retain(|_, s| s.app != app),
        }
    }
}

/// The session token in `Authorization: Layer session-token="…"` (or `'…'`).
pub fn session_token_from_header(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, params) = value.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("layer") {
        return None;
    }
    let quoted = params.trim().strip_prefix("session-token=")?;
    let token = quoted
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| quoted.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))?;
    (!token.is_empty()).then_some(token)
}

/// The authenticated user of a REST request. Missing or dead sessions answer 401
/// `authentication_required` with a fresh nonce: that is how the SDK re-authenticates.
#[derive(Debug, Clone)]
pub struct Caller {
    pub app: AppId,
    pub user_id: String,
}

impl FromRequest for Caller {
    type Error = LayerError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req))
    }
}

fn caller_of(req: &HttpRequest) -> Result<Caller, LayerError> {
    let Some(emulator) = req.app_data::<web::Data<MockLayer>>() else {
        return Err(LayerError::internal(
            "the emulator's state is not registered",
        ));
    };
    let challenge = |message: &str| {
        LayerError::authentication_required(message, emulator.sessions.issue_nonce())
    };
    let Some(token) = session_token_from_header(req) else {
        return Err(challenge(
            "this request needs an Authorization: Layer session-token=\"…\" header",
        ));
    };
    match emulator.sessions.find(token) {
        Some(session) => {
            let caller = Caller {
                app: session.app,
                user_id: session.user_id,
            };
            // For the request journal, which names who called.
            req.extensions_mut().insert(caller.clone());
            Ok(caller)
        }
        None => Err(challenge(
            "the session token is unknown or expired; answer the challenge in data.nonce",
        )),
    }
}

/// Whether the request's `Authorization: Bearer <token>` carries `expected`: the Platform
/// API token, or the test controls' token. Compared as SHA-256 digests in constant time, so
/// neither the bytes nor the length of the secret leak through timing.
pub(crate) fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let digest =
        |token: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|given| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                digest(given.trim()).as_ref(),
                digest(expected).as_ref(),
            )
            .is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn both_quote_styles_carry_the_session_token() {
        for header in [r#"Layer session-token="abc""#, "Layer session-token='abc'"] {
            let req = TestRequest::default()
                .insert_header((AUTHORIZATION, header))
                .to_http_request();
            assert_eq!(session_token_from_header(&req), Some("abc"), "{header}");
        }
        let req = TestRequest::default()
            .insert_header((AUTHORIZATION, "Bearer abc"))
            .to_http_request();
        assert_eq!(session_token_from_header(&req), None);
    }

    #[test]
    fn an_app_s_own_session_lifetime_replaces_the_default() {
        let sessions = Sessions::new(600, 3600);
        let app = AppId::new_staging();
        let before = wall_clock_ms();
        let (_, default, _) = sessions.create_session_for(app, "a".into(), None);
        let (_, short, _) = sessions.create_session_for(app, "b".into(), Some(30));
        let after = wall_clock_ms();
        assert!((before + 3_600_000..=after + 3_600_000).contains(&default.expires_ms));
        assert!((before + 30_000..=after + 30_000).contains(&short.expires_ms));
    }

    #[test]
    fn a_nonce_is_good_once() {
        let sessions = Sessions::new(600, 60);
        let nonce = sessions.issue_nonce();
        assert!(sessions.consume_nonce(&nonce));
        assert!(!sessions.consume_nonce(&nonce));
        assert!(!sessions.consume_nonce("never-issued"));
    }

    #[test]
    fn at_the_cap_the_oldest_nonce_goes_first() {
        let sessions = Sessions::with_caps(600, 60, 3, 3);
        let issued: Vec<String> = (0..5).map(|_| sessions.issue_nonce()).collect();
        assert!(!sessions.consume_nonce(&issued[0]));
        assert!(!sessions.consume_nonce(&issued[1]));
        // A nonce consumed behind an older one frees its place: one more evicts nothing.
        assert!(sessions.consume_nonce(&issued[3]));
        let fresh = sessions.issue_nonce();
        for nonce in [&issued[2], &issued[4], &fresh] {
            assert!(sessions.consume_nonce(nonce));
        }
    }

    #[test]
    fn at_the_cap_the_oldest_session_ends_and_is_reported() {
        let sessions = Sessions::with_caps(600, 60, 3, 2);
        let app = AppId::new_staging();
        let (first, _, none) = sessions.create_session_for(app, "a".into(), None);
        assert!(none.is_empty());
        let (second, _, _) = sessions.create_session_for(app, "b".into(), None);
        assert!(sessions.delete(&second).is_some());
        let (third, _, none) = sessions.create_session_for(app, "c".into(), None);
        assert!(
            none.is_empty(),
            "the cap counts live sessions: the deleted one's place was free"
        );
        assert!(sessions.find(&first).is_some());
        let (_, _, evicted) = sessions.create_session_for(app, "d".into(), None);
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].0, first);
        assert!(sessions.find(&first).is_none());
        assert!(sessions.find(&third).is_some());
    }

    #[test]
    fn keys_taken_out_early_do_not_pile_up_in_the_queue() {
        let sessions = Sessions::with_caps(600, 60, 10, 10);
        let app = AppId::new_staging();
        let (kept, _, _) = sessions.create_session_for(app, "kept".into(), None);
        for i in 0..10_000 {
            assert!(sessions.consume_nonce(&sessions.issue_nonce()));
            let (token, _, evicted) = sessions.create_session_for(app, format!("u{i}"), None);
            assert!(evicted.is_empty());
            sessions.delete(&token);
        }
        assert!(sessions.find(&kept).is_some());
        for table_len in [
            lock(&sessions.nonces).by_expiry.len(),
            lock(&sessions.sessions).by_expiry.len(),
        ] {
            assert!(table_len <= 2 + COMPACTION_SLACK + 1, "{table_len}");
        }
    }

    #[test]
    fn minting_nonces_at_the_cap_does_not_scan_the_table() {
        // With a scan per nonce at the cap (the old way), these 20 000 nonces cost
        // 20 000 × 100 000 steps: minutes in a debug build. In expiry order, milliseconds.
        let sessions = Sessions::new(600, 60);
        let started = std::time::Instant::now();
        for _ in 0..MAX_NONCES + 20_000 {
            sessions.issue_nonce();
        }
        assert_eq!(lock(&sessions.nonces).entries.len(), MAX_NONCES);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
