//! An open-loop client at a fixed rate, for the benchmark scripts: `wrk` keeps a fixed number of
//! requests in flight, so it measures latency at saturation only, and a slow answer delays the
//! requests behind it instead of counting against the server (coordinated omission). This one
//! starts request `i` at `i / RATE` seconds whatever the earlier ones are doing, and times each
//! from that scheduled start.
//!
//! With a SESSION_TOKEN it posts `/identity_tokens` with a fresh 44-character nonce each time
//! (URL is the server's base); without one it GETs URL (`/healthz`, say). Prints one line of
//! `key=value` figures.
//!
//!     cargo run --release --example fixed_rate -- URL RATE SECONDS [SESSION_TOKEN]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, rate, seconds, session) = match &args[..] {
        [url, rate, seconds] => (url, rate, seconds, None),
        [url, rate, seconds, session] => (url, rate, seconds, Some(session.clone())),
        _ => {
            eprintln!("usage: fixed_rate URL RATE SECONDS [SESSION_TOKEN]");
            std::process::exit(2);
        }
    };
    let rate: f64 = rate.parse().expect("RATE (requests per second)");
    let seconds: f64 = seconds.parse().expect("SECONDS");
    assert!(
        rate > 0.0 && seconds > 0.0,
        "RATE and SECONDS must be positive"
    );
    let total = (rate * seconds).round() as u64;
    let url = match session {
        Some(_) => format!("{}/identity_tokens", url.trim_end_matches('/')),
        None => url.clone(),
    };
    // Idle connections are dropped before the server's keep-alive (5 s) would close them: a
    // request sent on a connection the server is closing at that moment fails
    // (`IncompleteMessage`), which is the client's race, not the server's answer.
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    // Per request: (scheduled start → answer) and whether it was a 200.
    let results = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let began = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = began + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, url, session, results) = (
            client.clone(),
            url.clone(),
            session.clone(),
            results.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let request = match &session {
                Some(token) => client
                    .post(&url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"nonce":"rate{i:040}"}}"#)),
                None => client.get(&url),
            };
            let outcome = match request.send().await {
                Ok(r) if r.status() == 200 => None,
                Ok(r) => Some(r.status().to_string()),
                Err(e) => Some(format!("{e:?}")),
            };
            let latency = scheduled.elapsed();
            if let Some(failure) = &outcome {
                eprintln!("request {i}: {failure}");
            }
            results
                .lock()
                .expect("results")
                .push((latency, outcome.is_none()));
        }));
    }
    for task in tasks {
        task.await.expect("request task");
    }
    let elapsed = began.elapsed().as_secs_f64();
    let mut results = std::mem::take(&mut *results.lock().expect("results"));
    results.sort_by_key(|(latency, _)| *latency);
    let ok = results.iter().filter(|(_, ok)| *ok).count();
    let quantile = |q: f64| {
        let i = ((results.len() as f64 * q).ceil() as usize).clamp(1, results.len()) - 1;
        results[i].0.as_secs_f64() * 1000.0
    };
    println!(
        "sent={} ok={ok} other={} seconds={elapsed:.2} per_s={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        results.len(),
        results.len() - ok,
        results.len() as f64 / elapsed,
        quantile(0.50),
        quantile(0.99),
        quantile(1.0),
    );
}
