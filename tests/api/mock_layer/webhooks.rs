//! The Webhooks API and its deliveries, to a real HTTP receiver on 127.0.0.1 that checks
//! every signature with its own HMAC-SHA1 (RFC 2104 over SHA-1, written here from the
//! specification, not the emulator's code).

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::helpers::{Emulator, spawn_with};
use super::platform::{APP_UUID, Server, V1 as PLATFORM_V1};

const WEBHOOKS_V1: &str = "application/vnd.layer.webhooks+json; version=1.0";
const WEBHOOKS_V3: &str = "application/vnd.layer.webhooks+json; version=3.0";
const SECRET: &str = "the receiver's shared secret";

/// How often a test looks again for what happens in the background before it gives up: a
/// guard against hanging for ever, far beyond any real delay, not a timing requirement.
const POLLS: usize = 6000;

async fn poll_pause() {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
}

/// HMAC-SHA1 (RFC 2104), lower-case hex.
fn hmac_sha1_hex(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha1::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = Sha1::new();
    inner.update(pad(0x36));
    inner.update(message);
    let mut outer = Sha1::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_receiver_s_hmac_is_right() {
    // RFC 2202, test cases 1 and 2.
    assert_eq!(
        hmac_sha1_hex(&[0x0b; 20], b"Hi There"),
        "b617318655057264e28bc0b6fb378c8ef146be00"
    );
    assert_eq!(
        hmac_sha1_hex(b"Jefe", b"what do ya want for nothing?"),
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    );
}

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    event_type: String,
    request_id: String,
    webhook_id: String,
    user_agent: String,
    content_type: String,
    raw: Vec<u8>,
    body: Value,
}

#[derive(Default)]
struct ReceiverState {
    deliveries: Vec<Received>,
    /// Answer 500 to this many deliveries first.
    fail_first: usize,
    /// Answer 500 to every delivery.
    always_fail: bool,
    /// Never answer a delivery.
    hang: bool,
    /// Answer verification with 404.
    refuse_verification: bool,
    attempts: usize,
}

struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start(configure: impl FnOnce(&mut ReceiverState)) -> Receiver {
        let mut state = ReceiverState::default();
        configure(&mut state);
        let state = Arc::new(Mutex::new(state));
        let shared = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/hook", web::get().to(verification))
                .route("/hook", web::post().to(delivery))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    fn deliveries(&self) -> Vec<Received> {
        self.state.lock().unwrap().deliveries.clone()
    }

    /// Waits for `n` deliveries (they are sent in the background).
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..POLLS {
            let got = self.deliveries();
            if got.len() >= n {
                return got;
            }
            poll_pause().await;
        }
        panic!("{n} deliveries never arrived: {:?}", self.deliveries());
    }
}

async fn verification(
    state: web::Data<Mutex<ReceiverState>>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    if state.lock().unwrap().refuse_verification {
        return HttpResponse::NotFound().finish();
    }
    match query.get("verification_challenge") {
        Some(challenge) => HttpResponse::Ok().body(challenge.clone()),
        None => HttpResponse::BadRequest().finish(),
    }
}

async fn delivery(
    state: web::Data<Mutex<ReceiverState>>,
    req: HttpRequest,
    raw: web::Bytes,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let hang = {
        let mut state = state.lock().unwrap();
        state.attempts += 1;
        state.hang
    };
    if hang {
        std::future::pending::<()>().await;
    }
    // A bad signature is refused and not recorded: the tests then never see the delivery.
    if hmac_sha1_hex(SECRET.as_bytes(), &raw) != header("layer-webhook-signature") {
        return HttpResponse::Unauthorized().finish();
    }
    let mut state = state.lock().unwrap();
    if state.always_fail || state.fail_first > 0 {
        state.fail_first = state.fail_first.saturating_sub(1);
        return HttpResponse::InternalServerError().finish();
    }
    state.deliveries.push(Received {
        event_type: header("layer-webhook-event-type"),
        request_id: header("layer-webhook-request-id"),
        webhook_id: header("layer-webhook-id"),
        user_agent: header("user-agent"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&raw).unwrap(),
        raw: raw.to_vec(),
    });
    HttpResponse::NoContent().finish()
}

