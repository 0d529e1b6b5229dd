//! The Platform API calls identity sync makes, and what each answer means for the outbox row.
//!
//! Only the fields the identity provider owns are written: `display_name`, `first_name`,
//! `last_name`, `avatar_url` — what its identity tokens carry. Fields an app's backend sets
//! through the Platform API itself (`metadata`, `phone_number`, `email_address`, …) are left
//! alone, which is why a change is a Layer-Patch of the fields that differ and a `PUT` (which
//! empties every field it does not name) only creates an identity Layer has not seen.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::SyncTarget;
use crate::store::User;

/// The Platform API version spoken. The calls made are the same in every version from 1.0 on.
const ACCEPT: &str = "application/vnd.layer+json; version=3.0";
const PATCH_CONTENT_TYPE: &str = "application/vnd.layer-patch+json";

/// The fields of a Layer Identity that the identity provider owns.
const OWNED_FIELDS: [&str; 4] = ["display_name", "first_name", "last_name", "avatar_url"];

/// What became of one change.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Layer has it (or has nothing to change).
    Done,
    /// Try again later: Layer is down, slow, overloaded, or refused the token.
    Retry(String),
    /// Layer refused the change itself; sending it again would be refused again.
    GiveUp(String),
}

pub struct PlatformClient {
    http: reqwest::Client,
    target: SyncTarget,
}

impl PlatformClient {
    pub fn new(target: SyncTarget, timeout: Duration) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("layer-idp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, target })
    }

    pub fn target(&self) -> &SyncTarget {
        &self.target
    }

    /// `…/apps/{uuid}/users/{user}{rest}`, the user ID percent-encoded as one path segment.
    fn user_url(&self, user_id: &str, rest: &str) -> String {
        let user = percent_encoding::utf8_percent_encode(user_id, SEGMENT);
        format!(
            "{}/apps/{}/users/{user}{rest}",
            self.target.base_url,
            self.target.app.uuid.hyphenated()
        )
    }

    async fn call(
        &self,
        method: Method,
        url: String,
        body: Option<(&'static str, Value)>,
    ) -> Result<(StatusCode, Vec<u8>), String> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.target.token.expose_secret())
            .header(reqwest::header::ACCEPT, ACCEPT);
        if let Some((content_type, body)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.to_string());
        }
        let response = request.send().await.map_err(describe_transport)?;
        let status = response.status();
        // Bounded: an answer is a small JSON object; a larger one is cut, not buffered whole.
        let body = read_limited(response, 64 * 1024).await;
        Ok((status, body))
    }

    /// Makes Layer's identity of `user` carry the user's profile: `GET` it, then patch what
    /// differs, or `PUT` it when Layer has none. Comparing first means a change of something
    /// Layer does not hold (an e-mail, a password) pushes nothing to the user's followers.
    pub async fn sync_identity(&self, user: &User) -> Outcome {
        let url = self.user_url(&user.id, "/identity");
        let wanted = owned_fields(user);
        let current = match self.call(Method::GET, url.clone(), None).await {
            Err(e) => return Outcome::Retry(e),
            Ok((StatusCode::NOT_FOUND, _)) => None,
            Ok((status, body)) if status.is_success() => {
                serde_json::from_slice::<Value>(&body).ok()
            }
            Ok((status, body)) => return classify(status, &body, false),
        };
        let Some(current) = current else {
            if user.display_name.is_none() {
                // Layer creates an identity only with a display name. Without one, the
                // identity appears at the user's first login, from the token's claims (which
                // carry none either), and later changes patch it.
                return Outcome::Done;
            }
            let body = Value::Object(
                OWNED_FIELDS
                    .iter()
                    .zip(&wanted)
                    .map(|(name, value)| ((*name).to_owned(), json!(value)))
                    .collect(),
            );
            return match self
                .call(Method::PUT, url, Some(("application/json", body)))
                .await
            {
                Err(e) => Outcome::Retry(e),
                Ok((status, body)) => classify(status, &body, false),
            };
        };
        let ops: Vec<Value> = OWNED_FIELDS
            .iter()
            .zip(&wanted)
            .filter(|(name, value)| {
                let now = current.get(**name).and_then(Value::as_str).unwrap_or("");
                now != value.as_str()
            })
            .map(|(name, value)| json!({"operation": "set", "property": name, "value": value}))
            .collect();
        if ops.is_empty() {
            return Outcome::Done;
        }
        match self
            .call(
                Method::PATCH,
                url,
                Some((PATCH_CONTENT_TYPE, Value::Array(ops))),
            )
            .await
        {
            Err(e) => Outcome::Retry(e),
            Ok((status, body)) => classify(status, &body, false),
        }
    }

    /// `PATCH /users/{u}` setting `suspended`; suspending also ends the user's sessions
    /// (`DELETE /users/{u}/sessions`), which Layer did on suspension too — asked for
    /// explicitly so a Layer that applies suspension late still logs the user out now.
    pub async fn set_suspended(&self, user_id: &str, suspended: bool) -> Outcome {
        let ops = json!([{"operation": "set", "property": "suspended", "value": suspended}]);
        let outcome = match self
            .call(
                Method::PATCH,
                self.user_url(user_id, ""),
                Some((PATCH_CONTENT_TYPE, ops)),
            )
            .await
        {
            Err(e) => return Outcome::Retry(e),
            Ok((status, body)) => classify(status, &body, true),
        };
        if outcome != Outcome::Done || !suspended {
            return outcome;
        }
        match self
            .call(Method::DELETE, self.user_url(user_id, "/sessions"), None)
            .await
        {
            Err(e) => Outcome::Retry(e),
            Ok((status, body)) => classify(status, &body, true),
        }
    }

    pub async fn delete_identity(&self, user_id: &str) -> Outcome {
        match self
            .call(Method::DELETE, self.user_url(user_id, "/identity"), None)
            .await
        {
            Err(e) => Outcome::Retry(e),
            Ok((status, body)) => classify(status, &body, true),
        }
    }
}

