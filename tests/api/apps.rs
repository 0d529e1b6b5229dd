//! Staging and production apps at one identity provider: each token is signed with the key
//! of the app that asked and carries that app's provider ID, and an app ID that is missing,
//! unknown or a near miss of a configured one gets a 422 that says which.

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{
    KEY_ID, PROVIDER_ID, SECOND_KEY_ID, TestApp, jwt_part, second_key, spawn_app, spawn_app_with,
    without_request_id,
};
use crate::tokens::{jwk_for, openssl_verifies};
use layer_idp::config::{AppSettings, Settings};

pub const STAGING: &str = "layer:///apps/staging/0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f3a1";
pub const PRODUCTION: &str = "layer:///apps/production/3c71a0e2-8d4b-4f6a-9e15-b27c4d9a60f8";
pub const STAGING_PROVIDER: &str = "layer:///providers/11111111-1111-4111-8111-111111111111";
pub const PRODUCTION_PROVIDER: &str = "layer:///providers/22222222-2222-4222-8222-222222222222";
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";

/// Staging signs with the test key, production with the second one.
pub fn two_apps(settings: &mut Settings) {
    let staging_key = settings.signing.keys.remove(0);
    let production_key = second_key(settings.data_dir.parent().unwrap());
    settings.provider_id = None;
    settings.apps = vec![
        AppSettings {
            app_id: STAGING.to_owned(),
            provider_id: STAGING_PROVIDER.to_owned(),
            active_key_id: None,
            keys: vec![staging_key],
            token_lifetime_secs: None,
        },
        AppSettings {
            app_id: PRODUCTION.to_owned(),
            provider_id: PRODUCTION_PROVIDER.to_owned(),
            active_key_id: Some(SECOND_KEY_ID.to_owned()),
            keys: vec![production_key],
            token_lifetime_secs: Some(60),
        },
    ];
}

async fn spawn_two_apps() -> TestApp {
    let app = spawn_app_with(two_apps).await;
    app.sign_up(EMAIL, PASSWORD).await;
    app
}

async fn authenticate(app: &TestApp, app_id: Option<&str>, nonce: &str) -> Response {
    let mut body = json!({"email": EMAIL, "password": PASSWORD, "nonce": nonce});
    if let Some(app_id) = app_id {
        body["app_id"] = json!(app_id);
    }
    app.post_authenticate(&body).await
}

async fn token_of(response: Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["identity_token"].as_str().unwrap().to_owned()
}

