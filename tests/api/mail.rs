//! Account lifecycle: mail, e-mail verification, password reset. Deliveries go through a real
//! SMTP server process (Python's aiosmtpd, started here) or, with no SMTP configured, to the
//! outbox directory; links are read from the delivered messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, manual_clock, spawn_app_with, spawn_app_with_clock};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// `python3 -m aiosmtpd` on a loopback port, writing each message into a Maildir.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        #[allow(clippy::zombie_processes)] // Drop kills and waits for it.
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        // Wait until it accepts connections.
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, port, dir };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the SMTP server did not start");
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir").join("new")
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every message in `dir` to `to` whose subject contains `subject`, waiting for at least
/// `count` (delivery happens after the answer, on a background task).
pub(crate) async fn messages(dir: &Path, to: &str, subject: &str, count: usize) -> Vec<String> {
    for _ in 0..1200 {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let headers = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
                if headers.contains(&format!("To: {to}")) && headers.contains(subject) {
                    found.push(text);
                }
            }
        }
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no message {subject:?} to {to} arrived in {}",
        dir.display()
    );
}

/// The token of the first link in the message's text (quoted-printable undone).
pub(crate) fn token_in(message: &str) -> String {
    let text = message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = text.find("token=").expect("a link with a token") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn status_and_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    app.post_json("/sessions", &json!({"email": email, "password": password}))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn sign_up_verification_through_a_real_smtp_server() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(|s| {
        s.mail.smtp_url = Some(url.into());
        s.mail.product_name = "Acme Chat".to_owned();
    })
    .await;
    let user = app.sign_up("vera@example.com", PASSWORD).await;
    assert_eq!(user["email_verified"], false);

    let mail = messages(
        &sink.maildir(),
        "vera@example.com",
        "Confirm your Acme Chat address",
        1,
    )
    .await
    .remove(0);
    assert!(mail.contains("multipart/alternative"), "{mail}");
    assert!(mail.contains("text/html"), "{mail}");
    let token = token_in(&mail);
    assert_eq!(token.len(), 43, "256 bits, URL-safe");

    // Malformed and unknown tokens change nothing.
    let (status, body) = status_and_body(
        app.post_json("/users/verify", &json!({"token": "short"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let unknown = "A".repeat(43);
    let (status, body) = status_and_body(
        app.post_json("/users/verify", &json!({"token": unknown}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_token"))
    );
    let session = app.session_token("vera@example.com", PASSWORD).await;
    let me: Value = app.get_me(&session).await.json().await.unwrap();
    assert_eq!(me["email_verified"], false);

    let (status, body) = status_and_body(
        app.post_json("/users/verify", &json!({"token": token}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], user["id"]);
    assert_eq!(body["email_verified"], true);

    // Single use.
    let (status, body) = status_and_body(
        app.post_json("/users/verify", &json!({"token": token}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_token"))
    );

    // A new address is unverified again, and gets its own message.
    let response = app
        .patch_me(
            &session,
            &json!({"email": "vera2@example.com", "current_password": PASSWORD}),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email_verified"], false, "{body}");
    let mail = messages(
        &sink.maildir(),
        "vera2@example.com",
        "Confirm your Acme Chat address",
        1,
    )
    .await
    .remove(0);
    let (status, body) = status_and_body(
        app.post_json("/users/verify", &json!({"token": token_in(&mail)}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["email_verified"].as_bool()),
        (200, Some(true))
    );
    // Each verification and the address change are in the audit trail.
    let kinds: Vec<String> = app
        .store
        .list_audit_events(0, 100, user["id"].as_str())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let verifications = kinds.iter().filter(|k| *k == "email_verification").count();
    assert_eq!(verifications, 2, "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "email_change"), "{kinds:?}");
}

#[tokio::test]
async fn password_reset_through_a_real_smtp_server_and_the_built_in_form() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(|s| s.mail.smtp_url = Some(url.into())).await;
    let rita = app.sign_up("rita@example.com", PASSWORD).await;
    let rita_id = rita["id"].as_str().unwrap().to_owned();
    let old_session = app.session_token("rita@example.com", PASSWORD).await;

    let known = app
        .post_json("/password_resets", &json!({"email": "rita@example.com"}))
        .await;
    let unknown = app
        .post_json("/password_resets", &json!({"email": "nobody@example.com"}))
        .await;
    let (known_status, known_body) = status_and_body(known).await;
    let (unknown_status, unknown_body) = status_and_body(unknown).await;
    assert_eq!(known_status, 202);
    assert_eq!((known_status, &known_body), (unknown_status, &unknown_body));

    let mail = messages(
        &sink.maildir(),
        "rita@example.com",
        "Reset your layer-idp password",
        1,
    )
    .await
    .remove(0);
    let token = token_in(&mail);

    // The built-in form shows for a live token, with no external assets.
    let form = app
        .get(&format!("/password_resets/form?token={token}"))
        .await;
    assert_eq!(form.status().as_u16(), 200);
    let html = form.text().await.unwrap();
    assert!(html.contains("<label for=\"password\">"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("http"),
        "{html}"
    );

    // A password under the policy changes nothing and leaves the token usable.
    let (status, body) = status_and_body(
        app.post_json(
            "/password_resets/confirm",
            &json!({"token": token, "password": "short"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_value"))
    );
    assert_eq!(login_status(&app, "rita@example.com", PASSWORD).await, 201);

    // Through the form, as a browser would post it.
    let response = app
        .post_form(
            "/password_resets/form",
            &format!("token={token}&password=a+brand+new+passphrase"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Your password was changed")
    );

    assert_eq!(login_status(&app, "rita@example.com", PASSWORD).await, 401);
    assert_eq!(
        login_status(&app, "rita@example.com", NEW_PASSWORD).await,
        201
    );
    assert_eq!(
        app.get_me(&old_session).await.status().as_u16(),
        401,
        "every session ended"
    );
    let session = app.session_token("rita@example.com", NEW_PASSWORD).await;
    let me: Value = app.get_me(&session).await.json().await.unwrap();
    assert_eq!(
        me["email_verified"], true,
        "the reset link proved the address"
    );

    // Used: refused, nothing changed.
    let (status, body) = status_and_body(
        app.post_json(
            "/password_resets/confirm",
            &json!({"token": token, "password": "yet another passphrase"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_token"))
    );
    assert_eq!(
        login_status(&app, "rita@example.com", NEW_PASSWORD).await,
        201
    );
    // The unknown address got nothing.
    let delivered = std::fs::read_dir(sink.maildir()).unwrap().count();
    let to_nobody = std::fs::read_dir(sink.maildir())
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .contains("nobody@example.com")
        })
        .count();
    assert!(delivered >= 1);
    assert_eq!(to_nobody, 0);
    // The audit trail has the request and the reset, under rita's ID.
    let kinds: Vec<String> = app
        .store
        .list_audit_events(0, 100, Some(&rita_id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in ["password_reset_request", "password_reset"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn reset_tokens_expire_and_a_newer_request_replaces_the_older() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    let outbox = app.settings.data_dir.join("outbox");
    app.sign_up("eve@example.com", PASSWORD).await;

    let request = json!({"email": "eve@example.com"});
    let ask = || app.post_json("/password_resets", &request);
    assert_eq!(ask().await.status().as_u16(), 202);
    let first = token_in(&messages(&outbox, "eve@example.com", "Reset", 1).await[0]);
    assert_eq!(ask().await.status().as_u16(), 202);
    let both = messages(&outbox, "eve@example.com", "Reset", 2).await;
    let second = both
        .iter()
        .map(|m| token_in(m))
        .find(|t| *t != first)
        .unwrap();

    let confirm_first = json!({"token": first, "password": NEW_PASSWORD});
    let confirm_second = json!({"token": second, "password": NEW_PASSWORD});
    let (status, body) = status_and_body(
        app.post_json("/password_resets/confirm", &confirm_first)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_token")),
        "replaced"
    );

    clock.advance(30 * 60 + 1);
    let (status, body) = status_and_body(
        app.post_json("/password_resets/confirm", &confirm_second)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_token")),
        "expired"
    );
    assert_eq!(
        login_status(&app, "eve@example.com", PASSWORD).await,
        201,
        "nothing changed"
    );

    // Bad input.
    let (status, _) = status_and_body(
        app.post_json("/password_resets", &json!({"email": "not an address"}))
            .await,
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = status_and_body(
        app.post_json(
            "/password_resets/confirm",
            &json!({"token": "x", "password": NEW_PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_password_change_invalidates_a_pending_reset() {
    let app = spawn_app_with(|_| {}).await;
    let outbox = app.settings.data_dir.join("outbox");
    app.sign_up("pat@example.com", PASSWORD).await;
    let session = app.session_token("pat@example.com", PASSWORD).await;
    app.post_json("/password_resets", &json!({"email": "pat@example.com"}))
        .await;
    let token = token_in(&messages(&outbox, "pat@example.com", "Reset", 1).await[0]);
    let response = app
        .patch_me(
            &session,
            &json!({"password": NEW_PASSWORD, "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let (status, _) = status_and_body(
        app.post_json(
            "/password_resets/confirm",
            &json!({"token": token, "password": "third passphrase here"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        login_status(&app, "pat@example.com", NEW_PASSWORD).await,
        201
    );
}

#[tokio::test]
async fn reset_requests_are_throttled_per_address() {
    let app = spawn_app_with(|_| {}).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let response = app
            .post_json("/password_resets", &json!({"email": "flood@example.com"}))
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[0], 202);
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn require_verified_email_refuses_only_a_correct_password() {
    let app = spawn_app_with(|s| s.accounts.require_verified_email = true).await;
    let outbox = app.settings.data_dir.join("outbox");
    app.sign_up("una@example.com", PASSWORD).await;
    assert_eq!(
        login_status(&app, "una@example.com", "wrong password here").await,
        401
    );
    let response = app
        .post_json(
            "/sessions",
            &json!({"email": "una@example.com", "password": PASSWORD}),
        )
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("email_not_verified"))
    );
    let token = token_in(&messages(&outbox, "una@example.com", "Confirm", 1).await[0]);
    app.post_json("/users/verify", &json!({"token": token}))
        .await;
    assert_eq!(login_status(&app, "una@example.com", PASSWORD).await, 201);
}

#[tokio::test]
async fn private_sign_up_answers_a_taken_address_like_a_new_one() {
    let app = spawn_app_with(|s| s.accounts.signup = layer_idp::config::SignupMode::Private).await;
    let outbox = app.settings.data_dir.join("outbox");
    let body = json!({"email": "own@example.com", "password": PASSWORD});
    let (first_status, first) = status_and_body(app.post_users(&body).await).await;
    let (again_status, again) = status_and_body(app.post_users(&body).await).await;
    assert_eq!(first_status, 202);
    assert_eq!((first_status, &first), (again_status, &again));
    assert!(first.get("id").is_none());
    messages(&outbox, "own@example.com", "Someone tried to sign up", 1).await;
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn closed_sign_up_is_refused() {
    let app = spawn_app_with(|s| s.accounts.signup = layer_idp::config::SignupMode::Closed).await;
    let (status, body) = status_and_body(
        app.post_users(&json!({"email": "x@example.com", "password": PASSWORD}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("signup_closed"))
    );
    assert_eq!(app.user_count().await, 0);
    // Admins still create users.
    let admin = app.admin_token().await;
    let response = app
        .client
        .post(app.url("/admin/users"))
        .bearer_auth(admin)
        .json(&json!({"email": "x@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn bad_bodies_are_refused_in_the_idp_format() {
    let app = spawn_app_with(|_| {}).await;
    for (path, body) in [
        ("/users/verify", json!({})),
        ("/users/verify", json!({"token": 5})),
        (
            "/password_resets",
            json!({"email": "a@example.com", "extra": 1}),
        ),
        ("/password_resets/confirm", json!({"token": "A".repeat(43)})),
    ] {
        let (status, body) = status_and_body(app.post_json(path, &body).await).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].is_string() && body["request_id"].is_string(),
            "{body}"
        );
    }
    let response = app.get("/password_resets/form?token=nonsense").await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("role=\"alert\""));
}

#[tokio::test]
async fn a_verification_link_expires_after_a_day_and_a_newer_one_replaces_it() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    let outbox = app.settings.data_dir.join("outbox");
    app.sign_up("ivy@example.com", PASSWORD).await;
    let first = token_in(&messages(&outbox, "ivy@example.com", "Confirm", 1).await[0]);
    clock.advance(24 * 3600 + 1);
    let (status, body) = status_and_body(
        app.post_json("/users/verify", &json!({"token": first}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_token"))
    );
    let session = app.session_token("ivy@example.com", PASSWORD).await;
    let me: Value = app.get_me(&session).await.json().await.unwrap();
    assert_eq!(me["email_verified"], false, "nothing changed");

    // A new address sends a new link, which works within the day.
    app.patch_me(
        &session,
        &json!({"email": "ivy2@example.com", "current_password": PASSWORD}),
    )
    .await;
    let second = token_in(&messages(&outbox, "ivy2@example.com", "Confirm", 1).await[0]);
    clock.advance(23 * 3600);
    let (status, body) = status_and_body(
        app.post_json("/users/verify", &json!({"token": second}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["email"].as_str()),
        (200, Some("ivy2@example.com"))
    );
    assert_eq!(body["email_verified"], true);
}

#[tokio::test]
async fn the_built_in_pages_also_ask_for_a_link() {
    let app = spawn_app_with(|_| {}).await;
    let outbox = app.settings.data_dir.join("outbox");
    app.sign_up("lee@example.com", PASSWORD).await;
    let page = app.get("/password_resets/form").await;
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("<label for=\"email\">"));
    let asked = app
        .post_form("/password_resets/form", "email=lee%40example.com")
        .await;
    assert_eq!(asked.status().as_u16(), 202);
    let token = token_in(&messages(&outbox, "lee@example.com", "Reset", 1).await[0]);
    let mixed = app
        .post_form(
            "/password_resets/form",
            &format!("email=lee%40example.com&token={token}"),
        )
        .await;
    assert_eq!(mixed.status().as_u16(), 400);
}
