//! `GET /metrics` on its own listener, read as Prometheus reads it: the exposition is parsed
//! by a grammar-based OpenMetrics parser, and the series are checked against what the
//! requests of the test did.

use futures_util::StreamExt;
use openmetrics_parser::{
    MetricNumber, MetricsExposition, OpenMetricsType, OpenMetricsValue, openmetrics,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{manual_clock, spawn_app, spawn_app_with_clock};

const APP_ID: &str = "layer:///apps/staging/2f7a6b1e-4c3d-4e5f-8a9b-0c1d2e3f4a5b";
const PASSWORD: &str = "correct horse battery";

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// A parsed scrape.
struct Scrape {
    text: String,
    exposition: Exposition,
}

impl Scrape {
    /// The samples of `family` whose labels include every pair of `labels`.
    fn samples(&self, family: &str, labels: &[(&str, &str)]) -> Vec<OpenMetricsValue> {
        let Some(family) = self.exposition.families.get(family) else {
            panic!("no family {family} in\n{}", self.text);
        };
        family
            .iter_samples()
            .filter(|sample| {
                let set = sample.get_labelset().unwrap();
                labels
                    .iter()
                    .all(|(name, value)| set.get_label_value(name) == Some(*value))
            })
            .map(|sample| sample.value.clone())
            .collect()
    }

    /// The sum of the matching counters or gauges (0 when none matches).
    fn value(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(family, labels)
            .into_iter()
            .map(|value| match value {
                OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
                OpenMetricsValue::Gauge(gauge) => gauge.as_f64(),
                other => panic!("{family} is not a counter or gauge: {other:?}"),
            })
            .sum()
    }

    /// The summed count and sum of the matching histograms.
    fn histogram(&self, family: &str, labels: &[(&str, &str)]) -> (u64, f64) {
        self.samples(family, labels)
            .into_iter()
            .map(|value| match value {
                OpenMetricsValue::Histogram(h) => (
                    h.count.unwrap_or_default(),
                    h.sum.as_ref().map(MetricNumber::as_f64).unwrap_or_default(),
                ),
                other => panic!("{family} is not a histogram: {other:?}"),
            })
            .fold((0, 0.0), |(c, s), (count, sum)| (c + count, s + sum))
    }
}

async fn scrape(client: &reqwest::Client, addr: std::net::SocketAddr) -> Scrape {
    let response = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let exposition = openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("the exposition does not parse: {e:?}\n{text}"));
    Scrape { text, exposition }
}

#[tokio::test]
async fn the_metrics_listener_is_off_unless_configured_and_never_on_the_public_listener() {
    let app = spawn_app().await;
    assert!(app.metrics_addr.is_none());
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 404);
    let body = response.text().await.unwrap();
    assert!(!body.contains("layer_idp_"), "{body}");
}

