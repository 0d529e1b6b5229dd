//! Identity sync: changes to users at the identity provider reach Layer's Platform API — here
//! the real emulator, over real HTTP — in order, at least once, across restarts, outages and
//! replicas.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use layer_idp::config::{MockLayerSettings, Settings};
use layer_idp::mock_layer::{self, LocalProvider, TrustedKey};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PROVIDER_ID, TestApp, manual_clock, spawn_app_with, spawn_app_with_clock};

const BIN: &str = env!("CARGO_BIN_EXE_layer-idp");
const APP: &str = "layer:///apps/staging/5a1e0b9c-3d7f-4a52-9c1e-6f0a2b3c4d5e";
const APP_UUID: &str = "5a1e0b9c-3d7f-4a52-9c1e-6f0a2b3c4d5e";
const TOKEN: &str = "sync-test-platform-token";
const PASSWORD: &str = "a long password";

/// Generous: a wait ends as soon as what it waits for happens.
const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until `check` answers `Some`, polling; fails the test after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The emulator's Platform API and test controls, as a backend and a test see them.
#[derive(Clone)]
struct Layer {
    http: reqwest::Client,
    url: String,
    app_uuid: String,
    token: String,
}

impl Layer {
    /// The emulator running inside `app`, through its first app and Platform API token.
    async fn beside(app: &TestApp) -> Layer {
        let url = format!("http://{}", app.mock_layer_addr.expect("the emulator runs"));
        let http = reqwest::Client::new();
        let apps: Value = http
            .get(format!("{url}/_mock/apps"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let first = apps["apps"][0].as_str().unwrap();
        Layer {
            app_uuid: first.rsplit('/').next().unwrap().to_owned(),
            token: apps["platform_tokens"][first].as_str().unwrap().to_owned(),
            http,
            url,
        }
    }

    async fn call(&self, method: Method, path: &str) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}/apps/{}{path}", self.url, self.app_uuid))
            .bearer_auth(&self.token)
            .header("accept", "application/vnd.layer+json; version=3.0")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET /users/{u}/identity`: the identity, when Layer has one.
    async fn identity(&self, user: &str) -> Option<Value> {
        let (status, body) = self
            .call(Method::GET, &format!("/users/{user}/identity"))
            .await;
        (status == 200).then_some(body)
    }

    /// `GET /users/{u}`: `suspended` and the identity.
    async fn user(&self, user: &str) -> Option<Value> {
        let (status, body) = self.call(Method::GET, &format!("/users/{user}")).await;
        (status == 200).then_some(body)
    }

    async fn wait_for_identity(&self, user: &str, field: &str, value: &str) -> Value {
        eventually(
            &format!("{user}'s {field} to become {value:?} at Layer"),
            || async {
                self.identity(user)
                    .await
                    .filter(|identity| identity[field].as_str().unwrap_or("") == value)
            },
        )
        .await
    }

    async fn wait_for_suspended(&self, user: &str, suspended: bool) {
        eventually(
            &format!("{user} suspended = {suspended} at Layer"),
            || async {
                self.user(user)
                    .await
                    .filter(|u| u["suspended"] == suspended)
                    .map(drop)
            },
        )
        .await;
    }

    /// The Platform API requests the emulator received about `user`, oldest first, as
    /// `METHOD /users/{u}…` with the status.
    async fn requests_about(&self, user: &str) -> Vec<String> {
        let journal: Value = self
            .http
            .get(format!("{}/_mock/requests", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let prefix = format!("/apps/{}/users/{user}", self.app_uuid);
        journal
            .as_array()
            .or_else(|| journal["requests"].as_array())
            .expect("a list of requests")
            .iter()
            .filter_map(|entry| {
                let path = entry["path"].as_str()?;
                let rest = path.strip_prefix(&prefix)?;
                Some(format!(
                    "{} /users/{user}{rest} {}",
                    entry["method"].as_str()?,
                    entry["status"]
                ))
            })
            .collect()
    }
}

/// A Layer emulator of its own, serving [`APP`] with [`TOKEN`], on `listener`.
async fn start_layer(listener: std::net::TcpListener) -> Layer {
    let settings = MockLayerSettings {
        app_ids: vec![APP.parse().unwrap()],
        platform_token: Some(mock_layer::settings::PlatformToken(TOKEN.to_owned())),
        ..MockLayerSettings::default()
    };
    // The emulator wants a key to trust; these tests log in to it only through the
    // identity provider beside it, so any key does.
    static KEY: std::sync::OnceLock<TrustedKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
        use aws_lc_rs::signature::KeyPair as _;
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let public = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        TrustedKey {
            id: "layer:///keys/5a1e0b9c-0000-4000-8000-000000000001".to_owned(),
            n: public.n,
            e: public.e,
        }
    });
    let local = LocalProvider {
        provider_id: PROVIDER_ID.to_owned(),
        keys: vec![key.clone()],
        apps: Vec::new(),
    };
    let running = mock_layer::start(&settings, Some(local), listener, 1)
        .await
        .unwrap();
    let url = format!("http://{}", running.addr);
    tokio::spawn(running.server);
    Layer {
        http: reqwest::Client::new(),
        url,
        app_uuid: APP_UUID.to_owned(),
        token: TOKEN.to_owned(),
    }
}

/// Sync to the Platform API at `url` (as an operator configures it), polling often.
fn sync_to(settings: &mut Settings, url: &str) {
    settings.identity_sync.platform_url = Some(url.to_owned());
    settings.identity_sync.app_id = Some(APP.to_owned());
    settings.identity_sync.token = Some(TOKEN.to_owned().into());
    settings.identity_sync.poll_interval_ms = 20;
}

fn with_emulator(settings: &mut Settings) {
    settings.mock_layer.listen = Some("127.0.0.1:0".parse().unwrap());
    settings.identity_sync.poll_interval_ms = 20;
}

async fn sign_up(app: &TestApp, email: &str, display_name: &str) -> String {
    let user = app
        .sign_up_with(json!({"email": email, "password": PASSWORD, "display_name": display_name}))
        .await;
    user["id"].as_str().unwrap().to_owned()
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> u16 {
    let token = app.admin_token().await;
    let mut request = app.admin(method, path, &token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn with_the_emulator_in_the_process_every_change_to_a_user_reaches_it_with_no_settings() {
    let app = spawn_app_with(with_emulator).await;
    let layer = Layer::beside(&app).await;

    // Sign-up.
    let id = sign_up(&app, "alice@example.com", "Alice").await;
    layer.wait_for_identity(&id, "display_name", "Alice").await;

    // The user's own profile change.
    let session = app.session_token("alice@example.com", PASSWORD).await;
    let response = app
        .patch_me(
            &session,
            &json!({"display_name": "Alice Liddell", "avatar_url": "https://example.com/a.png"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let identity = layer
        .wait_for_identity(&id, "display_name", "Alice Liddell")
        .await;
    assert_eq!(identity["avatar_url"], "https://example.com/a.png");

    // An administrator's change.
    let status = admin(
        &app,
        Method::PATCH,
        &format!("/admin/users/{id}"),
        Some(json!({"first_name": "Alice", "last_name": "Liddell"})),
    )
    .await;
    assert_eq!(status, 200);
    let identity = layer.wait_for_identity(&id, "last_name", "Liddell").await;
    assert_eq!(identity["first_name"], "Alice");
    assert_eq!(identity["display_name"], "Alice Liddell");

    // Disable: suspended, sessions ended; enable: unsuspended.
    let status = admin(
        &app,
        Method::POST,
        &format!("/admin/users/{id}/disable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    layer.wait_for_suspended(&id, true).await;
    let status = admin(
        &app,
        Method::POST,
        &format!("/admin/users/{id}/enable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    layer.wait_for_suspended(&id, false).await;

    // Delete: the identity goes.
    let status = admin(&app, Method::DELETE, &format!("/admin/users/{id}"), None).await;
    assert!(status == 200 || status == 204, "{status}");
    let requests = eventually("the identity's deletion at Layer", || async {
        let requests = layer.requests_about(&id).await;
        requests
            .iter()
            .any(|r| r.starts_with("DELETE") && r.ends_with("/identity 204"))
            .then_some(requests)
    })
    .await;
    layer.wait_for_identity(&id, "display_name", "").await;

    // What Layer was asked, in the order the changes were made.
    let writes: Vec<&String> = requests.iter().filter(|r| !r.starts_with("GET")).collect();
    let expected = [
        format!("PUT /users/{id}/identity 204"),
        format!("PATCH /users/{id}/identity 204"),
        format!("PATCH /users/{id}/identity 204"),
        format!("PATCH /users/{id} 202"),
        format!("DELETE /users/{id}/sessions 204"),
        format!("PATCH /users/{id} 202"),
        format!("DELETE /users/{id}/identity 204"),
    ];
    assert_eq!(writes, expected.iter().collect::<Vec<_>>(), "{requests:#?}");
    assert_eq!(
        app.store.identity_outbox_backlog().await.unwrap().pending,
        0
    );
}

#[tokio::test]
async fn a_disabled_user_s_layer_sessions_end() {
    let app = spawn_app_with(with_emulator).await;
    let layer = Layer::beside(&app).await;
    let id = sign_up(&app, "bob@example.com", "Bob").await;
    layer.wait_for_identity(&id, "display_name", "Bob").await;

    // Bob signs in to Layer with a real identity token from the identity provider.
    let nonce: Value = layer
        .http
        .post(format!("{}/nonces", layer.url))
        .header("accept", "application/vnd.layer+json; version=3.0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = app
        .identity_token(
            "bob@example.com",
            PASSWORD,
            nonce["nonce"].as_str().unwrap(),
        )
        .await;
    let app_id = format!("layer:///apps/staging/{}", layer.app_uuid);
    let apps: Value = layer
        .http
        .get(format!("{}/_mock/apps", layer.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = apps["apps"][0].as_str().unwrap_or(&app_id).to_owned();
    let session: Value = layer
        .http
        .post(format!("{}/sessions", layer.url))
        .header("accept", "application/vnd.layer+json; version=3.0")
        .json(&json!({"identity_token": token, "app_id": app_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = session["session_token"]
        .as_str()
        .expect("a Layer session")
        .to_owned();
    let conversations = |session: String| {
        let layer = layer.clone();
        async move {
            layer
                .http
                .get(format!("{}/conversations", layer.url))
                .header("accept", "application/vnd.layer+json; version=3.0")
                .header(
                    "authorization",
                    format!("Layer session-token=\"{session}\""),
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(conversations(session.clone()).await, 200);

    let status = admin(
        &app,
        Method::POST,
        &format!("/admin/users/{id}/disable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    layer.wait_for_suspended(&id, true).await;
    assert_eq!(conversations(session).await, 401, "the Layer session ended");
}

#[tokio::test]
async fn changes_made_while_layer_is_down_and_across_a_restart_arrive_in_order_once_it_is_up() {
    // A port where nothing listens yet: Layer is down.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let layer_addr = reserved.local_addr().unwrap();
    drop(reserved);
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |settings| {
        sync_to(settings, &format!("http://{layer_addr}"));
        settings.identity_sync.max_backoff_secs = 60;
    })
    .await;

    let carol = sign_up(&app, "carol@example.com", "One").await;
    let session = app.session_token("carol@example.com", PASSWORD).await;
    assert_eq!(
        app.patch_me(&session, &json!({"display_name": "Two"}))
            .await
            .status(),
        200,
        "a request does not wait for Layer"
    );
    let dave = sign_up(&app, "dave@example.com", "Dave").await;
    let status = admin(
        &app,
        Method::POST,
        &format!("/admin/users/{carol}/disable"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // The worker tried and failed; the changes wait in the outbox.
    eventually("a failed attempt", || async {
        let backlog = app.store.identity_outbox_backlog().await.unwrap();
        (backlog.failing >= 1).then_some(())
    })
    .await;
    assert_eq!(
        app.store.identity_outbox_backlog().await.unwrap().pending,
        4
    );

    // The service restarts while Layer is still down; then Layer comes up.
    let app = app.restart().await;
    let layer = start_layer(std::net::TcpListener::bind(layer_addr).unwrap()).await;
    // Past any backoff: the next attempt is due.
    clock.advance(61);

    eventually("the outbox to empty", || async {
        let backlog = app.store.identity_outbox_backlog().await.unwrap();
        (backlog.pending == 0).then_some(())
    })
    .await;
    let identity = layer.identity(&carol).await.expect("carol's identity");
    assert_eq!(identity["display_name"], "Two");
    assert_eq!(layer.user(&carol).await.unwrap()["suspended"], true);
    assert_eq!(layer.identity(&dave).await.unwrap()["display_name"], "Dave");

    // Carol's changes in order: created (with her latest name), then suspended, then her
    // sessions ended.
    let writes: Vec<String> = (layer.requests_about(&carol).await.into_iter())
        .filter(|r| !r.starts_with("GET"))
        .collect();
    assert_eq!(
        writes,
        [
            format!("PUT /users/{carol}/identity 204"),
            format!("PATCH /users/{carol} 202"),
            format!("DELETE /users/{carol}/sessions 204"),
        ]
    );
}

#[tokio::test]
async fn the_command_line_and_an_import_leave_changes_that_the_server_sends() {
    let app = spawn_app_with(with_emulator).await;
    let layer = Layer::beside(&app).await;
    let id = sign_up(&app, "erin@example.com", "Erin").await;
    layer.wait_for_identity(&id, "display_name", "Erin").await;

    // The command line runs with the same settings as the server: sync configured (here
    // towards the same emulator), so its changes are written to the outbox too.
    let database = app.settings.effective_database_url().expose().to_owned();
    let dir = app.dir.path().to_path_buf();
    let sync_env = [
        ("LAYER_IDP_IDENTITY_SYNC__PLATFORM_URL", layer.url.clone()),
        ("LAYER_IDP_IDENTITY_SYNC__APP_ID", layer.app_uuid.clone()),
        ("LAYER_IDP_IDENTITY_SYNC__TOKEN", layer.token.clone()),
    ];
    let run = move |args: Vec<String>, stdin: Option<String>| {
        let (dir, database, sync_env) = (dir.clone(), database.clone(), sync_env.clone());
        tokio::task::spawn_blocking(move || -> Output {
            use std::io::Write;
            let mut child = Command::new(BIN)
                .current_dir(dir)
                .arg("--database-url")
                .arg(database)
                .args(args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(sync_env)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut pipe = child.stdin.take().unwrap();
            if let Some(input) = stdin {
                pipe.write_all(input.as_bytes()).unwrap();
            }
            drop(pipe);
            child.wait_with_output().unwrap()
        })
    };
    let args = [
        "users",
        "update",
        &id,
        "--display-name",
        "Erin from the CLI",
    ];
    let updated = run(args.map(str::to_owned).to_vec(), None).await.unwrap();
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    layer
        .wait_for_identity(&id, "display_name", "Erin from the CLI")
        .await;

    // A bcrypt hash made by Python's bcrypt (tests/fixtures/legacy_hashes.json).
    let hash = "$2b$10$4sUynEODO0cYEmODNFgyQ.zaqQ2oQGSETwwe7OQiXI4EHOLqt11VG";
    let line = json!({"id": "imported-1", "email": "frank@example.com", "display_name": "Frank",
                      "password_hash": hash});
    let args = vec!["users".to_owned(), "import".to_owned(), "-".to_owned()];
    let imported = run(args, Some(format!("{line}\n"))).await.unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    layer
        .wait_for_identity("imported-1", "display_name", "Frank")
        .await;
}

#[tokio::test]
async fn two_replicas_on_one_postgres_database_send_each_change_once() {
    if !std::env::var("TEST_DATABASE_URL").is_ok_and(|url| url.starts_with("postgres")) {
        eprintln!("skipped: needs TEST_DATABASE_URL=postgres://…");
        return;
    }
    // Two emulators with the same app and token: each replica sends to its own, so the two
    // journals together show every request either replica made.
    let layers = [
        start_layer(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).await,
        start_layer(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).await,
    ];
    let first = spawn_app_with(|settings| {
        sync_to(settings, &layers[0].url);
        settings.identity_sync.batch_size = 4;
    })
    .await;
    let database = first.settings.database_url.clone();
    let second = spawn_app_with(|settings| {
        sync_to(settings, &layers[1].url);
        settings.identity_sync.batch_size = 4;
        settings.database_url = database;
    })
    .await;

    // 120 users created at once through the store, so both replicas find work waiting.
    let users: Vec<String> = (0..120).map(|i| format!("replica-user-{i:03}")).collect();
    let now = layer_idp::clock::unix_now();
    for (i, id) in users.iter().enumerate() {
        let profile = layer_idp::domain::Profile {
            display_name: layer_idp::domain::ProfileName::parse("display_name", id).unwrap(),
            ..Default::default()
        };
        let id = layer_idp::domain::UserId::parse(id).unwrap();
        let email = layer_idp::domain::Email::parse(&format!("r{i}@example.com")).unwrap();
        let store = if i % 2 == 0 {
            &first.store
        } else {
            &second.store
        };
        store
            .create_user(layer_idp::store::NewUser {
                id: &id,
                email: &email,
                password_hash: "not a hash",
                profile: &profile,
                now,
            })
            .await
            .unwrap()
            .unwrap();
    }
    eventually("the outbox to empty", || async {
        let backlog = first.store.identity_outbox_backlog().await.unwrap();
        (backlog.pending == 0).then_some(())
    })
    .await;

    let mut split = [0usize; 2];
    for user in &users {
        let mut creates = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let requests = layer.requests_about(user).await;
            let puts = requests.iter().filter(|r| r.starts_with("PUT")).count();
            split[i] += puts;
            creates.extend(requests);
        }
        assert_eq!(
            creates,
            [
                format!("GET /users/{user}/identity 404"),
                format!("PUT /users/{user}/identity 204"),
            ],
            "each change is sent once, by one replica"
        );
    }
    eprintln!("identities created by each replica: {split:?}");
}

#[tokio::test]
async fn a_refused_token_is_retried_until_the_operator_fixes_it() {
    let layer = start_layer(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).await;
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |settings| {
        sync_to(settings, &layer.url);
        settings.identity_sync.token = Some("not-the-token".to_owned().into());
    })
    .await;
    let id = sign_up(&app, "grace@example.com", "Grace").await;
    eventually("a refused attempt", || async {
        let backlog = app.store.identity_outbox_backlog().await.unwrap();
        (backlog.failing >= 1).then_some(())
    })
    .await;
    assert_eq!(
        app.store.identity_outbox_backlog().await.unwrap().pending,
        1
    );
    assert!(layer.identity(&id).await.is_none());

    let app = app
        .restart_with(|settings| settings.identity_sync.token = Some(TOKEN.to_owned().into()))
        .await;
    clock.advance(301);
    layer.wait_for_identity(&id, "display_name", "Grace").await;
    eventually("the outbox to empty", || async {
        let backlog = app.store.identity_outbox_backlog().await.unwrap();
        (backlog.pending == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn turned_off_beside_the_emulator_nothing_is_written_to_the_outbox() {
    let app = spawn_app_with(|settings| {
        with_emulator(settings);
        settings.identity_sync.enabled = Some(false);
    })
    .await;
    let id = sign_up(&app, "heidi@example.com", "Heidi").await;
    let status = admin(
        &app,
        Method::POST,
        &format!("/admin/users/{id}/disable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let status = admin(&app, Method::DELETE, &format!("/admin/users/{id}"), None).await;
    assert!(status == 200 || status == 204, "{status}");
    assert!(!app.store.identity_outbox_enabled());
    assert_eq!(
        app.store.identity_outbox_backlog().await.unwrap(),
        Default::default(),
        "no row was written, so nothing will be sent"
    );
}
