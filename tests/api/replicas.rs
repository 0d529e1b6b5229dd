//! Two `serve` processes (the built binary) on one database, as replicas behind a load
//! balancer would run (README "Running several replicas"): what one replica does, the other
//! sees. On PostgreSQL when `TEST_DATABASE_URL` is set; otherwise on one SQLite file, which two
//! processes on one machine can share as well.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use serde_json::{Value, json};

use crate::helpers::{KEY_ID, PROVIDER_ID, PgDatabase, test_settings};

const BIN: &str = env!("CARGO_BIN_EXE_layer-idp");
const PASSWORD: &str = "correct horse battery";

/// A running `layer-idp serve`, killed when dropped.
struct Replica {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    /// Starts the binary with the shared database and keys; returns once it listens.
    fn start(dir: &Path, database_url: &str) -> Replica {
        let key_file = test_settings(dir)
            .signing
            .keys
            .first()
            .and_then(|k| k.private_key_file.clone())
            .expect("the test key file");
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
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
            .env("LAYER_IDP_HTTP__WORKERS", "1")
            // A held attempt stays held for an hour, so the test never races the wall clock.
            .env("LAYER_IDP_THROTTLE__BASE_DELAY_SECS", "3600")
            .env("LAYER_IDP_THROTTLE__MAX_DELAY_SECS", "3600")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let (found, listening) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        // Reads the log to the end, so the child never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line.clone());
                if let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && entry["message"] == "identity provider listening"
                    && let Some(addr) = entry["listen"].as_str()
                {
                    let _ = found.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        match listening.recv() {
            Ok(addr) => Replica {
                child,
                url: format!("http://{addr}"),
                log,
                reader: Some(reader),
            },
            Err(_) => {
                let status = child.wait().unwrap();
                panic!("the replica exited before listening: {status}");
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Stops the process and returns every line it logged.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> reqwest::Response {
    client.post(url).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn two_replicas_on_one_database_share_nonces_sessions_and_throttling() {
    let dir = tempfile::tempdir().unwrap();
    let postgres = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(PgDatabase::create(&url).await),
        _ => None,
    };
    let database_url = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("shared.db").display()),
    };
    // One after the other: the first applies the migrations, the second finds none pending.
    let one = Replica::start(dir.path(), &database_url);
    let two = Replica::start(dir.path(), &database_url);
    let client = reqwest::Client::new();

    let signed_up = post(
        &client,
        one.url("/users"),
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(signed_up.status(), 201);
    let signed_up: Value = signed_up.json().await.unwrap();
    let signed_up_id = signed_up["id"].as_str().unwrap().to_owned();

    // A nonce signed by one replica is refused by the other.
    let nonce = "a-nonce-from-layer";
    let credentials = json!({"email": "ada@example.com", "password": PASSWORD, "nonce": nonce});
    let first = post(&client, one.url("/authenticate"), credentials.clone()).await;
    assert_eq!(first.status(), 200);
    let again = post(&client, two.url("/authenticate"), credentials).await;
    assert_eq!(again.status(), 409);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "nonce_already_signed");

    // A session made on one works on the other, and ends on both.
    let session = post(
        &client,
        two.url("/sessions"),
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(session.status(), 201);
    let session: Value = session.json().await.unwrap();
    let token = session["session_token"].as_str().unwrap();
    let me = client
        .get(one.url("/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let ended = client
        .delete(one.url("/sessions/current"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let me = client
        .get(two.url("/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    // Failures alternating between the replicas spend one budget: five free in all.
    let wrong = json!({"email": "ada@example.com", "password": "wrong horse battery"});
    for i in 0..5 {
        let replica = if i % 2 == 0 { &one } else { &two };
        let response = post(&client, replica.url("/sessions"), wrong.clone()).await;
        assert_eq!(response.status(), 401, "failure #{}", i + 1);
    }
    for replica in [&two, &one] {
        let response = post(&client, replica.url("/sessions"), wrong.clone()).await;
        assert_eq!(response.status(), 429);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "too_many_attempts");
    }

    // Each failed and each held attempt is a security event with the account and the
    // address; neither the password nor the e-mail typed appears anywhere in the logs.
    let user_id = signed_up_id;
    let log: Vec<Value> = [one.stop(), two.stop()]
        .concat()
        .iter()
        .map(|line| {
            assert!(
                !line.contains("horse battery"),
                "a password was logged: {line}"
            );
            assert!(
                !line.contains("ada@example.com"),
                "an e-mail was logged: {line}"
            );
            serde_json::from_str(line).unwrap()
        })
        .collect();
    let events = |name: &str| {
        log.iter()
            .filter(|entry| entry["security_event"] == name)
            .cloned()
            .collect::<Vec<_>>()
    };
    let failed = events("password_check_failed");
    assert_eq!(failed.len(), 5, "{failed:?}");
    let held = events("password_attempt_held");
    assert_eq!(held.len(), 2, "{held:?}");
    for event in failed.iter().chain(&held) {
        assert_eq!(event["user_id"], user_id.as_str(), "{event}");
        assert_eq!(event["client"], "127.0.0.1", "{event}");
        assert!(event["reason"].is_string(), "{event}");
    }
    drop(postgres);
}
