//! Starting the emulator: alone from the binary (the log line scripts parse), and next to
//! the identity provider, whose keys it trusts without configuration.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::KeyPair as _;
use layer_idp::config::{MockLayerSettings, Settings};
use layer_idp::startup::Application;
use serde_json::{Value, json};

use super::helpers::*;

#[tokio::test]
async fn in_one_process_the_emulator_trusts_the_identity_provider_s_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        keys_dir: dir.path().join("keys"),
        mock_layer: MockLayerSettings {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..MockLayerSettings::default()
        },
        ..Settings::default()
    };
    settings.passwords.argon2_memory_kib = 64;
    settings.passwords.argon2_iterations = 1;
    let app = Application::build(&settings).await.unwrap();
    let url = format!("http://{}", app.mock_layer_addr().unwrap());
    let apps = app.mock_layer_apps();
    assert_eq!(apps.len(), 1);
    assert!(apps[0].to_string().starts_with("layer:///apps/staging/"));
    let keys = app.keys().clone();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let nonce: Value = http
        .post(format!("{url}/nonces"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = keys
        .active()
        .sign(&json!({
            "iss": keys.provider_id(), "prn": "alice", "iat": now, "exp": now + 60,
            "nce": nonce["nonce"],
        }))
        .unwrap();
    let response = http
        .post(format!("{url}/sessions"))
        .json(&json!({"identity_token": token, "app_id": apps[0].to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// Writes the public half of the tests' first key pair as a PEM file in `dir`.
fn write_public_key(dir: &std::path::Path) -> std::path::PathBuf {
    let key_file = dir.join("k.public.pem");
    let (pair, _) = keys();
    let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().unwrap();
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
    std::fs::write(&key_file, pem).unwrap();
    key_file
}

#[test]
fn alone_it_logs_its_real_address_and_apps_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_public_key(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_layer-idp"))
        .args([
            "mock-layer",
            "--listen",
            "127.0.0.1:0",
            "--app-id",
            STAGING,
            // `serve`'s name for the flag works here too.
            "--mock-layer-app-id",
            PRODUCTION,
        ])
        .args(["--provider-id", PROVIDER, "--key"])
        .arg(format!("{KID}={}", key_file.display()))
        .current_dir(dir.path())
        .env("LAYER_IDP_LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = None;
    for l in BufReader::new(stdout).lines().take(20) {
        let l = l.unwrap();
        let parsed: Value = serde_json::from_str(&l).unwrap_or(Value::Null);
        if parsed["message"] == "Layer emulator listening" {
            line = Some(parsed);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("no `Layer emulator listening` line");
    let listen = line["listen"].as_str().unwrap();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{listen}"
    );
    let apps = line["apps"].as_str().unwrap();
    assert!(apps.split(',').any(|a| a == STAGING), "{apps}");
    assert!(apps.split(',').any(|a| a == PRODUCTION), "{apps}");
}

#[test]
fn alone_without_keys_it_says_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_layer-idp"))
        .args(["mock-layer", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--provider-id") && stderr.contains("--jwks-url"),
        "{stderr}"
    );
}

#[test]
fn a_bad_emulator_setting_stops_serve_before_either_face_reports_listening() {
    let dir = tempfile::tempdir().unwrap();
    // Passes validation; only reading the key file shows it is not there.
    let config = dir.path().join("layer-idp.toml");
    std::fs::write(
        &config,
        format!(
            "[mock_layer]\nlisten = \"127.0.0.1:0\"\n[[mock_layer.keys]]\nid = \"{KID}\"\n\
             public_key_file = \"missing.public.pem\"\n"
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_layer-idp"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("LAYER_IDP_LOG__FORMAT", "json")
        .env("LAYER_IDP_PASSWORDS__ARGON2_MEMORY_KIB", "64")
        .env("LAYER_IDP_PASSWORDS__ARGON2_ITERATIONS", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.public.pem"), "{stderr}");
    // Scripts wait for these lines: neither may appear for a start that fails.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("listening"), "{stdout}");
}

#[tokio::test]
async fn a_session_token_never_reaches_the_logs_not_even_at_logout() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_public_key(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_layer-idp"))
        .args(["mock-layer", "--listen", "127.0.0.1:0", "--app-id", STAGING])
        .args(["--provider-id", PROVIDER, "--key"])
        .arg(format!("{KID}={}", key_file.display()))
        .current_dir(dir.path())
        .env("LAYER_IDP_LOG__FORMAT", "json")
        // Everything the emulator and its libraries say, not only what an operator sees.
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut logged = String::new();
    let listen = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no start-up line:\n{logged}"
        );
        logged.push_str(&line);
        let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if parsed["message"] == "Layer emulator listening" {
            break parsed["listen"].as_str().unwrap().to_owned();
        }
    };
    let emulator = Emulator {
        url: format!("http://{listen}"),
        app: STAGING.to_owned(),
        http: reqwest::Client::new(),
    };
    let session = emulator.login("alice").await;
    let mut ws = emulator.ws(&session).await;
    let (subscribed, _) = ws.request("Presence.subscribe", None, Value::Null).await;
    assert_eq!(subscribed["body"]["success"], true);
    assert_eq!(emulator.get("/conversations", &session).await.status(), 200);
    let logout = emulator
        .send(
            reqwest::Method::DELETE,
            &format!("/sessions/{session}"),
            &session,
            None,
        )
        .await;
    assert_eq!(logout.status(), 204);
    assert_eq!(
        ws.closed_with().await,
        Some(1000),
        "logout closes the session's socket"
    );
    assert_eq!(emulator.get("/conversations", &session).await.status(), 401);

    let _ = child.kill();
    let _ = child.wait();
    stdout.read_to_string(&mut logged).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        logged.contains("/sessions/{token}"),
        "the logout was logged by its route:\n{logged}"
    );
    assert!(
        !logged.contains(&session),
        "the session token is in stdout:\n{logged}"
    );
    assert!(
        !stderr.contains(&session),
        "the session token is in stderr:\n{stderr}"
    );
}

/// Serves the tests' first public key as a JWKS on 127.0.0.1, for up to `requests`
/// requests; its URL.
fn serve_jwks(requests: usize) -> String {
    use std::io::Write;
    let components = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(keys().0.public_key());
    let b64 = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let jwks = json!({"keys": [{
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": KID,
        "n": b64(&components.n), "e": b64(&components.e),
    }]})
    .to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{jwks}",
                jwks.len()
            );
        }
    });
    url
}

#[tokio::test]
async fn alone_it_fetches_a_jwks_directly_whatever_proxy_the_environment_names() {
    let dir = tempfile::tempdir().unwrap();
    let jwks_url = serve_jwks(4);
    // A proxy that is not there: a client that went through it would fetch nothing.
    let proxy = {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", closed.local_addr().unwrap())
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_layer-idp"))
        .args(["mock-layer", "--listen", "127.0.0.1:0", "--app-id", STAGING])
        .args(["--provider-id", PROVIDER, "--jwks-url", &jwks_url])
        .current_dir(dir.path())
        .env("LAYER_IDP_LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .envs(["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"].map(|name| (name, &proxy)))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let listen = BufReader::new(stdout)
        .lines()
        .take(20)
        .map_while(Result::ok)
        .find_map(|line| {
            let parsed: Value = serde_json::from_str(&line).ok()?;
            (parsed["message"] == "Layer emulator listening")
                .then(|| parsed["listen"].as_str().map(str::to_owned))
                .flatten()
        });
    let Some(listen) = listen else {
        let _ = child.kill();
        let mut stderr = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        panic!("the emulator did not start:\n{stderr}");
    };
    let emulator = Emulator {
        url: format!("http://{listen}"),
        app: STAGING.to_owned(),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    // A token signed with the key the JWKS served opens a session.
    emulator.login("alice").await;
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `mock-layer` on `listen` with `env`, calls `GET /_mock/apps` with `authorization`,
/// stops it; the status and everything it logged.
async fn start_and_call_the_controls(
    listen: &str,
    env: &[(&str, &str)],
    authorization: Option<&str>,
) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let key_file = write_public_key(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_layer-idp"))
        .args(["mock-layer", "--listen", listen, "--app-id", STAGING])
        .args(["--provider-id", PROVIDER, "--key"])
        .arg(format!("{KID}={}", key_file.display()))
        .current_dir(dir.path())
        .env("LAYER_IDP_LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut logged = String::new();
    let port = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no start-up line:\n{logged}"
        );
        logged.push_str(&line);
        let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if parsed["message"] == "Layer emulator listening" {
            let listen = parsed["listen"].as_str().unwrap();
            break listen.rsplit(':').next().unwrap().to_owned();
        }
    };
    let mut request = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/_mock/apps"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let status = request.send().await.unwrap().status().as_u16();
    let _ = child.kill();
    let _ = child.wait();
    stdout.read_to_string(&mut logged).unwrap();
    (status, logged)
}

const EXPOSED: &str = "the Layer emulator listens beyond loopback";

#[tokio::test]
async fn beyond_loopback_without_a_control_token_it_warns() {
    let (status, logged) = start_and_call_the_controls("0.0.0.0:0", &[], None).await;
    assert_eq!(status, 200);
    assert!(logged.contains(EXPOSED), "no warning:\n{logged}");

    let (status, logged) = start_and_call_the_controls("127.0.0.1:0", &[], None).await;
    assert_eq!(status, 200);
    assert!(
        !logged.contains(EXPOSED),
        "a warning on loopback:\n{logged}"
    );
}

#[tokio::test]
async fn a_control_token_from_the_environment_guards_the_controls() {
    let token = "a-control-token-from-the-environment";
    let env = [("LAYER_IDP_MOCK_LAYER__CONTROL_TOKEN", token)];
    let (status, logged) = start_and_call_the_controls("0.0.0.0:0", &env, None).await;
    assert_eq!(status, 401);
    assert!(
        !logged.contains(EXPOSED),
        "a warning with a token:\n{logged}"
    );
    let bearer = format!("Bearer {token}");
    let (status, logged) = start_and_call_the_controls("0.0.0.0:0", &env, Some(&bearer)).await;
    assert_eq!(status, 200);
    assert!(!logged.contains(token), "the token was logged:\n{logged}");

    let short = [("LAYER_IDP_MOCK_LAYER__CONTROL_TOKEN", "short")];
    let output = Command::new(env!("CARGO_BIN_EXE_layer-idp"))
        .args(["mock-layer", "--listen", "127.0.0.1:0", "--app-id", STAGING])
        .envs(short)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("mock_layer.control_token"), "{said}");
}
