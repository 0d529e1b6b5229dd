//! Resident memory under a login flood, with the real argon2 parameters, measured on the
//! server alone: the real binary runs as its own process and the test reads its
//! `/proc/<pid>/status`. A figure of memory, never of time (the queue timeout is set out of
//! reach).

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_layer-idp");
const HASH_THREADS: u64 = 4;
const MEMORY_KIB: u64 = 19_456;
/// Room for what a burst of 32 connections costs besides argon2 (connection buffers, the
/// database's caches).
const MARGIN_KIB: u64 = 24 * 1024;

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `layer-idp serve` on port 0 in development mode and reads the address it
    /// reports.
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LAYER_IDP_LOG__FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("LAYER_IDP_HTTP__WORKERS", "2")
            .env(
                "LAYER_IDP_PASSWORDS__MAX_CONCURRENT_HASHES",
                HASH_THREADS.to_string(),
            )
            .env(
                "LAYER_IDP_PASSWORDS__ARGON2_MEMORY_KIB",
                MEMORY_KIB.to_string(),
            )
            .env("LAYER_IDP_PASSWORDS__HASH_QUEUE_TIMEOUT_MS", "600000")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = stdout.lines();
        let listen = loop {
            let line = lines
                .next()
                .expect("the server stopped before listening")
                .unwrap();
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == "identity provider listening" {
                break event["listen"].as_str().unwrap().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server {
            child,
            base: format!("http://{listen}"),
            _dir: dir,
        }
    }

    /// A field of `/proc/<pid>/status`, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Resets the peak (`VmHWM`) to the current resident size.
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("resetting VmHWM through /proc/<pid>/clear_refs");
    }

    async fn logins(&self, round: &str, count: usize, concurrency: usize) -> Vec<u16> {
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            // One source address per connection: the queue's per-address cap is not what is
            // measured here.
            let client = reqwest::Client::builder()
                .local_address(IpAddr::from([127, 0, 1, c as u8 + 1]))
                .build()
                .unwrap();
            let url = format!("{}/authenticate", self.base);
            let round = round.to_owned();
            let share = (c..count).step_by(concurrency).count();
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                for n in 0..share {
                    let body = json!({
                        "email": "flood@example.com",
                        "password": "correct horse battery",
                        "nonce": format!("{round}-{c}-{n}"),
                    });
                    let response = client.post(&url).json(&body).send().await.unwrap();
                    statuses.push(response.status().as_u16());
                }
                statuses
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.extend(task.await.unwrap());
        }
        statuses
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_login_flood_stays_within_the_hashing_threads_memory_and_gives_it_back() {
    let server = Server::start();
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/users", server.base))
        .json(&json!({"email": "flood@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Warm up what every request path allocates once (database connections, caches), with
    // as many connections as the flood uses.
    assert!(
        server
            .logins("warm-up", 32, 32)
            .await
            .iter()
            .all(|s| *s == 200)
    );
    let idle = server.status_kib("VmRSS");
    server.reset_peak();

    let statuses = server.logins("flood", 300, 32).await;
    let peak = server.status_kib("VmHWM");
    let after = server.status_kib("VmRSS");

    assert_eq!(statuses.len(), 300);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every login succeeds: {statuses:?}"
    );
    let bound = idle + HASH_THREADS * MEMORY_KIB + MARGIN_KIB;
    eprintln!("RSS idle {idle} KiB, peak {peak} KiB (bound {bound}), after {after} KiB");
    assert!(
        peak <= bound,
        "peak {peak} KiB is above idle {idle} + {HASH_THREADS} × {MEMORY_KIB} + margin"
    );
    assert!(
        peak >= idle + MEMORY_KIB / 2,
        "the flood ran argon2 with its real memory (peak {peak} KiB, idle {idle} KiB)"
    );
    assert!(
        after <= idle + MARGIN_KIB / 3,
        "after the flood {after} KiB, idle was {idle} KiB"
    );
}