/// Characters left as they are in a path segment: RFC 3986's unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn owned_fields(user: &User) -> [String; 4] {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        value(&user.display_name),
        value(&user.first_name),
        value(&user.last_name),
        value(&user.avatar_url),
    ]
}

/// What an answer means. `not_found_is_done`: for a suspension or a deletion, a user Layer
/// has never seen has nothing to suspend or delete.
fn classify(status: StatusCode, body: &[u8], not_found_is_done: bool) -> Outcome {
    if status.is_success() || (not_found_is_done && status == StatusCode::NOT_FOUND) {
        return Outcome::Done;
    }
    let reason = format!("{status}{}", layer_error(body));
    let temporary = status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
        );
    if temporary {
        Outcome::Retry(reason)
    } else {
        Outcome::GiveUp(reason)
    }
}

/// `: <id>: <message>` from a Layer error body, shortened; empty when it is not one.
fn layer_error(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let id = value.get("id").and_then(Value::as_str).unwrap_or("");
    let message = value.get("message").and_then(Value::as_str).unwrap_or("");
    let text = format!(": {id}: {message}");
    text.chars().take(300).collect()
}

/// A transport failure, without the URL's query (there is none) or any header.
fn describe_transport(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        format!("request failed: {}", e.without_url())
    }
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_throttling_and_refused_tokens_are_retried() {
        for status in [500, 502, 503, 408, 429, 401, 403] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(classify(status, b"", false), Outcome::Retry(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn a_refused_change_is_given_up_and_says_why() {
        let body = br#"{"id":"invalid_property","code":105,"message":"too long"}"#;
        let outcome = classify(StatusCode::UNPROCESSABLE_ENTITY, body, false);
        assert_eq!(
            outcome,
            Outcome::GiveUp("422 Unprocessable Entity: invalid_property: too long".to_owned())
        );
    }

    #[test]
    fn an_unknown_user_is_done_only_where_there_is_nothing_to_undo() {
        assert_eq!(classify(StatusCode::NOT_FOUND, b"", true), Outcome::Done);
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, b"", false),
            Outcome::GiveUp(_)
        ));
    }

    #[test]
    fn user_ids_are_one_path_segment() {
        let client = PlatformClient::new(
            SyncTarget {
                base_url: "http://layer.test".to_owned(),
                app: crate::app_id::ClientAppId::parse("7a3fe2e4-0000-4000-8000-000000000001")
                    .unwrap(),
                token: "t".to_owned().into(),
            },
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            client.user_url("a/b c%", "/identity"),
            "http://layer.test/apps/7a3fe2e4-0000-4000-8000-000000000001/users/a%2Fb%20c%25/identity"
        );
    }
}
