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

/// Floods `path` from the given source addresses until stopped, with `per_address`
/// connections each, every request for a different unknown e-mail. Keeps the tally of
/// requests turned away (503, or 429 from throttling); a turned-away connection stops.
struct Flood {
    stop: Arc<AtomicBool>,
    shed: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    /// Answers that were not turned away: hashes done for the flood.
    served: Arc<AtomicUsize>,
    full: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Flood {
    fn start(app: &TestApp, path: &'static str, from: &[[u8; 4]], per_address: usize) -> Self {
        let flood = Flood {
            stop: Arc::new(AtomicBool::new(false)),
            shed: Arc::new(AtomicUsize::new(0)),
            answered: Arc::new(AtomicUsize::new(0)),
            served: Arc::new(AtomicUsize::new(0)),
            full: Arc::new(Notify::new()),
            tasks: Vec::new(),
        };
        let clients: Vec<_> = from.iter().map(|addr| client_from(*addr)).collect();
        let tasks = (0..from.len() * per_address)
            .map(|c| {
                let (client, url) = (clients[c % from.len()].clone(), app.url(path));
                let (stop, shed, answered, served, full) = (
                    flood.stop.clone(),
                    flood.shed.clone(),
                    flood.answered.clone(),
                    flood.served.clone(),
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
                        // A flood connection the loaded server drops just stops: the flood is
                        // not what is under test.
                        let Ok(response) = client.post(&url).json(&body).send().await else {
                            break;
                        };
                        answered.fetch_add(1, Ordering::Relaxed);
                        if matches!(response.status().as_u16(), 503 | 429) {
                            assert!(response.headers().contains_key("retry-after"));
                            shed.fetch_add(1, Ordering::Relaxed);
                            full.notify_one();
                            // A turned-away connection stops, rather than spin on instant
                            // answers and starve the machine's other tests of CPU.
                            break;
                        }
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Flood { tasks, ..flood }
    }

    /// Returns once `count` requests have been turned away.
    async fn shed_at_least(&self, count: usize) {
        while self.shed.load(Ordering::Relaxed) < count {
            self.full.notified().await;
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
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
    // One hashing thread and a real argon2 cost, so the flood saturates it. The flooder keeps
    // 200 hashes queued: first come, first served, the real login would wait for all of them
    // (and, with a queue timeout shorter than that, get 503); taking turns, it waits for one
    // or two. The test counts the flood's hashes answered while the real login was pending:
    // an order, not a time. Hashes run while the real request is still on its way to the
    // queue count too; each hash is made costly (16 MiB) so that, on a loaded machine, that
    // journey stays a few hashes long rather than dozens.
    let app = spawn_app_with(|s| {
        s.passwords.argon2_memory_kib = 16_384;
        s.passwords.argon2_iterations = 2;
        s.passwords.max_concurrent_hashes = 1;
        s.passwords.hash_queue_per_address = 200;
        s.passwords.hash_queue_timeout_ms = 60_000;
        // The throttle's per-address budget would turn the flood away before it fills the
        // queue; this test is about the queue.
        s.throttle.address_max_failures = 1_000_000;
    })
    .await;
    app.sign_up("real@example.com", "correct horse battery")
        .await;

    let flood = Flood::start(&app, "/sessions", &[[127, 0, 0, 2]], 220);
    // The flooder has had a request shed: its share of the queue is full right now.
    flood.shed_at_least(1).await;
    // The real user's connection is open before the count starts: only the request itself
    // travels while the flood's hashes are counted.
    let real_client = client_from([127, 0, 0, 3]);
    let health = real_client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    health.bytes().await.unwrap();
    let served_before = flood.served();
    let real = real_client
        .post(app.url("/sessions"))
        .json(&json!({"email": "real@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let served_meanwhile = flood.served() - served_before;
    let (shed, answered) = flood.stop().await;

    assert_eq!(real.status(), 201, "the real login was not served");
    // Answers already on their way, and hashes run while the HTTP worker was still reading
    // the real request, count too: allow for them, far below the 200 queued.
    assert!(
        served_meanwhile <= 50,
        "the real login waited for {served_meanwhile} of the flood's hashes"
    );
    assert!(shed > 0 && answered > shed, "{shed} of {answered} shed");
}

#[tokio::test]
async fn a_login_succeeds_while_150_addresses_flood_sign_ups() {
    // One hashing thread, which sign-ups may use, but logins go first. 150 flooding addresses
    // each keep two sign-ups waiting: taking turns by address alone, the login would wait for
    // 150 hashes; in its own lane it waits for the one being hashed.
    let app = spawn_app_with(|s| {
        s.passwords.argon2_memory_kib = 16_384;
        s.passwords.argon2_iterations = 2;
        s.passwords.max_concurrent_hashes = 1;
        s.passwords.hash_queue_per_address = 2;
        s.passwords.hash_queue_timeout_ms = 60_000;
        // As above: the sign-up rate would turn the flood away before it fills the queue.
        s.throttle.signups_per_address = 1_000_000;
    })
    .await;
    app.sign_up("real@example.com", "correct horse battery")
        .await;

    let flooders: Vec<[u8; 4]> = (0..150).map(|i| [127, 0, 1, 10 + i]).collect();
    let flood = Flood::start(&app, "/users", &flooders, 4);
    // As many requests turned away as there are flooders: they hold their shares.
    flood.shed_at_least(flooders.len()).await;
    let served_before = flood.served();
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
    let served_meanwhile = flood.served() - served_before;
    let (shed, _) = flood.stop().await;

    assert_eq!(real.status(), 200, "the real login was not served");
    assert!(
        served_meanwhile <= 50,
        "the real login waited for {served_meanwhile} sign-ups"
    );
    assert!(shed >= flooders.len());
}