#[tokio::test]
async fn the_series_move_as_logins_tokens_and_emulator_traffic_dictate() {
    // A manual clock: a held attempt stays held however slow the machine.
    let app = spawn_app_with_clock(manual_clock(), |settings| {
        settings.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        settings.mock_layer.listen = Some("127.0.0.1:0".parse().unwrap());
        settings.mock_layer.app_ids = vec![layer_idp::mock_layer::AppId::parse(APP_ID).unwrap()];
    })
    .await;
    let metrics_addr = app.metrics_addr.expect("metrics listen");
    let emulator = format!("http://{}", app.mock_layer_addr.unwrap());
    let http = reqwest::Client::new();

    // Before anything: every series exists, at zero.
    let before = scrape(&http, metrics_addr).await;
    assert_eq!(before.value("layer_idp_identity_tokens_issued", &[]), 0.0);
    assert_eq!(before.value("layer_idp_logins", &[]), 0.0);
    assert_eq!(
        before.samples("layer_idp_logins", &[]).len(),
        6,
        "every outcome, at 0"
    );
    assert_eq!(
        before.histogram("layer_idp_hash_queue_wait_seconds", &[]).0,
        0
    );
    assert_eq!(before.value("layer_idp_hash_queue_depth", &[]), 0.0);

    // One sign-up (a hash), two good logins, two tokens, one nonce refused a second time.
    let user = app.sign_up("ada@example.com", PASSWORD).await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let session = app.session_token("ada@example.com", PASSWORD).await;
    let layer_nonce: Value = http
        .post(format!("{emulator}/nonces"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layer_nonce = layer_nonce["nonce"].as_str().unwrap().to_owned();
    let token = app
        .identity_token("ada@example.com", PASSWORD, &layer_nonce)
        .await;
    let second = app.post_identity_tokens(&session, "a-second-nonce").await;
    assert_eq!(second.status(), 200);
    let again = app.post_identity_tokens(&session, "a-second-nonce").await;
    assert_eq!(again.status(), 409);
    // One unknown e-mail, five wrong passwords, then one attempt held.
    let unknown = app
        .post_json(
            "/sessions",
            &json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(unknown.status(), 401);
    for _ in 0..5 {
        let wrong = app
            .post_json(
                "/sessions",
                &json!({"email": "ada@example.com", "password": "wrong horse battery"}),
            )
            .await;
        assert_eq!(wrong.status(), 401);
    }
    let held = app
        .post_json(
            "/sessions",
            &json!({"email": "ada@example.com", "password": "wrong horse battery"}),
        )
        .await;
    assert_eq!(held.status(), 429);

    // The emulator: a session from the identity token, a socket, a conversation, a message.
    let layer_session: Value = http
        .post(format!("{emulator}/sessions"))
        .json(&json!({"identity_token": token, "app_id": APP_ID}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layer_session = layer_session["session_token"].as_str().unwrap().to_owned();
    let mut request = format!(
        "{}/websocket/?session_token={layer_session}",
        emulator.replace("http://", "ws://")
    )
    .into_client_request()
    .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "layer-2.0".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let auth = format!("Layer session-token=\"{layer_session}\"");
    let conversation: Value = http
        .post(format!("{emulator}/conversations"))
        .header("authorization", &auth)
        .json(&json!({"participants": [user_id], "distinct": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation_path = conversation["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("layer://");
    let message = http
        .post(format!("{emulator}{conversation_path}/messages"))
        .header("authorization", &auth)
        .json(&json!({"parts": [{"mime_type": "text/plain", "body": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(message.status(), 201);

    let after = scrape(&http, metrics_addr).await;
    // Identity provider.
    assert_eq!(after.value("layer_idp_identity_tokens_issued", &[]), 2.0);
    for (outcome, count) in [("ok", 2.0), ("unknown", 1.0), ("wrong", 5.0), ("held", 1.0)] {
        assert_eq!(
            after.value("layer_idp_logins", &[("outcome", outcome)]),
            count,
            "logins {outcome}"
        );
    }
    assert_eq!(
        after.value("layer_idp_throttled_attempts", &[("purpose", "login")]),
        1.0
    );
    // A hash each: the sign-up, two good logins, the unknown e-mail (against the dummy hash),
    // five wrong passwords. The held attempt costs none.
    assert_eq!(
        after.histogram("layer_idp_hash_queue_wait_seconds", &[]).0,
        9
    );
    assert_eq!(after.value("layer_idp_hash_queue_depth", &[]), 0.0);
    // Three claims (two signed, one refused), one at a time: three batches of one.
    assert_eq!(
        after.histogram("layer_idp_nonce_ledger_batch_size", &[]),
        (3, 3.0)
    );
    // Each of those writes timed; and a session read for each of the two token requests
    // that carried the session (the login's claim came with its password, not a session).
    let (writes, write_seconds) =
        after.histogram("layer_idp_db_batch_seconds", &[("batch", "nonce_ledger")]);
    assert_eq!(writes, 3);
    assert!(write_seconds > 0.0, "{}", after.text);
    let (reads, read_seconds) =
        after.histogram("layer_idp_db_batch_seconds", &[("batch", "session_lookup")]);
    assert_eq!(reads, 2);
    assert!(read_seconds > 0.0, "{}", after.text);
    let pools = after.samples("layer_idp_db_pool_connections", &[]);
    assert!(!pools.is_empty(), "{}", after.text);
    assert!(after.value("layer_idp_db_pool_max_connections", &[]) >= 1.0);
    // HTTP, by route pattern and status class.
    let idp = |route, status| {
        after.value(
            "layer_idp_http_requests",
            &[
                ("face", "idp"),
                ("method", "POST"),
                ("route", route),
                ("status", status),
            ],
        )
    };
    assert_eq!(idp("/sessions", "2xx"), 1.0);
    assert_eq!(idp("/sessions", "4xx"), 7.0);
    assert_eq!(idp("/authenticate", "2xx"), 1.0);
    assert_eq!(idp("/identity_tokens", "2xx"), 1.0);
    assert_eq!(idp("/identity_tokens", "4xx"), 1.0);
    assert_eq!(idp("/users", "2xx"), 1.0);
    assert_eq!(
        after
            .histogram(
                "layer_idp_http_request_duration_seconds",
                &[("face", "idp"), ("route", "/sessions")]
            )
            .0,
        8
    );
    // The Layer emulator: nonce, session, conversation and message; the socket's upgrade.
    assert_eq!(
        after.value(
            "layer_idp_http_requests",
            &[
                ("face", "mock_layer"),
                ("method", "POST"),
                ("status", "2xx")
            ]
        ),
        4.0
    );
    assert_eq!(
        after.value(
            "layer_idp_http_requests",
            &[("face", "mock_layer"), ("method", "GET"), ("status", "1xx")]
        ),
        1.0
    );
    assert_eq!(after.value("layer_idp_emulator_sockets_open", &[]), 1.0);
    // With the emulator in the process, identity sync runs and reports its backlog.
    assert_eq!(
        after.samples("layer_idp_identity_sync_backlog", &[]).len(),
        1,
        "{}",
        after.text
    );
    assert_eq!(
        after.value("layer_idp_emulator_messages_created", &[("app", APP_ID)]),
        1.0
    );
    // No label carries a user, an e-mail, a nonce or a token.
    for secret in [
        "ada@example.com",
        user_id.as_str(),
        layer_nonce.as_str(),
        "a-second-nonce",
        session.as_str(),
        layer_session.as_str(),
    ] {
        assert!(!after.text.contains(secret), "{secret} in\n{}", after.text);
    }

    // The public listeners serve no metrics.
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), 404);
    let emulator_metrics = http
        .get(format!("{emulator}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !emulator_metrics.contains("layer_idp_"),
        "{emulator_metrics}"
    );
    socket.close(None).await.unwrap();
    while socket.next().await.is_some() {}
}

/// A webhook receiver on 127.0.0.1: echoes the verification challenge, answers deliveries 204.
fn start_webhook_receiver() -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/hook",
                web::get().to(
                    |q: web::Query<std::collections::HashMap<String, String>>| async move {
                        let challenge = q.get("verification_challenge").cloned();
                        HttpResponse::Ok().body(challenge.unwrap_or_default())
                    },
                ),
            )
            .route("/hook", web::post().to(HttpResponse::NoContent))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

#[tokio::test]
async fn the_emulator_s_webhook_deliveries_are_counted_by_outcome() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        settings.mock_layer.listen = Some("127.0.0.1:0".parse().unwrap());
        settings.mock_layer.app_ids = vec![layer_idp::mock_layer::AppId::parse(APP_ID).unwrap()];
        // A loaded machine must not turn a slow answer into a failure.
        settings.mock_layer.webhook_timeout_ms = 60_000;
    })
    .await;
    let metrics_addr = app.metrics_addr.expect("metrics listen");
    let emulator = format!("http://{}", app.mock_layer_addr.unwrap());
    let http = reqwest::Client::new();
    let apps: Value = http
        .get(format!("{emulator}/_mock/apps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = apps["platform_tokens"][APP_ID].as_str().unwrap().to_owned();
    let app_uuid = APP_ID.rsplit('/').next().unwrap();
    let api = |method: reqwest::Method, path: &str, accept: &str, body: Value| {
        http.request(method, format!("{emulator}/apps/{app_uuid}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", accept)
            .json(&body)
            .send()
    };
    let webhooks = "application/vnd.layer.webhooks+json; version=1.0";
    let platform = "application/vnd.layer+json; version=1.0";
    let receiver = start_webhook_receiver();
    let created: Value = api(
        reqwest::Method::POST,
        "/webhooks",
        webhooks,
        json!({"version": "1.0", "target_url": receiver, "events": ["message.sent"], "secret": "s"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let hook_path = format!(
        "/webhooks/{}",
        created["id"].as_str().unwrap().rsplit('/').next().unwrap()
    );
    // Activation verifies before it answers.
    let activated: Value = api(
        reqwest::Method::POST,
        &format!("{hook_path}/activate"),
        webhooks,
        Value::Null,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(activated["status"], "active", "{activated}");

    let conversation: Value = api(
        reqwest::Method::POST,
        "/conversations",
        platform,
        json!({"participants": ["ada", "bob"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let conversation_uuid = conversation["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let sent = api(
        reqwest::Method::POST,
        &format!("/conversations/{conversation_uuid}/messages"),
        platform,
        json!({"sender": {"name": "Admin"}, "parts": [{"mime_type": "text/plain", "body": "hi"}]}),
    )
    .await
    .unwrap();
    assert_eq!(sent.status(), 201);

    // The delivery is sent in the background; look again until it is counted (the bound
    // guards against hanging, it is no timing requirement).
    let mut counted = None;
    for _ in 0..6000 {
        let now = scrape(&http, metrics_addr).await;
        if now.text.contains("outcome=\"delivered\"") {
            counted = Some(now);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let counted = counted.expect("the delivery was never counted");
    let outcome = |o| counted.value("layer_idp_emulator_webhook_deliveries", &[("outcome", o)]);
    assert_eq!(outcome("delivered"), 1.0, "{}", counted.text);
    assert!(
        !counted.text.contains("outcome=\"failed\""),
        "{}",
        counted.text
    );
}

/// An unused loopback port (the OS picked it; free again once the listener drops).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_emulator_alone_serves_its_metrics_on_a_listener_of_its_own() {
    let (layer_port, metrics_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_layer-idp");
    // A key for the emulator to trust: it will not start without one.
    let keys = std::process::Command::new(bin)
        .current_dir(dir.path())
        .args(["keys", "generate", "--out-dir", "keys", "--name", "k"])
        .output()
        .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    let mut child = std::process::Command::new(bin)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .args([
            "mock-layer",
            "--app-id",
            APP_ID,
            "--provider-id",
            "layer:///providers/p",
        ])
        .args(["--key", "layer:///keys/k=keys/k.public.pem", "--listen"])
        .arg(format!("127.0.0.1:{layer_port}"))
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let started = std::time::Instant::now();
    let http = reqwest::Client::new();
    let emulator = format!("http://127.0.0.1:{layer_port}");
    // Up once both listeners answer (bounded, so a start that failed fails the test).
    loop {
        let up = http
            .get(format!("{emulator}/_mock/apps"))
            .send()
            .await
            .is_ok()
            && http
                .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
                .send()
                .await
                .is_ok();
        if up {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mock-layer exited: {status}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "never up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _child = Kill(child);
    let nonce = http
        .post(format!("{emulator}/nonces"))
        .send()
        .await
        .unwrap();
    assert_eq!(nonce.status(), 201);

    let addr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let scrape = scrape(&http, addr).await;
    assert!(
        scrape.value(
            "layer_idp_http_requests",
            &[
                ("face", "mock_layer"),
                ("method", "POST"),
                ("status", "2xx")
            ]
        ) >= 1.0,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.value("layer_idp_emulator_sockets_open", &[]), 0.0);
    assert!(
        !scrape.text.contains("face=\"idp\""),
        "no identity provider runs here: {}",
        scrape.text
    );
    // Never on the emulator's own listener.
    let on_emulator = http
        .get(format!("{emulator}/metrics"))
        .send()
        .await
        .unwrap();
    assert_ne!(on_emulator.status(), 200);
}
