//! `spawn_app()`: the real application on port 0 with a fresh database and its own key files,
//! plus one helper per endpoint.
//!
//! Without `TEST_DATABASE_URL` each app gets a temp-file SQLite database (not `sqlite::memory:`,
//! where each pooled connection would see its own empty database). With
//! `TEST_DATABASE_URL=postgres://…` each app gets a uniquely named PostgreSQL database, dropped
//! when the app is dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

pub use layer_idp::clock::Clock;
use layer_idp::config::{DatabaseUrl, KeySettings, Settings};
use layer_idp::idp::keys::{GeneratedKey, generate_key};
use layer_idp::startup::Application;
use layer_idp::store::Store;
use serde_json::{Value, json};

/// Key generation costs ~0.1 s; one key pair per test process is plenty.
static TEST_KEY: LazyLock<GeneratedKey> = LazyLock::new(|| generate_key().expect("test key"));
static SECOND_KEY: LazyLock<GeneratedKey> = LazyLock::new(|| generate_key().expect("test key"));

static TRACING: LazyLock<()> = LazyLock::new(|| {
    // Logs go to a sink unless TEST_LOG is set.
    if std::env::var_os("TEST_LOG").is_some() {
        layer_idp::telemetry::init_with_writer(
            layer_idp::config::LogFormat::Pretty,
            "info,sqlx=warn",
            std::io::stdout,
        );
    }
});

pub const PROVIDER_ID: &str = "layer:///providers/7ab3e8a6-0c43-4d3b-9b56-2b8b4bd1d36e";
pub const KEY_ID: &str = "layer:///keys/0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3a1";
pub const SECOND_KEY_ID: &str = "layer:///keys/9d2f1a77-65a1-4c0c-8e0b-3f5f2a1b6c90";

pub struct TestApp {
    pub address: String,
    pub addr: SocketAddr,
    /// The Layer emulator's address, when the settings start it.
    pub mock_layer_addr: Option<SocketAddr>,
    /// Where `GET /metrics` is served, when the settings start it.
    pub metrics_addr: Option<SocketAddr>,
    pub settings: Settings,
    pub dir: Arc<tempfile::TempDir>,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub hasher: layer_idp::idp::password::PasswordHasher,
    /// The application's clock: the system's, or a manual one from [`spawn_app_with_clock`].
    pub clock: Clock,
    handle: actix_web::dev::ServerHandle,
    postgres: Option<Arc<PgDatabase>>,
}

/// A compact JWS over exactly `header` and `claims`, RS256 with the test key (or the second
/// one): for tests that need a token the identity provider would never sign.
pub fn sign_with_test_key(header: &Value, claims: &Value, second: bool) -> String {
    use aws_lc_rs::signature::RSA_PKCS1_SHA256;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = if second { &SECOND_KEY } else { &TEST_KEY };
    let der = pem::parse(key.private_pem.as_bytes()).unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der.contents()).unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
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

/// The test key's public half, PEM.
pub fn test_public_pem() -> String {
    TEST_KEY.public.to_pem()
}

/// The default test settings: a configured provider and key (production mode), cheap argon2.
pub fn test_settings(dir: &Path) -> Settings {
    let key_file = dir.join("active.private.pem");
    if !key_file.exists() {
        std::fs::write(&key_file, &TEST_KEY.private_pem).unwrap();
    }
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        keys_dir: dir.join("keys"),
        provider_id: Some(PROVIDER_ID.to_owned()),
        ..Settings::default()
    };
    settings.signing.keys = vec![KeySettings {
        id: KEY_ID.to_owned(),
        private_key_file: Some(key_file),
        private_key: None,
        public_key_file: None,
    }];
    settings.passwords.argon2_memory_kib = 256;
    settings.passwords.argon2_iterations = 1;
    settings.http.workers = Some(1);
    settings
}

/// Writes the second test key and returns its key settings (for rotation tests).
pub fn second_key(dir: &Path) -> KeySettings {
    let key_file = dir.join("second.private.pem");
    if !key_file.exists() {
        std::fs::write(&key_file, &SECOND_KEY.private_pem).unwrap();
    }
    KeySettings {
        id: SECOND_KEY_ID.to_owned(),
        private_key_file: Some(key_file),
        private_key: None,
        public_key_file: None,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns an app after `configure` adjusts the default test settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_clock(Clock::system(), configure).await
}

/// A clock for tests that move time: it starts at the present and moves only when told.
pub fn manual_clock() -> Clock {
    Clock::manual(layer_idp::clock::unix_now())
}

/// Spawns an app that reads `clock` for every time-dependent rule.
pub async fn spawn_app_with_clock(clock: Clock, configure: impl FnOnce(&mut Settings)) -> TestApp {
    LazyLock::force(&TRACING);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = test_settings(dir.path());
    let postgres = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let db = PgDatabase::create(&url).await;
            settings.database_url = Some(DatabaseUrl::new(db.url.clone()));
            Some(Arc::new(db))
        }
        _ => None,
    };
    configure(&mut settings);
    start(settings, dir, postgres, clock).await
}

