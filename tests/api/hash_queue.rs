//! The password hashing queue under a flood: clients take turns, so a flood from one address
//! does not turn away a real user at another (all of 127.0.0.0/8 is loopback, so each client
//! below binds its own source address).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;
use tokio::sync::Notify;

use crate::helpers::{TestApp, spawn_app_with};

fn client_from(addr: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(addr))
        .build()
        .unwrap()
}

/// Floods `path` from 127.0.0.2 until stopped, with `connections` requests in flight, each
/// for a different unknown e-mail. Keeps the tally of requests turned away (503, or 429 from
/// throttling) and fires a signal at the first one: the flooder's share of the queue is then
/// full.
struct Flood {
    stop: Arc<AtomicBool>,
    shed: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    full: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Flood {
    fn start(app: &TestApp, path: &'static str, connections: usize) -> Self {
        let flood = Flood {
            stop: Arc::new(AtomicBool::new(false)),
            shed: Arc::new(AtomicUsize::new(0)),
            answered: Arc::new(AtomicUsize::new(0)),
            full: Arc::new(Notify::new()),
            tasks: Vec::new(),
        };
        let client = client_from([127, 0, 0, 2]);
        let tasks = (0..connections)
            .map(|c| {
                let (client, url) = (client.clone(), app.url(path));
                let (stop, shed, answered, full) = (
                    flood.stop.clone(),
                    flood.shed.clone(),
                    flood.answered.clone(),
                    flood.full.clone(),
                );
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let body = json!({
                            "email": format!("bogus-{c}-{n}@example.com"),
                            "password": "not the password at all",
                        });
                        let response = client.post(&url).json(&body).send().await.unwrap();
                        answered.fetch_add(1, Ordering::Relaxed);
                        if matches!(response.status().as_u16(), 503 | 429) {
                            assert!(response.headers().contains_key("retry-after"));
                            shed.fetch_add(1, Ordering::Relaxed);
                            full.notify_one();
                        }
                    }
                })
            })
            .collect();
        Flood { tasks, ..flood }
    }

    async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        (
            self.shed.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test]
async fn a_login_from_one_address_succeeds_while_another_address_floods_bogus_logins() {
    // One hashing thread and a real argon2 cost (a few milliseconds a hash), so the flood
    // saturates it. The flooder keeps 200 hashes queued: served first come, first served, the
    // real login would wait 200 hashes, well past the queue timeout; taking turns, it waits
    // one or two, far inside it.
    let app = spawn_app_with(|s| {
        s.passwords.argon2_memory_kib = 4096;
        s.passwords.argon2_iterations = 2;
        s.passwords.max_concurrent_hashes = 1;
        s.passwords.hash_queue_per_address = 200;
        s.passwords.hash_queue_timeout_ms = 1_000;
    })
    .await;
    app.sign_up("real@example.com", "correct horse battery")
        .await;

    let flood = Flood::start(&app, "/sessions", 220);
    // The flooder has had a request shed: its share of the queue is full right now.
    flood.full.notified().await;
    let real = client_from([127, 0, 0, 3])
        .post(app.url("/sessions"))
        .json(&json!({"email": "real@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let (shed, answered) = flood.stop().await;

    assert_eq!(real.status(), 201, "the real login was not served");
    assert!(shed > 0 && answered > shed, "{shed} of {answered} shed");
}

#[tokio::test]
async fn a_login_succeeds_while_another_address_floods_sign_ups() {
    // Sign-ups may hold one of the two hashing threads; logins go first on the other. Behind
    // 200 queued sign-ups in one line, the login would wait past the timeout.
    let app = spawn_app_with(|s| {
        s.passwords.argon2_memory_kib = 4096;
        s.passwords.argon2_iterations = 2;
        s.passwords.max_concurrent_hashes = 2;
        s.passwords.hash_queue_per_address = 200;
        s.passwords.hash_queue_timeout_ms = 500;
    })
    .await;
    app.sign_up("real@example.com", "correct horse battery")
        .await;

    let flood = Flood::start(&app, "/users", 220);
    flood.full.notified().await;
    let real = client_from([127, 0, 0, 3])
        .post(app.url("/authenticate"))
        .json(&json!({
            "email": "real@example.com",
            "password": "correct horse battery",
            "nonce": "a-nonce-for-the-real-user",
        }))
        .send()
        .await
        .unwrap();
    let (shed, _) = flood.stop().await;

    assert_eq!(real.status(), 200, "the real login was not served");
    assert!(shed > 0);
}
