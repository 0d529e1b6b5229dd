//! Nonces and sessions, and the [`Caller`] every authenticated request resolves to.
//!
//! Nonces are not bound to an app (`POST /nonces` names none); sessions are: a session token
//! is good for the one app it was issued for. Both live in one `std::sync::Mutex` that is
//! never held across an `.await`. Tokens are random URL-safe strings (256 bits for sessions)
//! and are never logged; the request journal redacts them too.

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Mutex;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::MockLayer;
use super::error::LayerError;
use super::ids::{AppId, random_token};
use super::world::wall_clock_ms;

/// Bytes of randomness in a nonce (160 bits, like Layer's 40-hex-digit nonces).
const NONCE_BYTES: usize = 20;

/// Bytes of randomness in a session token.
const SESSION_BYTES: usize = 32;

/// Outstanding nonces beyond this make the oldest expire early, so a loop of
/// `POST /nonces` cannot grow memory without bound.
const MAX_NONCES: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Session {
    pub app: AppId,
    pub user_id: String,
    pub expires_ms: i64,
}

#[derive(Default)]
struct Tables {
    /// Nonce → when it expires (ms).
    nonces: HashMap<String, i64>,
    sessions: HashMap<String, Session>,
}

/// The emulator's nonces and sessions.
pub struct Sessions {
    tables: Mutex<Tables>,
    nonce_ttl_ms: i64,
    session_ttl_ms: i64,
}

impl Sessions {
    pub fn new(nonce_ttl_secs: u64, session_ttl_secs: u64) -> Self {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Self {
            tables: Mutex::new(Tables::default()),
            nonce_ttl_ms: ms(nonce_ttl_secs),
            session_ttl_ms: ms(session_ttl_secs),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding this lock leaves plain maps behind; keep serving.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new nonce, good for one session within the nonce lifetime.
    pub fn issue_nonce(&self) -> String {
        let nonce = random_token(NONCE_BYTES);
        let now = wall_clock_ms();
        let mut tables = self.lock();
        if tables.nonces.len() >= MAX_NONCES {
            tables.nonces.retain(|_, expires| *expires > now);
            if tables.nonces.len() >= MAX_NONCES
                && let Some(oldest) = tables
                    .nonces
                    .iter()
                    .min_by_key(|(_, expires)| **expires)
                    .map(|(n, _)| n.clone())
            {
                tables.nonces.remove(&oldest);
            }
        }
        tables.nonces.insert(nonce.clone(), now + self.nonce_ttl_ms);
        nonce
    }

    /// Consumes a nonce; false if it was never issued, already used, or expired.
    pub fn consume_nonce(&self, nonce: &str) -> bool {
        let now = wall_clock_ms();
        self.lock()
            .nonces
            .remove(nonce)
            .is_some_and(|expires| expires > now)
    }

    pub fn create_session(&self, app: AppId, user_id: String) -> (String, Session) {
        let token = random_token(SESSION_BYTES);
        let now = wall_clock_ms();
        let session = Session {
            app,
            user_id,
            expires_ms: now.saturating_add(self.session_ttl_ms),
        };
        let mut tables = self.lock();
        tables.sessions.retain(|_, s| s.expires_ms > now);
        tables.sessions.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The live session for a token.
    pub fn find(&self, token: &str) -> Option<Session> {
        let now = wall_clock_ms();
        self.lock()
            .sessions
            .get(token)
            .filter(|s| s.expires_ms > now)
            .cloned()
    }

    pub fn delete(&self, token: &str) -> Option<Session> {
        self.lock().sessions.remove(token)
    }

    /// Ends every session of a user (in one app, or in all); returns their tokens so their
    /// sockets can be closed.
    pub fn end_user_sessions(&self, user_id: &str, app: Option<AppId>) -> Vec<(String, AppId)> {
        let mut ended = Vec::new();
        self.lock().sessions.retain(|token, s| {
            let end = s.user_id == user_id && app.is_none_or(|a| a == s.app);
            if end {
                ended.push((token.clone(), s.app));
            }
            !end
        });
        ended
    }

    pub fn clear(&self, app: Option<AppId>) {
        let mut tables = self.lock();
        match app {
            None => *tables = Tables::default(),
            Some(app) => tables.sessions.retain(|_, s| s.app != app),
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
    fn a_nonce_is_good_once() {
        let sessions = Sessions::new(600, 60);
        let nonce = sessions.issue_nonce();
        assert!(sessions.consume_nonce(&nonce));
        assert!(!sessions.consume_nonce(&nonce));
        assert!(!sessions.consume_nonce("never-issued"));
    }
}
