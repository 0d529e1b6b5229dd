//! Stopping `layer-idp serve` (the built binary) under load: SIGTERM while tokens and logins
//! are being answered. The process must exit 0, every token it answered with 200 must have
//! its nonce in the database, and an emulator WebSocket must hear 1001 (going away).
//! Nothing here waits on the wall clock: the signal goes out once the load has been answered
//! a number of times, and everything after is awaited to its end.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use futures_util::StreamExt;
use layer_idp::config::DatabaseUrl;
use layer_idp::store::{NonceClaim, NonceRecord};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{KEY_ID, PROVIDER_ID, PgDatabase, test_settings};

const BIN: &str = env!("CARGO_BIN_EXE_layer-idp");
const PASSWORD: &str = "correct horse battery";
const APP_ID: &str = "layer:///apps/staging/6d1c0b3a-7e2f-4a5b-9c8d-1e2f3a4b5c6d";
/// Concurrent clients, each looping on its own connection.
const CLIENTS: usize = 8;
/// The signal goes out once this many tokens were answered.
const ANSWERED_BEFORE_SIGNAL: usize = 40;
/// A bound on each client's requests, so the test ends even if the signal is lost.
const MAX_REQUESTS_PER_CLIENT: usize = 5_000;

#[tokio::test]
async fn sigterm_under_load_loses_no_answered_token_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let postgres = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(PgDatabase::create(&url).await),
        _ => None,
    };
    let database_url = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("idp.db").display()),
    };
    let key_file = test_settings(dir.path())
        .signing
        .keys
        .first()
        .and_then(|k| k.private_key_file.clone())
        .unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--mock-layer-listen",
            "127.0.0.1:0",
            "--mock-layer-app-id",
            APP_ID,
            "--database-url",
            &database_url,
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info,sqlx=warn")
        .env("LAYER_IDP_LOG__FORMAT", "json")
        .env("LAYER_IDP_PROVIDER_ID", PROVIDER_ID)
        .env("LAYER_IDP_SIGNING__KEY_ID", KEY_ID)
        .env("LAYER_IDP_SIGNING__PRIVATE_KEY_FILE", key_file)
        .env("LAYER_IDP_PASSWORDS__ARGON2_MEMORY_KIB", "256")
        .env("LAYER_IDP_PASSWORDS__ARGON2_ITERATIONS", "1")
        .env("LAYER_IDP_HTTP__WORKERS", "2")
        // Generous: a loaded machine must not turn a drain into a forced stop.
        .env("LAYER_IDP_HTTP__SHUTDOWN_TIMEOUT_SECS", "120")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let (found, listening) = mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line.clone());
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && let Some(addr) = entry["listen"].as_str()
            {
                let face = match entry["message"].as_str() {
                    Some("identity provider listening") => "idp",
                    Some("Layer emulator listening") => "mock_layer",
                    _ => continue,
                };
                let _ = found.send((face, addr.parse::<SocketAddr>().unwrap()));
            }
        }
    });
    let (mut idp, mut emulator) = (None, None);
    while idp.is_none() || emulator.is_none() {
        match listening.recv() {
            Ok(("idp", addr)) => idp = Some(format!("http://{addr}")),
            Ok((_, addr)) => emulator = Some(format!("http://{addr}")),
            Err(_) => panic!("serve exited before listening: {:?}", child.wait()),
        }
    }
    let (idp, emulator) = (idp.unwrap(), emulator.unwrap());
    let http = reqwest::Client::new();

    // A user, a session for token requests, and an emulator socket.
    let user: Value = http
        .post(format!("{idp}/users"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = user["id"].as_str().unwrap().to_owned();
    let session: Value = http
        .post(format!("{idp}/sessions"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = session["session_token"].as_str().unwrap().to_owned();
    let socket = open_emulator_socket(&http, &idp, &emulator).await;
    // Read the socket to its end (replying to the close frame, as a client does).
    let close = tokio::spawn(async move {
        let mut socket = socket;
        let mut close = None;
        while let Some(Ok(frame)) = socket.next().await {
            if let Frame::Close(frame) = frame {
                close = frame.map(|f| (f.code, f.reason.to_string()));
            }
        }
        close
    });

    // The load: each client asks for tokens (every fifth by a full login) until the server
    // stops answering.
    let answered = Arc::new(AtomicUsize::new(0));
    let signal_due = Arc::new(tokio::sync::Notify::new());
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (idp, session) = (idp.clone(), session.clone());
        let (answered, signal_due) = (answered.clone(), signal_due.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tokens = Vec::new();
            for i in 0..MAX_REQUESTS_PER_CLIENT {
                let nonce = format!("load-{client}-{i}");
                let request = if i % 5 == 4 {
                    http.post(format!("{idp}/authenticate")).json(
                        &json!({"email": "ada@example.com", "password": PASSWORD, "nonce": nonce}),
                    )
                } else {
                    http.post(format!("{idp}/identity_tokens"))
                        .bearer_auth(&session)
                        .json(&json!({"nonce": nonce}))
                };
                let Ok(response) = request.send().await else {
                    break;
                };
                let status = response.status();
                // A response whose body never arrived was not answered.
                let Ok(body) = response.json::<Value>().await else {
                    break;
                };
                if status == 200 {
                    assert!(body["identity_token"].is_string(), "{body}");
                    tokens.push(nonce);
                    if answered.fetch_add(1, Ordering::SeqCst) + 1 == ANSWERED_BEFORE_SIGNAL {
                        signal_due.notify_one();
                    }
                } else {
                    // Shedding (503) is allowed under load; nothing else is.
                    assert_eq!(status, 503, "{body}");
                }
            }
            tokens
        }));
    }
    signal_due.notified().await;
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let at_signal = answered.load(Ordering::SeqCst);

    let mut tokens = Vec::new();
    for client in clients {
        tokens.extend(client.await.unwrap());
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    reader.join().unwrap();
    let log = std::mem::take(&mut *log.lock().unwrap());
    assert!(
        status.success(),
        "serve exited with {status}; its log:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter()
            .any(|line| line.contains("finishing the requests in flight")),
        "{}",
        log.join("\n")
    );
    assert!(tokens.len() >= at_signal && at_signal >= ANSWERED_BEFORE_SIGNAL);
    eprintln!(
        "{} tokens answered, {} of them after SIGTERM was sent",
        tokens.len(),
        tokens.len() - at_signal
    );

    // The socket heard "going away".
    let close = close.await.unwrap();
    assert_eq!(
        close.as_ref().map(|(code, _)| *code),
        Some(CloseCode::Away),
        "{close:?}"
    );

    // Every answered token's nonce is recorded: claiming it again is refused, for this user.
    let store = layer_idp::store::connect(&DatabaseUrl::new(database_url))
        .await
        .unwrap();
    let hashes: Vec<[u8; 32]> = tokens
        .iter()
        .map(|nonce| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, nonce.as_bytes())
                .as_ref()
                .try_into()
                .unwrap()
        })
        .collect();
    let far_future = layer_idp::clock::unix_now() + 3600;
    for (chunk, nonces) in hashes.chunks(200).zip(tokens.chunks(200)) {
        let claims: Vec<NonceClaim<'_>> = chunk
            .iter()
            .map(|hash| NonceClaim {
                nonce_hash: hash,
                user_id: "someone-else",
                expires_at: far_future,
                login: None,
            })
            .collect();
        let records = store.record_signed_nonces(&claims).await.unwrap();
        for (record, nonce) in records.iter().zip(nonces) {
            assert_eq!(
                record,
                &NonceRecord::AlreadySigned {
                    user_id: user_id.clone()
                },
                "the answered nonce {nonce} was not recorded"
            );
        }
    }
    store.close().await;
    drop(postgres);
}

/// A Layer session for the user (a nonce from the emulator, a token from the identity
/// provider) and a WebSocket opened with it.
async fn open_emulator_socket(
    http: &reqwest::Client,
    idp: &str,
    emulator: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let nonce: Value = http
        .post(format!("{emulator}/nonces"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token: Value = http
        .post(format!("{idp}/authenticate"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD, "nonce": nonce["nonce"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layer_session: Value = http
        .post(format!("{emulator}/sessions"))
        .json(&json!({"identity_token": token["identity_token"], "app_id": APP_ID}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut request = format!(
        "{}/websocket/?session_token={}",
        emulator.replace("http://", "ws://"),
        layer_session["session_token"].as_str().unwrap()
    )
    .into_client_request()
    .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "layer-2.0".parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}
