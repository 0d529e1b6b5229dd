//! `spawn_emulator()` and one helper per thing a test does to it.

use std::sync::OnceLock;
use std::time::Duration;

use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use layer_idp::config::MockLayerSettings;
use layer_idp::mock_layer::{self, LocalProvider, TrustedKey};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const PROVIDER: &str = "layer:///providers/8d4d2c5e-0000-4000-8000-000000000001";
pub const KID: &str = "layer:///keys/8d4d2c5e-0000-4000-8000-000000000002";
pub const OTHER_KID: &str = "layer:///keys/8d4d2c5e-0000-4000-8000-000000000003";
pub const STAGING: &str = "layer:///apps/staging/11111111-1111-4111-8111-111111111111";
pub const PRODUCTION: &str = "layer:///apps/production/22222222-2222-4222-8222-222222222222";

/// Two RSA key pairs, generated once per test binary (generation is the slow part).
pub fn keys() -> &'static (KeyPair, KeyPair) {
    static KEYS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            KeyPair::generate(KeySize::Rsa2048).unwrap(),
            KeyPair::generate(KeySize::Rsa2048).unwrap(),
        )
    })
}

pub fn trusted(id: &str, pair: &KeyPair) -> TrustedKey {
    let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    TrustedKey {
        id: id.to_owned(),
        n: components.n,
        e: components.e,
    }
}

pub fn app_id(s: &str) -> mock_layer::AppId {
    mock_layer::AppId::parse(s).unwrap()
}

pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A compact JWS over exactly `header` and `claims`, RS256 with `pair`.
pub fn sign_raw(header: &str, claims: &str, pair: &KeyPair) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

pub fn header(kid: &str) -> Value {
    json!({"typ": "JWT", "alg": "RS256", "cty": "layer-eit;v=1", "kid": kid})
}

pub fn claims(user: &str, nonce: &str) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "iss": PROVIDER, "prn": user, "iat": now, "exp": now + 300, "nce": nonce,
        "display_name": format!("{user} (display)"), "avatar_url": "https://example.invalid/a.png",
    })
}

pub fn sign(header: &Value, claims: &Value) -> String {
    sign_raw(&header.to_string(), &claims.to_string(), &keys().0)
}

pub struct Emulator {
    pub url: String,
    pub app: String,
    pub http: reqwest::Client,
}