async fn start(
    settings: Settings,
    dir: Arc<tempfile::TempDir>,
    postgres: Option<Arc<PgDatabase>>,
    clock: Clock,
) -> TestApp {
    let listener = TcpListener::bind(settings.listen).unwrap();
    let app = Application::build_with_listener_and_clock(&settings, listener, clock.clone())
        .await
        .expect("the application builds");
    let addr = app.idp_addr();
    let mock_layer_addr = app.mock_layer_addr();
    let metrics_addr = app.metrics_addr();
    let handle = app.handle();
    let store = app.store().clone();
    let hasher = app.password_hasher().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://{addr}"),
        addr,
        mock_layer_addr,
        metrics_addr,
        settings,
        dir,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        store,
        hasher,
        clock,
        handle,
        postgres,
    }
}

impl TestApp {
    /// Stops this app and starts a new one on the same database and key files, with
    /// `configure` applied to the settings (a different listen port).
    pub async fn restart_with(self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        self.handle.stop(true).await;
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().unwrap();
        configure(&mut settings);
        start(
            settings,
            self.dir.clone(),
            self.postgres.clone(),
            self.clock.clone(),
        )
        .await
    }

    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_users(&self, body: &Value) -> reqwest::Response {
        self.post_json("/users", body).await
    }

    /// Signs a user up and returns the created user.
    pub async fn sign_up(&self, email: &str, password: &str) -> Value {
        self.sign_up_with(json!({"email": email, "password": password}))
            .await
    }

    pub async fn sign_up_with(&self, body: Value) -> Value {
        let response = self.post_users(&body).await;
        assert_eq!(response.status(), 201, "sign-up failed");
        response.json().await.unwrap()
    }

    pub async fn post_authenticate(&self, body: &Value) -> reqwest::Response {
        self.post_json("/authenticate", body).await
    }

    /// Logs in with `POST /authenticate` and returns the identity token.
    pub async fn identity_token(&self, email: &str, password: &str, nonce: &str) -> String {
        let response = self
            .post_authenticate(&json!({"email": email, "password": password, "nonce": nonce}))
            .await;
        assert_eq!(response.status(), 200, "authenticate failed");
        let body: Value = response.json().await.unwrap();
        body["identity_token"].as_str().unwrap().to_owned()
    }

    /// Logs in with `POST /sessions` and returns the session token.
    pub async fn session_token(&self, email: &str, password: &str) -> String {
        let response = self
            .post_json("/sessions", &json!({"email": email, "password": password}))
            .await;
        assert_eq!(response.status(), 201, "POST /sessions failed");
        let body: Value = response.json().await.unwrap();
        body["session_token"].as_str().unwrap().to_owned()
    }

    pub async fn post_identity_tokens(&self, session: &str, nonce: &str) -> reqwest::Response {
        self.client
            .post(self.url("/identity_tokens"))
            .bearer_auth(session)
            .json(&json!({"nonce": nonce}))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_me(&self, session: &str) -> reqwest::Response {
        self.client
            .get(self.url("/users/me"))
            .bearer_auth(session)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_me(&self, session: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url("/users/me"))
            .bearer_auth(session)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_jwks(&self) -> Value {
        let response = self.get("/.well-known/jwks.json").await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Creates an admin token directly in the store, as `layer-idp admin-tokens create` does.
    pub async fn admin_token(&self) -> String {
        let (token, hash) = layer_idp::idp::sessions::new_token().unwrap();
        let name = format!("test-{}", uuid::Uuid::new_v4());
        self.store
            .create_admin_token(&name, &hash, layer_idp::clock::unix_now())
            .await
            .unwrap();
        token
    }

    pub fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn user_count(&self) -> i64 {
        self.store.count_users().await.unwrap()
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.settings.keys_dir.clone()
    }
}

/// A PostgreSQL database made for one test app and dropped with it.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> Self {
        use sqlx::Connection;
        let name = format!("layer_idp_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("TEST_DATABASE_URL must point at a reachable PostgreSQL server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&name);
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context we could rely on; use a small runtime on a
        // thread of its own. FORCE ends the app's pooled connections.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Decodes one base64url part of a JWT into JSON.
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("a JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// An error body without its request ID, for comparing bodies across requests.
pub fn without_request_id(mut body: Value) -> Value {
    if let Some(object) = body.as_object_mut() {
        object.remove("request_id");
    }
    body
}