/// The 422 for `app_id`, its description.
async fn app_id_refusal(response: Response) -> String {
    assert_eq!(response.status(), 422);
    let body = without_request_id(response.json().await.unwrap());
    assert_eq!(body["error"], "invalid_value", "{body}");
    assert_eq!(body["field"], "app_id", "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_app_token_is_signed_with_its_own_key_and_names_its_own_provider() {
    let app = spawn_two_apps().await;
    let jwks = app.get_jwks().await;
    let staging_jwk = jwk_for(&jwks, KEY_ID);
    let production_jwk = jwk_for(&jwks, SECOND_KEY_ID);
    // The JWKS says which app each key signs for.
    assert_eq!(staging_jwk["layer_app_id"], STAGING);
    assert_eq!(staging_jwk["layer_provider_id"], STAGING_PROVIDER);
    assert_eq!(production_jwk["layer_app_id"], PRODUCTION);

    let staging = token_of(authenticate(&app, Some(STAGING), "nonce-staging").await).await;
    assert_eq!(jwt_part(&staging, 0)["kid"], KEY_ID);
    let claims = jwt_part(&staging, 1);
    assert_eq!(claims["iss"], STAGING_PROVIDER);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    assert!(openssl_verifies(&staging, staging_jwk));
    assert!(!openssl_verifies(&staging, production_jwk));

    // The other endpoint, with a session, for the other app.
    let session = app.session_token(EMAIL, PASSWORD).await;
    let response = app
        .client
        .post(app.url("/identity_tokens"))
        .bearer_auth(&session)
        .json(&json!({"nonce": "nonce-production", "app_id": PRODUCTION}))
        .send()
        .await
        .unwrap();
    let production = token_of(response).await;
    assert_eq!(jwt_part(&production, 0)["kid"], SECOND_KEY_ID);
    let claims = jwt_part(&production, 1);
    assert_eq!(claims["iss"], PRODUCTION_PROVIDER);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    assert!(openssl_verifies(&production, production_jwk));
    assert!(!openssl_verifies(&production, staging_jwk));
}

#[tokio::test]
async fn with_several_apps_the_app_id_is_required() {
    let app = spawn_two_apps().await;
    let description = app_id_refusal(authenticate(&app, None, "n1").await).await;
    assert!(description.contains("is required"), "{description}");
    assert!(description.contains(STAGING), "{description}");
    assert!(description.contains(PRODUCTION), "{description}");

    let session = app.session_token(EMAIL, PASSWORD).await;
    let description = app_id_refusal(app.post_identity_tokens(&session, "n2").await).await;
    assert!(description.contains("is required"), "{description}");
}

#[tokio::test]
async fn an_unknown_app_id_names_the_configured_apps_and_the_likely_mix_up() {
    let app = spawn_two_apps().await;
    // Unrelated: only the list.
    let unrelated = "layer:///apps/production/99999999-aaaa-4bbb-8ccc-dddddddddddd";
    let description = app_id_refusal(authenticate(&app, Some(unrelated), "n1").await).await;
    assert!(description.contains(unrelated), "{description}");
    assert!(
        description.ends_with(&format!("Configured apps: {STAGING}, {PRODUCTION}")),
        "{description}"
    );
    assert!(!description.contains("differs"), "{description}");

    // The staging UUID with three characters changed, presented as production.
    let near = "layer:///apps/production/0f0cf8b4-5f5e-4d8e-a1c4-79c5bbd5f9b2";
    let description = app_id_refusal(authenticate(&app, Some(near), "n2").await).await;
    assert!(
        description.contains(&format!(
            "this is not the production app: it differs from the staging app {STAGING} in 3 \
             characters"
        )),
        "{description}"
    );

    // The staging UUID under production.
    let twin = STAGING.replace("staging", "production");
    let description = app_id_refusal(authenticate(&app, Some(&twin), "n3").await).await;
    assert!(
        description.contains(&format!(
            "this is not the production app: it is the staging app {STAGING} under the other \
             environment"
        )),
        "{description}"
    );

    // Not an app ID at all.
    let description =
        app_id_refusal(authenticate(&app, Some("layer:///apps/dev/x"), "n4").await).await;
    assert!(description.contains("app_id"), "{description}");

    // None of the refusals signed anything: the nonce is still free.
    token_of(authenticate(&app, Some(STAGING), "n2").await).await;
}

#[tokio::test]
async fn the_bare_uuid_and_the_nested_form_field_name_an_app_too() {
    let app = spawn_two_apps().await;
    let bare = PRODUCTION.rsplit('/').next().unwrap().to_uppercase();
    let token = token_of(authenticate(&app, Some(&bare), "n1").await).await;
    assert_eq!(jwt_part(&token, 1)["iss"], PRODUCTION_PROVIDER);

    let form = format!(
        "user%5Bemail%5D={}&user%5Bpassword%5D={}&user%5Bapp_id%5D={}&nonce=n2",
        urlencoding(EMAIL),
        urlencoding(PASSWORD),
        urlencoding(STAGING)
    );
    let token = token_of(app.post_form("/authenticate", &form).await).await;
    assert_eq!(jwt_part(&token, 1)["iss"], STAGING_PROVIDER);

    let form = format!(
        "email={}&password={}&app_id={}&nonce=n3",
        urlencoding(EMAIL),
        urlencoding(PASSWORD),
        urlencoding(PRODUCTION)
    );
    let token = token_of(app.post_form("/authenticate", &form).await).await;
    assert_eq!(jwt_part(&token, 1)["iss"], PRODUCTION_PROVIDER);
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_single_app_settings_sign_for_whatever_app_asks_as_before() {
    let app = spawn_app().await;
    app.sign_up(EMAIL, PASSWORD).await;
    for (nonce, app_id) in [
        ("n1", None),
        ("n2", Some(STAGING)),
        ("n3", Some(PRODUCTION)),
    ] {
        let token = token_of(authenticate(&app, app_id, nonce).await).await;
        assert_eq!(jwt_part(&token, 0)["kid"], KEY_ID);
        assert_eq!(jwt_part(&token, 1)["iss"], PROVIDER_ID);
    }
    let jwks = app.get_jwks().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert!(jwk_for(&jwks, KEY_ID).get("layer_app_id").is_none());
}

#[tokio::test]
async fn one_configured_app_makes_the_app_id_optional_but_still_checked() {
    let app = spawn_app_with(|settings| {
        two_apps(settings);
        settings.apps.truncate(1);
    })
    .await;
    app.sign_up(EMAIL, PASSWORD).await;
    let token = token_of(authenticate(&app, None, "n1").await).await;
    assert_eq!(jwt_part(&token, 1)["iss"], STAGING_PROVIDER);
    let description = app_id_refusal(authenticate(&app, Some(PRODUCTION), "n2").await).await;
    assert!(
        description.contains(&format!("Configured apps: {STAGING}")),
        "{description}"
    );
}

/// `keys list` shows the keys app by app; `token mint --app-id` signs for the app named.
#[test]
fn the_command_line_lists_keys_per_app_and_mints_for_the_app_named() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    for name in ["staging", "production"] {
        let key = layer_idp::idp::keys::generate_key().unwrap();
        layer_idp::idp::keys::write_private_file(
            &dir.path().join(format!("{name}.pem")),
            &key.private_pem,
        )
        .unwrap();
    }
    let config = format!(
        "[[apps]]\napp_id = \"{STAGING}\"\nprovider_id = \"{STAGING_PROVIDER}\"\n\
         [[apps.keys]]\nid = \"{KEY_ID}\"\nprivate_key_file = \"staging.pem\"\n\
         [[apps]]\napp_id = \"{PRODUCTION}\"\nprovider_id = \"{PRODUCTION_PROVIDER}\"\n\
         [[apps.keys]]\nid = \"{SECOND_KEY_ID}\"\nprivate_key_file = \"production.pem\"\n\
         [passwords]\nargon2_memory_kib = 256\nargon2_iterations = 1\n"
    );
    std::fs::write(dir.path().join("layer-idp.toml"), config).unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_layer-idp"))
            .current_dir(dir.path())
            .args(["--config", "layer-idp.toml"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };

    let (ok, listed, err) = run(&["keys", "list"], "");
    assert!(ok, "{err}");
    let staging_at = listed
        .find(&format!(
            "app_id: {STAGING}\nprovider_id: {STAGING_PROVIDER}\n{KEY_ID}\tactive\t"
        ))
        .unwrap_or_else(|| panic!("{listed}"));
    let production_at = listed
        .find(&format!(
            "app_id: {PRODUCTION}\nprovider_id: {PRODUCTION_PROVIDER}\n{SECOND_KEY_ID}\tactive\t"
        ))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(staging_at < production_at, "{listed}");

    let (ok, _, err) = run(
        &["users", "add", "--email", EMAIL, "--id", "cli-user"],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{err}");
    let mint = |nonce: &str, app_id: Option<&str>| {
        let mut args = vec!["token", "mint", "--user-id", "cli-user", "--nonce", nonce];
        if let Some(app_id) = app_id {
            args.extend(["--app-id", app_id]);
        }
        run(&args, "")
    };
    let (ok, _, err) = mint("n1", None);
    assert!(!ok);
    assert!(err.contains("--app-id is required"), "{err}");
    let bare = PRODUCTION.rsplit('/').next().unwrap();
    let (ok, token, err) = mint("n2", Some(bare));
    assert!(ok, "{err}");
    assert_eq!(jwt_part(token.trim(), 1)["iss"], PRODUCTION_PROVIDER);
    assert_eq!(jwt_part(token.trim(), 0)["kid"], SECOND_KEY_ID);
}

/// A nonce from the emulator at `url`.
async fn emulator_nonce(http: &reqwest::Client, url: &str) -> String {
    let body: Value = http
        .post(format!("{url}/nonces"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["nonce"].as_str().unwrap().to_owned()
}

/// `POST /sessions` at the emulator: the token presented for `app_id`.
async fn emulator_session(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    app_id: &str,
) -> Response {
    http.post(format!("{url}/sessions"))
        .json(&json!({"identity_token": token, "app_id": app_id}))
        .send()
        .await
        .unwrap()
}

/// The emulator's refusal of a token: Layer's 422 on `identity_token`, its message.
async fn emulator_refusal(response: Response) -> String {
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "invalid_property", "{body}");
    assert_eq!(body["data"]["property"], "identity_token", "{body}");
    body["message"].as_str().unwrap().to_owned()
}

/// A real login at the identity provider for `app_id`, answering a nonce of the emulator.
async fn login_for(app: &TestApp, emulator: &str, app_id: &str) -> String {
    let nonce = emulator_nonce(&app.client, emulator).await;
    token_of(authenticate(app, Some(app_id), &nonce).await).await
}

#[tokio::test]
async fn with_no_keys_and_several_emulator_apps_each_app_gets_its_own_key_and_provider() {
    use layer_idp::config::MockLayerSettings;
    let app = spawn_app_with(|settings| {
        settings.provider_id = None;
        settings.signing.keys.clear();
        settings.mock_layer = MockLayerSettings {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            app_ids: vec![STAGING.parse().unwrap(), PRODUCTION.parse().unwrap()],
            ..MockLayerSettings::default()
        };
    })
    .await;
    app.sign_up(EMAIL, PASSWORD).await;
    let emulator = format!("http://{}", app.mock_layer_addr.unwrap());

    // Two development keys, each published with its app and persisted in a folder of its own.
    let jwks = app.get_jwks().await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{jwks}");
    let providers: Vec<&Value> = keys.iter().map(|k| &k["layer_provider_id"]).collect();
    assert_ne!(providers[0], providers[1], "one provider per app");
    for (key, app_id) in keys.iter().zip([STAGING, PRODUCTION]) {
        assert_eq!(key["layer_app_id"], app_id);
        let (_, uuid) = app_id.rsplit_once('/').unwrap();
        let env = if app_id.contains("staging") {
            "staging"
        } else {
            "production"
        };
        let ids = app
            .keys_dir()
            .join(format!("{env}-{uuid}/development.json"));
        let ids: Value = serde_json::from_slice(&std::fs::read(&ids).unwrap()).unwrap();
        assert_eq!(ids["key_id"], key["kid"]);
    }

    // Each app's token opens a session in its own app…
    let staging = login_for(&app, &emulator, STAGING).await;
    assert_eq!(
        emulator_session(&app.client, &emulator, &staging, STAGING)
            .await
            .status(),
        201
    );
    let production = login_for(&app, &emulator, PRODUCTION).await;
    assert_eq!(
        emulator_session(&app.client, &emulator, &production, PRODUCTION)
            .await
            .status(),
        201
    );
    // …and a staging token handed to the production app is the classic mix-up, named.
    let staging = login_for(&app, &emulator, STAGING).await;
    let message =
        emulator_refusal(emulator_session(&app.client, &emulator, &staging, PRODUCTION).await)
            .await;
    assert!(message.contains(STAGING), "{message}");
    assert!(message.contains(PRODUCTION), "{message}");
    assert!(message.contains("mix-up"), "{message}");

    // The identity provider knows the apps too: a near miss is named before any token exists.
    let near = "layer:///apps/production/3c71a0e2-8d4b-4f6a-9e15-b27c4d9a6aaa";
    let description = app_id_refusal(authenticate(&app, Some(near), "n-near").await).await;
    assert!(
        description.contains(&format!(
            "this is not the production app: it differs from the production app {PRODUCTION} \
             in 3 characters"
        )),
        "{description}"
    );

    // The development keys are kept: a restart signs with the same ones.
    let app = app.restart().await;
    assert_eq!(app.get_jwks().await, jwks);
}

#[tokio::test]
async fn alone_with_a_jwks_url_the_emulator_learns_each_key_s_app_and_provider() {
    use layer_idp::config::MockLayerSettings;
    let app = spawn_two_apps().await;
    let settings = MockLayerSettings {
        app_ids: vec![STAGING.parse().unwrap(), PRODUCTION.parse().unwrap()],
        jwks_url: Some(app.url("/.well-known/jwks.json")),
        ..MockLayerSettings::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let running = layer_idp::mock_layer::start(&settings, None, listener, 1)
        .await
        .unwrap();
    let emulator = format!("http://{}", running.addr);
    tokio::spawn(running.server);

    let apps: Value = app
        .client
        .get(format!("{emulator}/_mock/apps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps["app_providers"][STAGING], STAGING_PROVIDER, "{apps}");
    assert_eq!(
        apps["app_providers"][PRODUCTION], PRODUCTION_PROVIDER,
        "{apps}"
    );

    for app_id in [STAGING, PRODUCTION] {
        let token = login_for(&app, &emulator, app_id).await;
        assert_eq!(
            emulator_session(&app.client, &emulator, &token, app_id)
                .await
                .status(),
            201,
            "{app_id}"
        );
    }
    let production = login_for(&app, &emulator, PRODUCTION).await;
    let message =
        emulator_refusal(emulator_session(&app.client, &emulator, &production, STAGING).await)
            .await;
    assert!(message.contains(STAGING), "{message}");
    assert!(message.contains(PRODUCTION), "{message}");
}

#[tokio::test]
async fn alone_an_app_s_own_provider_can_be_given_by_flag() {
    // Without a JWKS: the keys by file, their apps and providers by the explicit settings.
    use layer_idp::config::{MockLayerKeySettings, MockLayerSettings};
    let app = spawn_two_apps().await;
    let dir = tempfile::tempdir().unwrap();
    let jwks = app.get_jwks().await;
    let mut keys = Vec::new();
    for kid in [KEY_ID, SECOND_KEY_ID] {
        let pem = crate::tokens::openssl_public_key(jwk_for(&jwks, kid), dir.path());
        let file = dir.path().join(format!("{}.pem", keys.len()));
        std::fs::rename(pem, &file).unwrap();
        keys.push(MockLayerKeySettings {
            id: kid.to_owned(),
            public_key_file: file,
        });
    }
    let staging = STAGING.parse().unwrap();
    let production = PRODUCTION.parse().unwrap();
    let mut settings = MockLayerSettings {
        app_ids: vec![staging, production],
        provider_id: Some(STAGING_PROVIDER.to_owned()),
        keys,
        ..MockLayerSettings::default()
    };
    settings
        .app_keys
        .insert(production, vec![SECOND_KEY_ID.to_owned()]);
    settings.app_keys.insert(staging, vec![KEY_ID.to_owned()]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let without_provider = layer_idp::mock_layer::start(&settings, None, listener, 1)
        .await
        .unwrap();
    let emulator = format!("http://{}", without_provider.addr);
    tokio::spawn(without_provider.server);
    // Production's tokens name production's provider, which this emulator was not told.
    let token = login_for(&app, &emulator, PRODUCTION).await;
    let message =
        emulator_refusal(emulator_session(&app.client, &emulator, &token, PRODUCTION).await).await;
    assert!(message.contains(PRODUCTION_PROVIDER), "{message}");

    settings
        .app_providers
        .insert(production, PRODUCTION_PROVIDER.to_owned());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let running = layer_idp::mock_layer::start(&settings, None, listener, 1)
        .await
        .unwrap();
    let emulator = format!("http://{}", running.addr);
    tokio::spawn(running.server);
    for app_id in [STAGING, PRODUCTION] {
        let token = login_for(&app, &emulator, app_id).await;
        assert_eq!(
            emulator_session(&app.client, &emulator, &token, app_id)
                .await
                .status(),
            201,
            "{app_id}"
        );
    }
}

#[tokio::test]
async fn alone_with_a_single_app_idp_s_jwks_the_provider_id_is_learned_too() {
    use layer_idp::config::MockLayerSettings;
    let app = spawn_app().await;
    app.sign_up(EMAIL, PASSWORD).await;
    let settings = MockLayerSettings {
        app_ids: vec![STAGING.parse().unwrap()],
        jwks_url: Some(app.url("/.well-known/jwks.json")),
        ..MockLayerSettings::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let running = layer_idp::mock_layer::start(&settings, None, listener, 1)
        .await
        .unwrap();
    let emulator = format!("http://{}", running.addr);
    tokio::spawn(running.server);
    let apps: Value = app
        .client
        .get(format!("{emulator}/_mock/apps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps["provider_id"], PROVIDER_ID, "{apps}");
    let token = login_for(&app, &emulator, STAGING).await;
    assert_eq!(
        emulator_session(&app.client, &emulator, &token, STAGING)
            .await
            .status(),
        201
    );
}