/// The app's backend: the Platform and Webhooks APIs with the staging app's token.
struct Backend<'a> {
    server: Server<'a>,
}

impl<'a> Backend<'a> {
    async fn of(emulator: &'a Emulator) -> Backend<'a> {
        Backend {
            server: Server::of(emulator).await,
        }
    }

    fn request_raw(&self, method: Method, path: &str, accept: &str) -> reqwest::RequestBuilder {
        self.server.request_as(method, path, accept)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.server.call_as(method, path, accept, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn register(&self, accept: &str, target_url: &str, events: &[&str]) -> (u16, Value) {
        let version = &accept[accept.len() - 3..];
        let body = json!({
            "version": version, "target_url": target_url, "events": events,
            "secret": SECRET, "config": {"team": "backend"},
        });
        self.call(Method::POST, "/webhooks", accept, Some(body))
            .await
    }

    /// Registers a webhook and waits until its verification has run.
    async fn active_webhook(&self, accept: &str, target_url: &str, events: &[&str]) -> Value {
        let (status, created) = self.register(accept, target_url, events).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["status"], "unverified");
        self.settled(accept, &created, "active").await
    }

    /// Polls the webhook until its status is no longer `unverified`; checks it is `want`.
    async fn settled(&self, accept: &str, webhook: &Value, want: &str) -> Value {
        let path = format!("/webhooks/{}", uuid_of(webhook));
        for _ in 0..POLLS {
            let (status, got) = self.call(Method::GET, &path, accept, None).await;
            assert_eq!(status, 200, "{got}");
            if got["status"] != "unverified" {
                assert_eq!(got["status"], want, "{got}");
                return got;
            }
            poll_pause().await;
        }
        panic!("the webhook was never verified");
    }

    async fn conversation(&self, participants: &[&str]) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/conversations",
                PLATFORM_V1,
                Some(json!({"participants": participants})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn send(&self, conversation: &Value, sender: Value, text: &str) -> Value {
        let path = format!("/conversations/{}/messages", uuid_of(conversation));
        let body = json!({"sender": sender, "parts": [{"mime_type": "text/plain", "body": text}]});
        let (status, message) = self
            .call(Method::POST, &path, PLATFORM_V1, Some(body))
            .await;
        assert_eq!(status, 201, "{message}");
        message
    }
}

fn uuid_of(object: &Value) -> String {
    object["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// The emulator's delivery log.
async fn log(emulator: &Emulator) -> Value {
    serde_json::from_str(&emulator.control("webhooks").await).unwrap()
}

/// Polls the delivery log until `done` holds.
async fn log_until(emulator: &Emulator, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..POLLS {
        let log = log(emulator).await;
        if done(&log) {
            return log;
        }
        poll_pause().await;
    }
    panic!("the delivery log never got there: {}", log(emulator).await);
}

async fn patient_emulator() -> Emulator {
    // A loaded machine must not turn a slow answer into a failure.
    spawn_with(|s| s.webhook_timeout_ms = 60_000).await
}

#[tokio::test]
async fn webhooks_are_registered_verified_listed_deactivated_activated_and_deleted() {
    let emulator = patient_emulator().await;
    let backend = Backend::of(&emulator).await;
    let receiver = Receiver::start(|_| {}).await;
    let hook = backend
        .active_webhook(
            WEBHOOKS_V1,
            &receiver.url,
            &["message.sent", "conversation.created"],
        )
        .await;
    assert_eq!(hook["target_url"], receiver.url.as_str());
    assert_eq!(hook["version"], "1.0");
    assert_eq!(
        hook["events"],
        json!(["message.sent", "conversation.created"])
    );
    assert_eq!(hook["config"], json!({"team": "backend"}));
    assert!(hook.get("secret").is_none(), "the secret is never shown");
    assert!(
        hook["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("layer:///apps/{APP_UUID}/webhooks/"))
    );
    let path = format!("/webhooks/{}", uuid_of(&hook));

    let (status, listed) = backend
        .call(Method::GET, "/webhooks", WEBHOOKS_V1, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let (status, off) = backend
        .call(
            Method::POST,
            &format!("{path}/deactivate"),
            WEBHOOKS_V1,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(off["status"], "inactive");
    assert_eq!(off["status_reason"], "Deactivated by User");
    // Inactive: events are not delivered.
    let conversation = backend.conversation(&["alice", "bob"]).await;
    backend
        .send(&conversation, json!({"user_id": "alice"}), "unheard")
        .await;

    // Activation verifies before answering.
    let (status, on) = backend
        .call(Method::POST, &format!("{path}/activate"), WEBHOOKS_V1, None)
        .await;
    assert_eq!(status, 200, "{on}");
    assert_eq!(on["status"], "active");
    assert!(on.get("status_reason").is_none());
    backend
        .send(&conversation, json!({"user_id": "alice"}), "heard")
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["message"]["parts"][0]["body"], "heard");

    let (status, _) = backend.call(Method::DELETE, &path, WEBHOOKS_V1, None).await;
    assert_eq!(status, 204);
    let (status, gone) = backend.call(Method::GET, &path, WEBHOOKS_V1, None).await;
    assert_eq!(status, 404);
    assert_eq!(gone["id"], "not_found");
}

#[tokio::test]
async fn a_receiver_that_does_not_echo_the_challenge_leaves_the_webhook_inactive() {
    let emulator = patient_emulator().await;
    let backend = Backend::of(&emulator).await;
    let receiver = Receiver::start(|s| s.refuse_verification = true).await;
    let (status, created) = backend
        .register(WEBHOOKS_V1, &receiver.url, &["message.sent"])
        .await;
    assert_eq!(status, 201);
    let hook = backend.settled(WEBHOOKS_V1, &created, "inactive").await;
    let reason = hook["status_reason"].as_str().unwrap();
    assert!(reason.contains("404"), "{reason}");
    let conversation = backend.conversation(&["alice", "bob"]).await;
    backend
        .send(&conversation, json!({"user_id": "alice"}), "hi")
        .await;
    assert_eq!(receiver.state.lock().unwrap().attempts, 0);
}

#[tokio::test]
async fn deliveries_are_signed_compact_and_cover_every_1_0_event() {
    let emulator = patient_emulator().await;
    let backend = Backend::of(&emulator).await;
    let receiver = Receiver::start(|_| {}).await;
    let all = [
        "message.sent",
        "message.delivered",
        "message.read",
        "message.deleted",
        "conversation.created",
        "conversation.updated.participants",
        "conversation.updated.metadata",
        "conversation.deleted",
    ];
    let hook = backend
        .active_webhook(WEBHOOKS_V1, &receiver.url, &all)
        .await;

    // An SDK user creates a conversation and sends; the server sends under a name; bob's
    // receipts; the server edits and deletes.
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let created = emulator
        .send(
            Method::POST,
            "/conversations",
            &alice,
            Some(json!({"participants": ["alice", "bob"]})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let conversation: Value = created.json().await.unwrap();
    let conversation_path = format!("/conversations/{}", uuid_of(&conversation));
    let sent = emulator
        .send(
            Method::POST,
            &format!("{conversation_path}/messages"),
            &alice,
            Some(json!({"parts": [{"mime_type": "text/plain", "body": "héllo ☃"}]})),
        )
        .await;
    assert_eq!(sent.status(), 201);
    let message: Value = sent.json().await.unwrap();
    let message_path = format!("/messages/{}", uuid_of(&message));
    for kind in ["delivery", "read"] {
        let receipt = emulator
            .send(
                Method::POST,
                &format!("{message_path}/receipts"),
                &bob,
                Some(json!({"type": kind})),
            )
            .await;
        assert_eq!(receipt.status(), 204);
    }
    let system = backend
        .send(&conversation, json!({"name": "Admin"}), "from the system")
        .await;
    let (status, _) = backend
        .call(
            Method::PATCH,
            &conversation_path,
            PLATFORM_V1,
            Some(json!([
                {"operation": "add", "property": "participants", "value": "carol"},
                {"operation": "set", "property": "metadata.topic", "value": "webhooks"},
            ])),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = backend
        .call(
            Method::DELETE,
            &format!("{conversation_path}/messages/{}", uuid_of(&system)),
            PLATFORM_V1,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = backend
        .call(Method::DELETE, &conversation_path, PLATFORM_V1, None)
        .await;
    assert_eq!(status, 204);

    let got = receiver.wait_for(9).await;
    let mut types: Vec<&str> = got.iter().map(|d| d.event_type.as_str()).collect();
    types.sort_unstable();
    let mut want = vec![
        "conversation.created",
        "message.sent",
        "message.delivered",
        "message.read",
        "message.sent",
        "conversation.updated.participants",
        "conversation.updated.metadata",
        "message.deleted",
        "conversation.deleted",
    ];
    want.sort_unstable();
    assert_eq!(types, want);
    for delivery in &got {
        assert_eq!(delivery.body["event"]["type"], delivery.event_type.as_str());
        assert_eq!(delivery.webhook_id, uuid_of(&hook));
        assert_eq!(delivery.user_agent, "layer-webhooks/1.0");
        assert_eq!(delivery.content_type, WEBHOOKS_V1);
        assert!(uuid::Uuid::parse_str(&delivery.request_id).is_ok());
        assert_eq!(delivery.body["config"], json!({"team": "backend"}));
        // Compact JSON, raw UTF-8: parsing and writing it again gives the same bytes.
        assert_eq!(
            serde_json::to_vec(&delivery.body).unwrap(),
            delivery.raw,
            "{}",
            String::from_utf8_lossy(&delivery.raw)
        );
    }
    let of_type = |t: &'static str| got.iter().filter(move |d| d.event_type == t);
    let by_alice = of_type("message.sent")
        .find(|d| d.body["event"]["actor"]["user_id"] == "alice")
        .expect("alice's message.sent");
    assert_eq!(by_alice.body["message"]["parts"][0]["body"], "héllo ☃");
    assert!(String::from_utf8_lossy(&by_alice.raw).contains("héllo ☃"));
    let by_name = of_type("message.sent")
        .find(|d| d.body["event"]["actor"]["name"] == "Admin")
        .expect("the system message's message.sent");
    assert_eq!(by_name.body["message"]["sender"]["name"], "Admin");
    let read = of_type("message.read").next().unwrap();
    assert_eq!(read.body["event"]["actor"]["user_id"], "bob");
    assert_eq!(read.body["message"]["recipient_status"]["bob"], "read");
    let participants = of_type("conversation.updated.participants").next().unwrap();
    assert_eq!(
        participants.body["conversation"]["participants"],
        json!(["alice", "bob", "carol"])
    );
    let metadata = of_type("conversation.updated.metadata").next().unwrap();
    assert_eq!(
        metadata.body["conversation"]["metadata"]["topic"],
        "webhooks"
    );
    let deleted = of_type("conversation.deleted").next().unwrap();
    assert_eq!(deleted.body["conversation"]["id"], conversation["id"]);

    // The receiver answered each; the log says so once the emulator has read the answers.
    let log = log_until(&emulator, |log| {
        log["deliveries"]
            .as_array()
            .is_some_and(|d| d.len() == 9 && d.iter().all(|d| d["status"] != "pending"))
    })
    .await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1 && d["response_code"] == 204),
        "{log}"
    );
}

#[tokio::test]
async fn under_3_0_events_have_type_action_names_and_identities() {
    let emulator = patient_emulator().await;
    let backend = Backend::of(&emulator).await;
    let receiver = Receiver::start(|_| {}).await;
    backend
        .active_webhook(
            WEBHOOKS_V3,
            &receiver.url,
            &["Message.created", "Conversation.created"],
        )
        .await;
    let conversation = backend.conversation(&["alice", "bob"]).await;
    backend
        .send(&conversation, json!({"user_id": "alice"}), "three")
        .await;
    let got = receiver.wait_for(2).await;
    let created = got
        .iter()
        .find(|d| d.event_type == "Message.created")
        .unwrap();
    assert_eq!(created.user_agent, "layer-webhooks/3.0");
    assert_eq!(created.content_type, WEBHOOKS_V3);
    assert_eq!(created.body["actor"]["id"], "layer:///identities/alice");
    assert_eq!(
        created.body["message"]["sender"]["id"],
        "layer:///identities/alice"
    );
    assert!(got.iter().any(|d| d.event_type == "Conversation.created"));
}

#[tokio::test]
async fn a_failed_delivery_is_retried_on_the_emulator_s_clock_with_the_same_request_id() {
    let emulator = patient_emulator().await;
    let backend = Backend::of(&emulator).await;
    let receiver = Receiver::start(|s| s.fail_first = 2).await;
    backend
        .active_webhook(WEBHOOKS_V1, &receiver.url, &["message.sent"])
        .await;
    let conversation = backend.conversation(&["alice", "bob"]).await;
    backend
        .send(&conversation, json!({"user_id": "alice"}), "again")
        .await;
    let retrying = log_until(&emulator, |log| {
        log["deliveries"][0]["status"] == "retrying" && log["deliveries"][0]["attempts"] == 1
    })
    .await;
    assert_eq!(retrying["deliveries"][0]["response_code"], 500);
    let request_id = retrying["deliveries"][0]["request_id"].clone();
    // The retries wait for the app's clock: 1 s, then 2 s.
    emulator.advance_clock_ms(1_000).await;
    log_until(&emulator, |log| log["deliveries"][0]["attempts"] == 2).await;
    emulator.advance_clock_ms(2_000).await;
    let done = log_until(&emulator, |log| {
        log["deliveries"][0]["status"] == "delivered"
    })
    .await;
    assert_eq!(done["deliveries"][0]["attempts"], 3);
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request_id, request_id.as_str().unwrap());
}

#[tokio::test]
async fn deliveries_failing_for_thirty_minutes_make_the_webhook_inactive() {
    let emulator = patient_emulator().await;
    let backend = Backend::of(&emulator).await;
    let receiver = Receiver::start(|s| s.always_fail = true).await;
    let hook = backend
        .active_webhook(WEBHOOKS_V1, &receiver.url, &["message.sent"])
        .await;
    let conversation = backend.conversation(&["alice", "bob"]).await;
    backend
        .send(&conversation, json!({"user_id": "alice"}), "lost")
        .await;
    log_until(&emulator, |log| log["deliveries"][0]["attempts"] == 1).await;
    emulator.advance_clock_ms(31 * 60 * 1000).await;
    let failed = log_until(&emulator, |log| log["deliveries"][0]["status"] == "failed").await;
    assert_eq!(failed["deliveries"][0]["attempts"], 2);
    let (_, after) = backend
        .call(
            Method::GET,
            &format!("/webhooks/{}", uuid_of(&hook)),
            WEBHOOKS_V1,
            None,
        )
        .await;
    assert_eq!(after["status"], "inactive");
    assert!(
        after["status_reason"]
            .as_str()
            .unwrap()
            .contains("30 minutes")
    );
}

#[tokio::test]
async fn a_receiver_that_hangs_holds_up_nobody_and_overflow_is_recorded() {
    let emulator = spawn_with(|s| {
        s.webhook_timeout_ms = 600_000;
        s.webhook_queue_size = 3;
    })
    .await;
    let backend = Backend::of(&emulator).await;
    let receiver = Receiver::start(|_| {}).await;
    backend
        .active_webhook(WEBHOOKS_V1, &receiver.url, &["message.sent"])
        .await;
    receiver.state.lock().unwrap().hang = true;
    let conversation = backend.conversation(&["alice", "bob"]).await;
    // Every send answers although no delivery ever does.
    for i in 0..15 {
        backend
            .send(&conversation, json!({"user_id": "alice"}), &format!("{i}"))
            .await;
    }
    let log = log_until(&emulator, |log| {
        log["deliveries"].as_array().is_some_and(|d| d.len() == 15)
            && receiver.state.lock().unwrap().attempts == 8
    })
    .await;
    let count = |status: &str| {
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == status)
            .count()
    };
    // Eight in flight (hanging), three waiting, the rest dropped.
    assert_eq!(count("pending"), 11, "{log}");
    assert_eq!(count("dropped"), 4, "{log}");
    // The emulator still answers everyone.
    let alice = emulator.login("alice").await;
    assert_eq!(emulator.get("/conversations", &alice).await.status(), 200);
}

#[tokio::test]
async fn bad_webhook_requests_get_layer_errors_and_change_nothing() {
    let emulator = patient_emulator().await;
    let backend = Backend::of(&emulator).await;
    let receiver = Receiver::start(|_| {}).await;
    let good = json!({
        "version": "1.0", "target_url": receiver.url, "events": ["message.sent"], "secret": SECRET,
    });
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (WEBHOOKS_V1, without("version"), 422, "missing_property"),
        (WEBHOOKS_V1, without("target_url"), 422, "missing_property"),
        (WEBHOOKS_V1, without("events"), 422, "missing_property"),
        (WEBHOOKS_V1, without("secret"), 422, "missing_property"),
        (
            WEBHOOKS_V1,
            with("version", json!("3.0")),
            422,
            "invalid_property",
        ),
        (
            WEBHOOKS_V1,
            with("events", json!(["Message.created"])),
            422,
            "invalid_property",
        ),
        (
            WEBHOOKS_V1,
            with("events", json!([])),
            422,
            "invalid_property",
        ),
        (
            WEBHOOKS_V1,
            with("events", json!("message.sent")),
            422,
            "invalid_property",
        ),
        (
            WEBHOOKS_V1,
            with("target_url", json!("https://example.com/hook")),
            422,
            "invalid_property",
        ),
        (
            WEBHOOKS_V1,
            with("target_url", json!("not a url")),
            422,
            "invalid_property",
        ),
        (
            WEBHOOKS_V1,
            with("secret", json!(7)),
            422,
            "invalid_property",
        ),
        (
            WEBHOOKS_V1,
            with("config", json!({"n": 1})),
            422,
            "invalid_property",
        ),
        (WEBHOOKS_V1, json!([1]), 400, "invalid_request"),
        (PLATFORM_V1, good.clone(), 406, "invalid_header"),
        (
            "application/vnd.layer.webhooks+json; version=2.0",
            good.clone(),
            406,
            "invalid_header",
        ),
    ];
    for (accept, body, want_status, want_id) in cases {
        let (status, error) = backend
            .call(Method::POST, "/webhooks", accept, Some(body.clone()))
            .await;
        assert_eq!(status, want_status, "{body}: {error}");
        assert_eq!(error["id"], want_id, "{body}: {error}");
    }
    let (status, error) = backend
        .call(Method::GET, "/webhooks/not-a-uuid", WEBHOOKS_V1, None)
        .await;
    assert_eq!((status, error["id"].as_str()), (404, Some("not_found")));
    // A method the path does not take: 405 naming those it does, with the webhooks `Accept`.
    let wrong_method = backend
        .request_raw(Method::PUT, "/webhooks", WEBHOOKS_V1)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET, POST");
    let unknown = format!("/webhooks/{}/activate", uuid::Uuid::new_v4());
    let (status, _) = backend
        .call(Method::POST, &unknown, WEBHOOKS_V1, None)
        .await;
    assert_eq!(status, 404);
    let wrong_token = emulator
        .http
        .get(format!("{}/apps/{APP_UUID}/webhooks", emulator.url))
        .header("authorization", "Bearer wrong")
        .header("accept", WEBHOOKS_V1)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 401);

    let (status, listed) = backend
        .call(Method::GET, "/webhooks", WEBHOOKS_V1, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed, json!([]), "nothing was registered");
    assert_eq!(receiver.state.lock().unwrap().attempts, 0);
}
