//! Throttled guessing and sign-ups (README "Login defense"), over real HTTP with a manual
//! clock, on SQLite and on PostgreSQL. Different clients are different loopback addresses
//! (all of 127.0.0.0/8 is local on Linux), bound with reqwest's `local_address`.

use std::net::IpAddr;

use reqwest::{Client, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, manual_clock, spawn_app_with_clock, without_request_id};

const PASSWORD: &str = "correct horse battery";
const WRONG: &str = "wrong horse battery";

/// A client whose requests come from 127.0.0.`n`.
fn from(n: u8) -> Client {
    from_ip([127, 0, 0, n].into())
}

fn from_ip(ip: IpAddr) -> Client {
    Client::builder()
        .local_address(ip)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An e-mail with no failures yet (so no rule holds it).
fn fresh_email() -> String {
    format!("{}@example.com", uuid::Uuid::new_v4())
}

fn nonce() -> String {
    format!("nonce-{}", uuid::Uuid::new_v4())
}

async fn authenticate(app: &TestApp, client: &Client, email: &str, password: &str) -> Response {
    client
        .post(app.url("/authenticate"))
        .json(&json!({"email": email, "password": password, "nonce": nonce()}))
        .send()
        .await
        .unwrap()
}

async fn sessions(app: &TestApp, client: &Client, email: &str, password: &str) -> Response {
    client
        .post(app.url("/sessions"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &Response) -> i64 {
    response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Asserts a 429 `too_many_attempts` and returns its Retry-After.
async fn assert_held(response: Response) -> i64 {
    assert_eq!(response.status(), 429);
    let seconds = retry_after(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_attempts", "{body}");
    assert!(seconds >= 1);
    seconds
}

async fn fail_times(app: &TestApp, client: &Client, email: &str, times: usize) {
    for i in 0..times {
        let response = authenticate(app, client, email, WRONG).await;
        assert_eq!(
            response.status(),
            401,
            "failure #{} should be evaluated",
            i + 1
        );
    }
}

#[tokio::test]
async fn after_five_failures_each_attempt_waits_a_doubling_delay_and_a_success_resets_it() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    app.sign_up("ada@example.com", PASSWORD).await;
    let a = from(2);

    fail_times(&app, &a, "ada@example.com", 5).await;
    // Held before any check: even the right password waits.
    assert_eq!(
        assert_held(authenticate(&app, &a, "ada@example.com", PASSWORD).await).await,
        1
    );
    clock.advance(1);
    fail_times(&app, &a, "ada@example.com", 1).await;
    // POST /sessions shares the counters.
    assert_eq!(
        assert_held(sessions(&app, &a, "ADA@example.com", WRONG).await).await,
        2
    );
    clock.advance(1);
    assert_eq!(
        assert_held(authenticate(&app, &a, "ada@example.com", WRONG).await).await,
        1
    );
    clock.advance(1);
    fail_times(&app, &a, "ada@example.com", 1).await;
    assert_eq!(
        assert_held(authenticate(&app, &a, "ada@example.com", WRONG).await).await,
        4
    );
    clock.advance(4);
    assert_eq!(
        sessions(&app, &a, "ada@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    // The success cleared the count: five free failures again.
    fail_times(&app, &a, "ada@example.com", 5).await;
    assert_eq!(
        assert_held(authenticate(&app, &a, "ada@example.com", WRONG).await).await,
        1
    );
    // Another address has its own count.
    fail_times(&app, &from(3), "ada@example.com", 5).await;
}

#[tokio::test]
async fn a_held_attempt_answers_the_same_for_a_known_and_an_unknown_email() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    app.sign_up("known@example.com", PASSWORD).await;
    let a = from(2);
    for email in ["known@example.com", "unknown@example.com"] {
        fail_times(&app, &a, email, 5).await;
    }
    let mut answers = Vec::new();
    for email in ["known@example.com", "unknown@example.com"] {
        for response in [
            authenticate(&app, &a, email, WRONG).await,
            sessions(&app, &a, email, WRONG).await,
        ] {
            let status = response.status();
            let retry = retry_after(&response);
            let body = without_request_id(response.json().await.unwrap());
            answers.push((status, retry, body));
        }
    }
    assert_eq!(answers[0].0, 429);
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
}

#[tokio::test]
async fn a_parallel_burst_from_one_address_gets_no_more_than_the_free_failures() {
    let app = spawn_app_with_clock(manual_clock(), |_| {}).await;
    app.sign_up("burst@example.com", PASSWORD).await;
    let a = from(2);
    let burst = (0..20).map(|_| authenticate(&app, &a, "burst@example.com", WRONG));
    let statuses: Vec<u16> = futures_util::future::join_all(burst)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_held_attempt_costs_no_argon2_work() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    app.sign_up("victim@example.com", PASSWORD).await;
    app.sign_up("occupant@example.com", PASSWORD).await;
    let attacker = from(2);
    fail_times(&app, &attacker, "victim@example.com", 5).await;
    assert_held(authenticate(&app, &attacker, "victim@example.com", WRONG).await).await;

    // One hashing slot, a short queue, and a verification that takes a good while: while
    // another login holds the slot, anything that needed argon2 would answer 503.
    let app = app
        .restart_with(|s| {
            s.passwords.max_concurrent_hashes = 1;
            s.passwords.hash_queue_timeout_ms = 50;
            s.passwords.argon2_memory_kib = 65_536;
            s.passwords.argon2_iterations = 16;
        })
        .await;
    let occupant_client = from(3);
    let probe = from(4);
    let mut conclusive = false;
    for _ in 0..10 {
        // The occupant's stored hash has the old, cheap parameters; a wrong password for an
        // unknown e-mail is checked against the dummy hash made with the expensive ones.
        let occupant = {
            let app_url = app.url("/authenticate");
            let client = occupant_client.clone();
            tokio::spawn(async move {
                client
                    .post(app_url)
                    .json(&json!({"email": fresh_email(), "password": WRONG, "nonce": "x"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        };
        // Wait until the slot is taken: a probe is turned away with 503.
        let mut busy = false;
        for _ in 0..50 {
            let status = authenticate(&app, &probe, &fresh_email(), WRONG)
                .await
                .status();
            if status == 503 {
                busy = true;
                break;
            }
            if occupant.is_finished() {
                break;
            }
        }
        if !busy {
            let _ = occupant.await;
            continue;
        }
        let held = authenticate(&app, &attacker, "victim@example.com", PASSWORD).await;
        // Still busy afterwards: the slot was taken all along, so the held answer came
        // without waiting for it.
        let after = authenticate(&app, &probe, &fresh_email(), WRONG)
            .await
            .status();
        let _ = occupant.await;
        if after == 503 {
            assert_held(held).await;
            conclusive = true;
            break;
        }
    }
    assert!(
        conclusive,
        "never caught the hashing slot busy around the held attempt"
    );
}

#[tokio::test]
async fn forwarded_headers_are_believed_only_from_trusted_proxies() {
    let app = spawn_app_with_clock(manual_clock(), |s| {
        s.http.trusted_proxies = vec!["127.0.0.2/32".parse().unwrap()];
    })
    .await;
    app.sign_up("fwd@example.com", PASSWORD).await;
    let send = |client: Client, forwarded_for: String| {
        let url = app.url("/authenticate");
        async move {
            client
                .post(url)
                .header("x-forwarded-for", forwarded_for)
                .json(&json!({"email": "fwd@example.com", "password": WRONG, "nonce": "n"}))
                .send()
                .await
                .unwrap()
        }
    };
    // An untrusted peer cannot pose as many clients: every attempt counts against the peer.
    for i in 0..5 {
        let response = send(from(3), format!("203.0.113.{i}")).await;
        assert_eq!(response.status(), 401);
    }
    assert_held(send(from(3), "203.0.113.99".to_owned()).await).await;

    // Behind the trusted proxy, the forwarded client is the client…
    for _ in 0..5 {
        let response = send(from(2), "198.51.100.1".to_owned()).await;
        assert_eq!(response.status(), 401);
    }
    assert_held(send(from(2), "198.51.100.1".to_owned()).await).await;
    // …what the client itself prepended proves nothing…
    assert_held(send(from(2), "192.0.2.50, 198.51.100.1".to_owned()).await).await;
    // …and another forwarded client has a count of its own.
    assert_eq!(send(from(2), "198.51.100.2".to_owned()).await.status(), 401);
}

#[tokio::test]
async fn the_account_ceiling_holds_strangers_but_not_addresses_that_logged_in_recently() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |s| {
        s.throttle.account_max_failures = 10;
        s.sessions.ttl_secs = 7 * 24 * 3600;
    })
    .await;
    app.sign_up("owner@example.com", PASSWORD).await;
    let (laptop, phone, new_device) = (from(2), from(6), from(7));
    // The owner logs in from the laptop (identity token) and the phone (session).
    assert_eq!(
        authenticate(&app, &laptop, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        sessions(&app, &phone, "owner@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    clock.advance(3600);
    // Strangers spend the account's ceiling, five failures from each of two addresses.
    fail_times(&app, &from(3), "owner@example.com", 5).await;
    fail_times(&app, &from(4), "owner@example.com", 5).await;
    // A third stranger, with no failures of its own, is held by the ceiling…
    let wait = assert_held(authenticate(&app, &from(5), "owner@example.com", WRONG).await).await;
    assert_eq!(
        wait,
        24 * 3600,
        "until the oldest failure leaves the window"
    );
    // …and so is the owner on a device never used before…
    assert_held(authenticate(&app, &new_device, "owner@example.com", PASSWORD).await).await;
    // …but not on the laptop and the phone.
    assert_eq!(
        authenticate(&app, &laptop, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        sessions(&app, &phone, "owner@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    // Once the failures leave the window, the new device gets in.
    clock.advance(wait);
    assert_eq!(
        authenticate(&app, &new_device, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_login_older_than_the_session_lifetime_no_longer_exempts_its_address() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |s| {
        s.throttle.account_max_failures = 10;
        s.sessions.ttl_secs = 3600;
    })
    .await;
    app.sign_up("owner@example.com", PASSWORD).await;
    let laptop = from(2);
    assert_eq!(
        authenticate(&app, &laptop, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    fail_times(&app, &from(3), "owner@example.com", 5).await;
    fail_times(&app, &from(4), "owner@example.com", 5).await;
    clock.advance(3599);
    assert_eq!(
        authenticate(&app, &laptop, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    // That login renewed the exemption for another session lifetime; let it lapse.
    clock.advance(3600);
    assert_held(authenticate(&app, &laptop, "owner@example.com", PASSWORD).await).await;
}

#[tokio::test]
async fn one_address_spraying_many_accounts_is_held_by_its_budget() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |s| {
        s.throttle.address_max_failures = 8;
        s.throttle.address_window_secs = 600;
    })
    .await;
    app.sign_up("sprayed@example.com", PASSWORD).await;
    let sprayer = from(2);
    for i in 0..8 {
        let email = format!("user{i}@example.com");
        fail_times(&app, &sprayer, &email, 1).await;
        clock.advance(10);
    }
    let wait = assert_held(authenticate(&app, &sprayer, "sprayed@example.com", WRONG).await).await;
    assert_eq!(wait, 600 - 80);
    // Other addresses are not held by this one's spraying.
    fail_times(&app, &from(3), "sprayed@example.com", 1).await;
    clock.advance(wait);
    fail_times(&app, &sprayer, "sprayed@example.com", 1).await;
}

#[tokio::test]
async fn current_password_checks_are_throttled_like_logins() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    app.sign_up("patch@example.com", PASSWORD).await;
    let a = from(2);
    let session = sessions(&app, &a, "patch@example.com", PASSWORD).await;
    let session: Value = session.json().await.unwrap();
    let session = session["session_token"].as_str().unwrap().to_owned();
    let patch = |current: &'static str| {
        let request = a
            .patch(app.url("/users/me"))
            .bearer_auth(&session)
            .json(&json!({"email": "new@example.com", "current_password": current}));
        async move { request.send().await.unwrap() }
    };
    for _ in 0..5 {
        assert_eq!(patch(WRONG).await.status(), 403);
    }
    assert_eq!(assert_held(patch(PASSWORD).await).await, 1);
    // The same counters as logins: the account is held for this address there too.
    assert_held(authenticate(&app, &a, "patch@example.com", PASSWORD).await).await;
    clock.advance(1);
    assert_eq!(patch(PASSWORD).await.status(), 200);
    // Nothing changed while held; the change went through once admitted.
    let me: Value = app.get_me(&session).await.json().await.unwrap();
    assert_eq!(me["email"], "new@example.com");
}

#[tokio::test]
async fn sign_ups_from_one_address_are_rate_limited_with_their_own_429() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |s| {
        s.throttle.signups_per_address = 3;
        s.throttle.signup_window_secs = 3600;
    })
    .await;
    let sign_up = |client: Client, n: u32| {
        let url = app.url("/users");
        async move {
            client
                .post(url)
                .json(&json!({"email": format!("s{n}@example.com"), "password": PASSWORD}))
                .send()
                .await
                .unwrap()
        }
    };
    for n in 0..3 {
        assert_eq!(sign_up(from(2), n).await.status(), 201);
        clock.advance(100);
    }
    let refused = sign_up(from(2), 3).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(retry_after(&refused), 3600 - 300);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_signups");
    assert_eq!(
        app.user_count().await,
        3,
        "a refused sign-up creates nothing"
    );
    // A bad request is refused for what it is, without spending the budget.
    let bad = from(3)
        .post(app.url("/users"))
        .json(&json!({"email": "not an e-mail", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(sign_up(from(3), 4).await.status(), 201);
    clock.advance(3600 - 300);
    assert_eq!(sign_up(from(2), 5).await.status(), 201);
}

/// Counts the failed guesses one attacker gets through in `[start, start + seconds)`, always
/// retrying exactly when Retry-After says. `addresses` yields a fresh client when the current
/// one is held and the attacker has more addresses.
async fn guesses_within(
    app: &TestApp,
    clock: &crate::helpers::Clock,
    email: &str,
    seconds: i64,
    mut addresses: impl FnMut() -> Option<Client>,
) -> u32 {
    let end = clock.now() + seconds;
    let mut client = addresses().unwrap();
    let mut guesses = 0;
    loop {
        let response = authenticate(app, &client, email, WRONG).await;
        if response.status() == 401 {
            guesses += 1;
            continue;
        }
        let wait = assert_held(response).await;
        if let Some(fresh) = addresses() {
            client = fresh;
            let response = authenticate(app, &client, email, WRONG).await;
            if response.status() == 401 {
                guesses += 1;
                continue;
            }
            assert_held(response).await;
        }
        if clock.now() + wait >= end {
            clock.set(end);
            return guesses;
        }
        clock.advance(wait);
    }
}

#[tokio::test]
async fn guesses_per_account_per_day_with_the_default_settings() {
    const DAY: i64 = 24 * 3600;
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    app.sign_up("target@example.com", PASSWORD).await;

    // One address: 5 free, 12 doubling waits (1 s … 2048 s), then one an hour.
    let mut once = Some(from(2));
    let first_day = guesses_within(&app, &clock, "target@example.com", DAY, || once.take()).await;
    let mut once = Some(from(2));
    let second_day = guesses_within(&app, &clock, "target@example.com", DAY, || once.take()).await;
    println!("one address: {first_day} guesses on the first day, {second_day} a day after");
    assert_eq!(first_day, 5 + 12 + 22);
    assert_eq!(second_day, 24);

    // Many addresses, as many as it takes: the account's ceiling of 50 per rolling day.
    app.sign_up("target2@example.com", PASSWORD).await;
    let mut next = 0u32;
    let mut many = || {
        next += 1;
        let [_, _, hi, lo] = (0x7f_01_00_00u32 + next).to_be_bytes();
        Some(from_ip([127, 1, hi, lo].into()))
    };
    let first_day = guesses_within(&app, &clock, "target2@example.com", DAY, &mut many).await;
    let second_day = guesses_within(&app, &clock, "target2@example.com", DAY, &mut many).await;
    println!("many addresses: {first_day} guesses on the first day, {second_day} a day after");
    assert_eq!(first_day, 50);
    assert_eq!(second_day, 50);
}

#[tokio::test]
async fn throttling_records_leave_once_no_rule_counts_them() {
    use layer_idp::store::{SignupClaim, ThrottlePurge, ThrottleQuery};
    let app = spawn_app_with_clock(manual_clock(), |_| {}).await;
    let store = &app.store;
    // In the future, so the app's own purge task (at the clock's present) leaves them alone.
    let t = app.clock.now() + 100_000;
    store
        .record_login_failure("k", "192.0.2.1", t)
        .await
        .unwrap();
    store
        .record_login_failure("k", "192.0.2.2", t + 5)
        .await
        .unwrap();
    assert_eq!(
        store.claim_signup("192.0.2.1", t, t - 10, 1).await.unwrap(),
        SignupClaim::Admitted
    );
    assert_eq!(
        store
            .claim_signup("192.0.2.1", t + 1, t - 10, 1)
            .await
            .unwrap(),
        SignupClaim::Refused { oldest: t }
    );
    let query = ThrottleQuery {
        email_key: "k",
        client: "192.0.2.1",
        failures_since: t - 10,
        client_failures_since: t - 10,
        successes_since: t - 10,
    };
    let state = store.login_throttle_state(query).await.unwrap();
    assert_eq!(
        (
            state.pair_failures,
            state.account_failures,
            state.account_oldest_failure
        ),
        (1, 2, Some(t))
    );
    let purged = store
        .purge_throttle_records(ThrottlePurge {
            failures_before: t,
            successes_before: t - 10,
            signups_before: t,
        })
        .await
        .unwrap();
    assert_eq!(purged, 2, "the failure at t and the sign-up at t");
    let state = store.login_throttle_state(query).await.unwrap();
    assert_eq!((state.pair_failures, state.account_failures), (0, 1));
}

/// Rows in each table the login flow may write, read straight from the app's database.
async fn row_counts(app: &TestApp) -> Vec<(&'static str, i64)> {
    use sqlx::Connection;
    const TABLES: [&str; 6] = [
        "users",
        "sessions",
        "signed_nonces",
        "login_failures",
        "login_successes",
        "signup_attempts",
    ];
    let url = app.settings.effective_database_url();
    let mut counts = Vec::new();
    for table in TABLES {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        let count: i64 = if url.is_postgres() {
            let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::SqliteConnection::connect(url.expose()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        };
        counts.push((table, count));
    }
    counts
}

fn changed(before: &[(&'static str, i64)], after: &[(&'static str, i64)]) -> Vec<String> {
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, a)| format!("{} {:+}", b.0, a.1 - b.1))
        .collect()
}

#[tokio::test]
async fn a_successful_login_writes_only_what_it_wrote_before_and_identity_tokens_nothing_new() {
    let app = spawn_app_with_clock(manual_clock(), |_| {}).await;
    app.sign_up("quiet@example.com", PASSWORD).await;
    let a = from(2);

    let before = row_counts(&app).await;
    let response = authenticate(&app, &a, "quiet@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200);
    // The nonce, and in the same batch the address it logged in from.
    let after = row_counts(&app).await;
    assert_eq!(
        changed(&before, &after),
        ["signed_nonces +1", "login_successes +1"]
    );

    let session = sessions(&app, &a, "quiet@example.com", PASSWORD).await;
    let session: Value = session.json().await.unwrap();
    let token = session["session_token"].as_str().unwrap();
    // The session row; the address was already recorded (an update in the same transaction).
    let after_session = row_counts(&app).await;
    assert_eq!(changed(&after, &after_session), ["sessions +1"]);

    let response = app.post_identity_tokens(token, &nonce()).await;
    assert_eq!(response.status(), 200);
    let after_token = row_counts(&app).await;
    assert_eq!(changed(&after_session, &after_token), ["signed_nonces +1"]);

    // Failures are the only rows a failed attempt adds; the success after them clears them.
    fail_times(&app, &a, "quiet@example.com", 2).await;
    let after_failures = row_counts(&app).await;
    assert_eq!(
        changed(&after_token, &after_failures),
        ["login_failures +2"]
    );
    assert_eq!(
        sessions(&app, &a, "quiet@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    let cleared = row_counts(&app).await;
    assert_eq!(
        changed(&after_failures, &cleared),
        ["sessions +1", "login_failures -2"]
    );
}

#[tokio::test]
async fn with_forwarded_configured_the_rfc_7239_header_names_the_client_and_x_forwarded_for_does_not()
 {
    let app = spawn_app_with_clock(manual_clock(), |s| {
        s.http.trusted_proxies = vec!["127.0.0.2/32".parse().unwrap()];
        s.http.forwarded_header = layer_idp::idp::client::ForwardedHeader::Forwarded;
    })
    .await;
    let send = |header: &'static str, value: &'static str| {
        let request = from(2)
            .post(app.url("/authenticate"))
            .header(header, value)
            .json(&json!({"email": "rfc@example.com", "password": WRONG, "nonce": "n"}));
        async move { request.send().await.unwrap() }
    };
    for _ in 0..5 {
        let response = send("forwarded", "for=\"198.51.100.1:4711\";proto=https").await;
        assert_eq!(response.status(), 401);
    }
    assert_held(send("forwarded", "for=198.51.100.1").await).await;
    // X-Forwarded-For is not what the proxies write here: the proxy itself is the client,
    // which has no failures yet.
    assert_eq!(send("x-forwarded-for", "198.51.100.1").await.status(), 401);
    assert_eq!(send("forwarded", "for=198.51.100.2").await.status(), 401);
}
