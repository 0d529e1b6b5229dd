//! A login flood against a running server, for `scripts/bench-logins`: CONNECTIONS clients,
//! each from its own loopback address (127.0.2.x, so the per-address share of the hashing
//! queue is not what limits them), post the right password to ENDPOINT (`/authenticate`, with
//! fresh nonces, by default; or `/sessions`) for SECONDS. An EMAIL containing `{c}` names one
//! account per client (`{c}` replaced by its number, from 1): checks of one account run one
//! at a time by design (the throttling rules), so a flood on one account measures that rule,
//! not the hashing. Prints one line of `key=value`
//! figures, including the server's peak resident memory during the flood (its `VmHWM`, reset
//! at the start).
//!
//!     cargo run --release --example login_flood -- URL PID SECONDS CONNECTIONS EMAIL PASSWORD [ENDPOINT]

use std::net::IpAddr;
use std::time::{Duration, Instant};

fn status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
        .expect("a /proc status field")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, pid, seconds, connections, email, password, endpoint) = match &args[..] {
        [url, pid, seconds, connections, email, password] => (
            url,
            pid,
            seconds,
            connections,
            email,
            password,
            "/authenticate",
        ),
        [url, pid, seconds, connections, email, password, endpoint] if endpoint == "/sessions" => {
            (url, pid, seconds, connections, email, password, "/sessions")
        }
        [url, pid, seconds, connections, email, password, endpoint]
            if endpoint == "/authenticate" =>
        {
            (
                url,
                pid,
                seconds,
                connections,
                email,
                password,
                "/authenticate",
            )
        }
        _ => {
            eprintln!(
                "usage: login_flood URL PID SECONDS CONNECTIONS EMAIL PASSWORD [/authenticate|/sessions]"
            );
            std::process::exit(2);
        }
    };
    // /authenticate answers a token (200), /sessions a new session (201).
    let (with_nonce, success) = match endpoint {
        "/sessions" => (false, 201),
        _ => (true, 200),
    };
    let seconds: u64 = seconds.parse().expect("SECONDS");
    let connections: u8 = connections.parse().expect("CONNECTIONS (at most 255)");

    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the server's VmHWM");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let began = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let client = reqwest::Client::builder()
                .local_address(IpAddr::from([127, 0, 2, c + 1]))
                .build()
                .expect("client");
            let (url, email, password) = (
                format!("{url}{endpoint}"),
                email.replace("{c}", &(u16::from(c) + 1).to_string()),
                password.clone(),
            );
            tokio::spawn(async move {
                let (mut ok, mut busy, mut other) = (0u64, 0u64, 0u64);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let mut body = serde_json::json!({
                        "email": email,
                        "password": password,
                    });
                    if with_nonce {
                        body["nonce"] = format!("bench-{c}-{n}").into();
                    }
                    match client.post(&url).json(&body).send().await {
                        Ok(r) if r.status() == success => ok += 1,
                        Ok(r) if r.status() == 503 => busy += 1,
                        _ => other += 1,
                    }
                }
                (ok, busy, other)
            })
        })
        .collect();
    let (mut ok, mut busy, mut other) = (0, 0, 0);
    for task in tasks {
        let (o, b, x) = task.await.expect("client task");
        ok += o;
        busy += b;
        other += x;
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "logins={ok} busy={busy} other={other} seconds={elapsed:.2} logins_per_s={:.1} peak_kib={}",
        ok as f64 / elapsed,
        status_kib(pid, "VmHWM")
    );
}