/// The emulator on 127.0.0.1:0 serving `STAGING` and `PRODUCTION`, trusting `KID` for
/// every app and `OTHER_KID` for `PRODUCTION` only.
pub async fn spawn_emulator() -> Emulator {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut MockLayerSettings)) -> Emulator {
    let mut settings = MockLayerSettings {
        app_ids: vec![app_id(STAGING), app_id(PRODUCTION)],
        ..MockLayerSettings::default()
    };
    settings
        .app_keys
        .insert(app_id(PRODUCTION), vec![OTHER_KID.to_owned()]);
    configure(&mut settings);
    let (first, second) = keys();
    let local = LocalProvider {
        provider_id: PROVIDER.to_owned(),
        keys: vec![trusted(KID, first), trusted(OTHER_KID, second)],
        apps: Vec::new(),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let running = mock_layer::start(&settings, Some(local), listener, 1)
        .await
        .unwrap();
    let url = format!("http://{}", running.addr);
    tokio::spawn(running.server);
    Emulator {
        url,
        app: STAGING.to_owned(),
        http: reqwest::Client::new(),
    }
}

pub fn auth(session: &str) -> String {
    format!("Layer session-token=\"{session}\"")
}

impl Emulator {
    pub async fn nonce(&self) -> String {
        let response = self
            .http
            .post(format!("{}/nonces", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["nonce"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn post_session(&self, token: &str, app: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/sessions", self.url))
            .json(&json!({"identity_token": token, "app_id": app}))
            .send()
            .await
            .unwrap()
    }

    /// The full handshake for `user` in the default app; returns the session token.
    pub async fn login(&self, user: &str) -> String {
        self.login_to(user, &self.app.clone()).await
    }

    pub async fn login_to(&self, user: &str, app: &str) -> String {
        let nonce = self.nonce().await;
        let token = sign(&header(KID), &claims(user, &nonce));
        let response = self.post_session(&token, app).await;
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["session_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn get(&self, path: &str, session: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .header("authorization", auth(session))
            .send()
            .await
            .unwrap()
    }

    /// `GET /_mock/{control}` (the test controls need no session); the body as text.
    pub async fn control(&self, control: &str) -> String {
        self.http
            .get(format!("{}/_mock/{control}", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Moves every app's clock `ms` ahead (`POST /_mock/clock`): what a test would otherwise
    /// wait for on the wall clock.
    pub async fn advance_clock_ms(&self, ms: i64) {
        let response = self
            .http
            .post(format!("{}/_mock/clock", self.url))
            .json(&serde_json::json!({ "advance_ms": ms }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// The pushes the emulator recorded.
    pub async fn notifications(&self) -> Vec<Value> {
        serde_json::from_str(&self.control("notifications").await).unwrap()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        session: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("authorization", auth(session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, session: &str, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, session, Some(body))
            .await
    }

    /// A conversation created over REST; returns its JSON.
    pub async fn conversation(&self, session: &str, participants: &[&str]) -> Value {
        let response = self
            .post(
                "/conversations",
                session,
                json!({"participants": participants, "distinct": false}),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// A one-part text message over REST; returns its JSON.
    pub async fn message(&self, session: &str, conversation: &Value, text: &str) -> Value {
        let path = format!("{}/messages", path_of(conversation));
        let body = json!({"parts": [{"mime_type": "text/plain", "body": text}]});
        let response = self.post(&path, session, body).await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// `DELETE {object}?mode=all_participants`: a message or conversation, gone for everyone.
    pub async fn delete_for_everyone(&self, session: &str, object: &Value) -> reqwest::Response {
        let path = format!("{}?mode=all_participants", path_of(object));
        self.send(reqwest::Method::DELETE, &path, session, None)
            .await
    }

    /// `POST /content` for `size` bytes of `application/octet-stream`; the response.
    pub async fn reserve_content(&self, session: &str, size: usize) -> reqwest::Response {
        self.post_content(session, Some(size)).await
    }

    /// Reserves content of `bytes`' size and uploads `bytes` to it; the reservation (its
    /// `id` and `upload_url`).
    pub async fn upload_content(&self, session: &str, bytes: Vec<u8>) -> Value {
        let content: Value = self
            .reserve_content(session, bytes.len())
            .await
            .json()
            .await
            .unwrap();
        let upload = content["upload_url"].as_str().unwrap();
        let put = self.http.put(upload).body(bytes).send().await.unwrap();
        assert_eq!(put.status(), 200, "the upload");
        content
    }

    /// The download URL of uploaded `content`, from refreshing it (`layer:///content/<uuid>`
    /// is refreshed at `/content/<uuid>`).
    pub async fn download_url(&self, session: &str, content: &Value) -> String {
        let refresh_path = &content["id"].as_str().unwrap()["layer://".len()..];
        let refreshed: Value = self.get(refresh_path, session).await.json().await.unwrap();
        refreshed["download_url"].as_str().unwrap().to_owned()
    }

    /// `POST /content` without `Upload-Content-Length`; the response.
    pub async fn reserve_content_of_unknown_size(&self, session: &str) -> reqwest::Response {
        self.post_content(session, None).await
    }

    async fn post_content(&self, session: &str, size: Option<usize>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/content", self.url))
            .header("authorization", auth(session))
            .header("upload-content-type", "application/octet-stream");
        if let Some(size) = size {
            request = request.header("upload-content-length", size.to_string());
        }
        request.send().await.unwrap()
    }

    pub async fn ws(&self, session: &str) -> Ws {
        self.ws_with_protocol(session, "layer-2.0").await
    }

    fn ws_request(
        &self,
        session: &str,
        protocol: &str,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        let url = format!(
            "{}/websocket/?session_token={session}&client-id=test",
            self.url.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        request
    }

    /// A socket whose TCP receive buffer is a few KiB: once the test stops reading it, the
    /// emulator's writes back up after little traffic, as with a client that froze.
    pub async fn ws_with_small_receive_buffer(&self, session: &str) -> Ws {
        let addr: std::net::SocketAddr = self.url.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let request = self.ws_request(session, "layer-2.0");
        let tcp = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
        let (stream, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
        Ws {
            stream,
            protocol: response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned()),
            next_request: 1,
        }
    }

    pub async fn ws_with_protocol(&self, session: &str, protocol: &str) -> Ws {
        let request = self.ws_request(session, protocol);
        let (stream, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        Ws {
            stream,
            protocol: response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned()),
            next_request: 1,
        }
    }
}

impl Emulator {
    /// Sends a request head and only the start of its body over a raw connection, then waits
    /// up to five seconds for the status line. Only a server that answers without reading
    /// the whole body answers at all: the rest is never sent.
    pub async fn status_before_the_body_is_sent(
        &self,
        head: &str,
        body_start: &[u8],
    ) -> Option<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("{}\r\nHost: {addr}\r\n\r\n", head.trim_end());
        tcp.write_all(head.as_bytes()).await.unwrap();
        // The server may close its side before taking all of this; that is fine.
        let _ = tcp.write_all(body_start).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 1024];
            while !answer.windows(2).any(|w| w == b"\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        read.ok()?;
        let line = String::from_utf8_lossy(&answer);
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

/// The REST path of an object, from its absolute `url`.
pub fn path_of(object: &Value) -> String {
    let url = object["url"].as_str().expect("an object with a url");
    let rest = url.strip_prefix("http://").unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

pub struct Ws {
    pub stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pub protocol: Option<String>,
    next_request: u32,
}

impl Ws {
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.stream
            .send(Frame::Text(text.into().into()))
            .await
            .unwrap();
    }

    /// The next packet, or a panic after five seconds.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame(Duration::from_secs(5)).await {
            Some(Frame::Text(text)) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame within `wait`, `None` if none came.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Frame> {
        loop {
            match tokio::time::timeout(wait, self.stream.next()).await {
                Ok(Some(Ok(Frame::Ping(_) | Frame::Pong(_)))) => continue,
                Ok(Some(Ok(frame))) => return Some(frame),
                Ok(Some(Err(_)) | None) | Err(_) => return None,
            }
        }
    }

    /// Sends a request and returns its response; packets received in between are returned
    /// too, in order.
    pub async fn request(
        &mut self,
        method: &str,
        object_id: Option<&str>,
        data: Value,
    ) -> (Value, Vec<Value>) {
        let id = format!("r{}", self.next_request);
        self.next_request += 1;
        let mut body = json!({"method": method, "request_id": id, "data": data});
        if let Some(object_id) = object_id {
            body["object_id"] = object_id.into();
        }
        self.send_text(json!({"type": "request", "body": body}).to_string())
            .await;
        let mut others = Vec::new();
        loop {
            let packet = self.recv().await;
            if packet["type"] == "response" && packet["body"]["request_id"] == id {
                return (packet, others);
            }
            others.push(packet);
        }
    }

    /// Packets until none arrives for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut packets = Vec::new();
        while let Some(Frame::Text(text)) = self.next_frame(quiet).await {
            packets.push(serde_json::from_str(&text).unwrap());
        }
        packets
    }

    /// Waits for the close frame; its code.
    pub async fn closed_with(&mut self) -> Option<u16> {
        self.close_frame().await.map(|(code, _)| code)
    }

    /// Waits for the close frame; its code and reason.
    pub async fn close_frame(&mut self) -> Option<(u16, String)> {
        loop {
            match self.next_frame(Duration::from_secs(5)).await {
                Some(Frame::Close(frame)) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(_) => continue,
                None => return None,
            }
        }
    }
}
