//! Who may use the `/_mock/` test controls: no web page (no CORS, no `Origin`), no foreign
//! `Host` (DNS rebinding), the control token when one is set; and one upload per upload
//! URL at a time.

use layer_idp::mock_layer::settings::PlatformToken;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::helpers::*;

const CONTROL_TOKEN: &str = "control-token-for-the-tests";

/// Whether the world still holds alice's conversation (a reset would have emptied it).
async fn conversations_of(emulator: &Emulator, session: &str) -> usize {
    let listed: Value = emulator
        .get("/conversations", session)
        .await
        .json()
        .await
        .unwrap();
    listed.as_array().unwrap().len()
}

async fn a_world_with_one_conversation(emulator: &Emulator) -> String {
    let alice = emulator.login("alice").await;
    let created = emulator
        .send(
            Method::POST,
            "/conversations",
            &alice,
            Some(serde_json::json!({"participants": ["alice", "bob"]})),
        )
        .await;
    assert_eq!(created.status(), 201);
    assert_eq!(conversations_of(emulator, &alice).await, 1);
    alice
}

fn assert_layer_error(body: &Value, id: &str) {
    assert_eq!(body["id"], id, "{body}");
    assert!(body["code"].is_u64(), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn a_web_page_cannot_use_the_test_controls_but_keeps_layer_s_cors() {
    let emulator = spawn_emulator().await;
    let alice = a_world_with_one_conversation(&emulator).await;

    // A page on another site: its preflight is refused, and so is a "simple" POST, which
    // needs none and would otherwise run before the browser hides the answer.
    let preflight = emulator
        .http
        .request(Method::OPTIONS, format!("{}/_mock/reset", emulator.url))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::FORBIDDEN);
    for path in ["reset", "requests", "notifications", "apps"] {
        let method = if path == "reset" {
            Method::POST
        } else {
            Method::GET
        };
        let response = emulator
            .http
            .request(method, format!("{}/_mock/{path}", emulator.url))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            response
                .headers()
                .keys()
                .all(|h| !h.as_str().starts_with("access-control-")),
            "{path}: {:?}",
            response.headers()
        );
        assert_layer_error(&response.json().await.unwrap(), "access_denied");
    }
    // `Sec-Fetch-Site` alone (a browser that sends no Origin on a GET) is refused too.
    let fetched = emulator
        .http
        .get(format!("{}/_mock/notifications", emulator.url))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        conversations_of(&emulator, &alice).await,
        1,
        "nothing reset"
    );

    // A test or a backend (no Origin) is answered, without CORS headers.
    let apps = emulator
        .http
        .get(format!("{}/_mock/apps", emulator.url))
        .send()
        .await
        .unwrap();
    assert_eq!(apps.status(), 200);
    assert!(
        apps.headers()
            .keys()
            .all(|h| !h.as_str().starts_with("access-control-"))
    );

    // Layer's own paths keep their CORS for the SDKs in pages.
    let layer = emulator
        .http
        .get(format!("{}/conversations", emulator.url))
        .header("authorization", auth(&alice))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(layer.status(), 200);
    assert_eq!(
        layer.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test]
async fn a_rebound_host_name_cannot_reach_the_test_controls() {
    let emulator = spawn_emulator().await;
    let alice = a_world_with_one_conversation(&emulator).await;
    let port = emulator.url.rsplit(':').next().unwrap().to_owned();
    for host in [
        format!("rebind.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("10.1.2.3:{port}"),
    ] {
        let response = emulator
            .http
            .post(format!("{}/_mock/reset", emulator.url))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{host}");
        assert_layer_error(&response.json().await.unwrap(), "access_denied");
    }
    assert_eq!(
        conversations_of(&emulator, &alice).await,
        1,
        "nothing reset"
    );
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let response = emulator
            .http
            .get(format!("{}/_mock/apps", emulator.url))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
    // Layer's own paths answer whatever the Host, as the real service did behind its names.
    let layer = emulator
        .http
        .get(format!("{}/conversations", emulator.url))
        .header("authorization", auth(&alice))
        .header("host", format!("api.layer.test:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(layer.status(), 200);
}

#[tokio::test]
async fn with_a_control_token_the_test_controls_need_it() {
    let emulator = spawn_with(|settings| {
        settings.control_token = Some(PlatformToken(CONTROL_TOKEN.to_owned()));
    })
    .await;
    let alice = a_world_with_one_conversation(&emulator).await;
    let reset = |authorization: Option<String>| {
        let mut request = emulator.http.post(format!("{}/_mock/reset", emulator.url));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    for refused in [
        None,
        Some("Bearer wrong-token-of-some-length".to_owned()),
        Some(CONTROL_TOKEN.to_owned()),
        Some(format!("Basic {CONTROL_TOKEN}")),
    ] {
        let response = reset(refused.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{refused:?}");
        assert_layer_error(&response.json().await.unwrap(), "authentication_required");
    }
    assert_eq!(
        conversations_of(&emulator, &alice).await,
        1,
        "nothing reset"
    );
    let response = reset(Some(format!("Bearer {CONTROL_TOKEN}")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // The reset ended alice's session, as the controls document.
    let after = emulator.get("/conversations", &alice).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_request_journal_can_be_read_for_one_app() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let production = emulator.login_to("pat", PRODUCTION).await;
    emulator.get("/conversations", &alice).await;
    emulator.get("/conversations", &production).await;

    let journal = |query: String| {
        let url = format!("{}/_mock/requests{query}", emulator.url);
        let http = emulator.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let all: Value = journal(String::new()).await.json().await.unwrap();
    let users = |entries: &Value| {
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["user_id"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert!(users(&all).contains(&"alice".to_owned()));
    assert!(users(&all).contains(&"pat".to_owned()));

    let staging: Value = journal(format!("?app_id={}", urlencode(STAGING)))
        .await
        .json()
        .await
        .unwrap();
    let staging = staging.as_array().unwrap();
    assert!(!staging.is_empty());
    assert!(
        staging.iter().all(|e| e["app_id"] == STAGING),
        "{staging:?}"
    );

    let unknown =
        journal("?app_id=layer:///apps/staging/00000000-0000-0000-0000-000000000000".into()).await;
    assert_eq!(unknown.status(), StatusCode::FORBIDDEN);
    assert_layer_error(&unknown.json().await.unwrap(), "invalid_app_id");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A raw `PUT` of `length` bytes to `upload_url`, head and `body_start` sent, the rest not.
async fn start_put(upload_url: &str, length: usize, body_start: &[u8]) -> TcpStream {
    let rest = upload_url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body_start).await.unwrap();
    tcp
}

/// The status of the answer on `tcp`.
async fn status_of(tcp: &mut TcpStream) -> u16 {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_second_upload_to_one_url_is_refused_before_its_body_is_read() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let content: Value = emulator
        .reserve_content(&alice, 6)
        .await
        .json()
        .await
        .unwrap();
    let upload = content["upload_url"].as_str().unwrap().to_owned();

    // The first PUT sends half its body and holds the URL while it waits for the rest.
    let mut first = start_put(&upload, 6, b"abc").await;
    // Until the emulator has taken up the first PUT, a probe announcing too long a body is
    // refused for its size (and holds nothing); once the first holds the URL, the probe is
    // refused for that. The emulator runs one worker here, and a probe's claim and release
    // happen in one step, so the probe can never be what the first PUT runs into.
    let mut held = false;
    for _ in 0..10_000 {
        let mut probe = start_put(&upload, 1_000, b"").await;
        match status_of(&mut probe).await {
            409 => {
                held = true;
                break;
            }
            400 => tokio::task::yield_now().await,
            other => panic!("the probe got {other}"),
        }
    }
    assert!(held, "the first PUT never held the upload URL");
    // A second PUT of the right size is refused before a byte of its body is sent.
    let mut second = start_put(&upload, 6, b"").await;
    assert_eq!(status_of(&mut second).await, 409);

    first.write_all(b"def").await.unwrap();
    assert_eq!(status_of(&mut first).await, 200);
    // The URL took its one upload.
    let again = emulator
        .http
        .put(&upload)
        .body("xyzxyz")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_upload_whose_client_goes_away_gives_its_url_back() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let content: Value = emulator
        .reserve_content(&alice, 6)
        .await
        .json()
        .await
        .unwrap();
    let upload = content["upload_url"].as_str().unwrap().to_owned();
    let first = start_put(&upload, 6, b"abc").await;
    let mut held = false;
    for _ in 0..10_000 {
        let mut probe = start_put(&upload, 1_000, b"").await;
        if status_of(&mut probe).await == 409 {
            held = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(held, "the first PUT never held the upload URL");
    drop(first);
    // Once the emulator notices the dropped connection, the URL takes an upload again.
    let mut landed = false;
    for _ in 0..10_000 {
        let response = emulator
            .http
            .put(&upload)
            .body("abcdef")
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => {
                landed = true;
                break;
            }
            409 => tokio::task::yield_now().await,
            other => panic!("the upload got {other}"),
        }
    }
    assert!(landed, "the abandoned upload kept its URL");
}
