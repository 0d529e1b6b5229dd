//! The token inspector, `POST /admin/tokens/inspect` and `layer-idp token inspect`: every
//! classic mistake of a Layer identity provider, minted here on purpose (the inspector is the
//! thing under test), is reported with Layer's reason code and its likely cause.

use reqwest::Method;
use serde_json::{Value, json};

use crate::apps::{PRODUCTION, PRODUCTION_PROVIDER, STAGING, two_apps};
use crate::cli::{run, stdout};
use crate::helpers::{
    KEY_ID, PROVIDER_ID, TestApp, manual_clock, sign_with_test_key, spawn_app, spawn_app_with,
    spawn_app_with_clock, test_public_pem, test_settings,
};

const NOW: i64 = 1_700_000_000;

fn header() -> Value {
    json!({"typ": "JWT", "alg": "RS256", "cty": "layer-eit;v=1", "kid": KEY_ID})
}

fn claims() -> Value {
    json!({"iss": PROVIDER_ID, "prn": "user-1", "iat": NOW, "exp": NOW + 600, "nce": "b64+/nonce="})
}

async fn inspect(app: &TestApp, admin: &str, body: &Value) -> (u16, Value) {
    let response = app
        .admin(Method::POST, "/admin/tokens/inspect", admin)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn rule<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == name)
        .unwrap_or_else(|| panic!("no rule {name} in {report:#}"))
}

/// The named rule failed with `code`, and its hint says `cause`.
#[track_caller]
fn assert_fails(report: &Value, name: &str, code: &str, cause: &str) {
    assert_eq!(report["valid"], false, "{report:#}");
    let rule = rule(report, name);
    assert_eq!(rule["ok"], false, "{report:#}");
    assert_eq!(rule["reason_code"], code, "{report:#}");
    let hint = rule["hint"].as_str().unwrap_or_default();
    assert!(hint.contains(cause), "{name}: {hint:?} lacks {cause:?}");
}

#[tokio::test]
async fn a_token_this_provider_signed_passes_every_rule() {
    let app = spawn_app().await;
    app.sign_up("ada@example.com", "correct horse battery")
        .await;
    let token = app
        .identity_token("ada@example.com", "correct horse battery", "abc+/=")
        .await;
    let admin = app.admin_token().await;
    let (status, report) = inspect(&app, &admin, &json!({"token": token})).await;
    assert_eq!(status, 200);
    assert_eq!(report["valid"], true, "{report:#}");
    let names: Vec<&str> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    for name in [
        "structure",
        "alg",
        "typ",
        "cty",
        "kid",
        "key",
        "signature",
        "iss",
        "prn",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(report["provider_id"], PROVIDER_ID);
    assert!(
        !report.to_string().contains(&token),
        "the report repeats the token"
    );
}

#[tokio::test]
async fn each_classic_mistake_is_reported_with_its_reason_and_likely_cause() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let with = |change: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = (header(), claims());
        change(&mut h, &mut c);
        sign_with_test_key(&h, &c, false)
    };
    let cases: Vec<(&str, String, &str, &str, &str)> = vec![
        (
            "PHP sample: iat and exp in milliseconds",
            with(&|_, c| {
                c["iat"] = json!(NOW * 1000);
                c["exp"] = json!(NOW * 1000 + 120);
            }),
            "not_before",
            "eit_not_before",
            "exp is in milliseconds",
        ),
        (
            "Python/.NET samples: iat in local time, two hours ahead of UTC",
            with(&|_, c| c["iat"] = json!(NOW + 2 * 3600)),
            "not_before",
            "eit_not_before",
            "iat is in local time",
        ),
        (
            "iat and exp in local time, five hours behind UTC",
            with(&|_, c| {
                c["iat"] = json!(NOW - 5 * 3600);
                c["exp"] = json!(NOW - 5 * 3600 + 120);
            }),
            "expiry",
            "eit_expired",
            "local time",
        ),
        (
            "the key's file name as kid",
            with(&|h, _| h["kid"] = json!("active")),
            "key",
            "eit_key_malformed",
            "the kid is the key's name, not its ID: put the key ID",
        ),
        (
            "HS256",
            with(&|h, _| h["alg"] = json!("HS256")),
            "alg",
            "eit_header_param_wrong_value",
            "HMAC",
        ),
        (
            "no cty",
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("cty");
            }),
            "cty",
            "eit_header_param_not_found",
            "cty \"layer-eit;v=1\"",
        ),
        (
            "a + in the nonce sent unescaped",
            with(&|_, c| c["nce"] = json!("b64 /nonce=")),
            "nce_format",
            "eit_nonce_not_found",
            "a + in the nonce was sent unescaped",
        ),
        (
            "signed with another key than the kid's",
            sign_with_test_key(&header(), &claims(), true),
            "signature",
            "eit_signature_verification_failed",
            "does not match",
        ),
        (
            "the timestamps are strings",
            with(&|_, c| c["exp"] = json!((NOW + 600).to_string())),
            "exp",
            "eit_claim_wrong_type",
            "not a string",
        ),
    ];
    for (what, token, name, code, cause) in cases {
        let (status, report) = inspect(&app, &admin, &json!({"token": token, "at": NOW})).await;
        assert_eq!(status, 200, "{what}");
        assert_eq!(report["checked_at"], NOW, "{what}");
        assert_fails(&report, name, code, cause);
    }
}

#[tokio::test]
async fn structural_mistakes_and_plain_failures_carry_layers_codes() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let signed = |c: Value| sign_with_test_key(&header(), &c, false);
    let mut expired = claims();
    expired["exp"] = json!(NOW - 1);
    let mut no_prn = claims();
    no_prn.as_object_mut().unwrap().remove("prn");
    let mut other_iss = claims();
    other_iss["iss"] = json!("layer:///providers/00000000-0000-4000-8000-000000000000");
    let none = {
        let token = signed(claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[0] = base64_url(
            &json!({"typ": "JWT", "alg": "none", "cty": "layer-eit;v=1", "kid": KEY_ID}),
        );
        parts[2] = String::new();
        parts.join(".")
    };
    let cases = [
        (signed(expired), "expiry", "eit_expired"),
        (signed(no_prn), "prn", "eit_claim_not_found"),
        (signed(other_iss), "iss", "eit_provider_not_bound_to_app"),
        (
            "abc.def".to_owned(),
            "structure",
            "eit_wrong_jws_part_count",
        ),
        (
            "a+b.e30.c2ln".to_owned(),
            "header",
            "eit_malformed_base64url",
        ),
        (none.clone(), "structure", "eit_wrong_jws_part_count"),
        (none, "alg", "eit_header_param_wrong_value"),
    ];
    for (token, name, code) in cases {
        let (status, report) = inspect(&app, &admin, &json!({"token": token, "at": NOW})).await;
        assert_eq!(status, 200);
        assert_eq!(report["valid"], false, "{report:#}");
        let rule = rule(&report, name);
        assert_eq!(rule["ok"], false, "{report:#}");
        assert_eq!(rule["reason_code"], code, "{report:#}");
    }
}

#[tokio::test]
async fn an_e_mail_address_as_prn_passes_layers_rule_with_a_warning() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut c = claims();
    c["prn"] = json!("ada@example.com");
    let token = sign_with_test_key(&header(), &c, false);
    let (_, report) = inspect(&app, &admin, &json!({"token": token, "at": NOW})).await;
    assert_eq!(report["valid"], true, "{report:#}");
    let prn = rule(&report, "prn");
    assert_eq!(prn["ok"], true);
    assert!(
        prn["hint"]
            .as_str()
            .unwrap()
            .contains("prn is an e-mail address: use a stable ID")
    );
}

#[tokio::test]
async fn the_staging_key_in_a_production_token_is_named() {
    let app = spawn_app_with(two_apps).await;
    let admin = app.admin_token().await;
    // Signed with the staging app's key, for the production provider.
    let mut c = claims();
    c["iss"] = json!(PRODUCTION_PROVIDER);
    let token = sign_with_test_key(&header(), &c, false);
    let (_, report) = inspect(&app, &admin, &json!({"token": token, "at": NOW})).await;
    assert_fails(
        &report,
        "key",
        "eit_key_not_found",
        "the kid belongs to the staging app",
    );
    assert_eq!(report["app_id"], PRODUCTION);
    // Told the app explicitly, the same.
    let (_, report) = inspect(
        &app,
        &admin,
        &json!({"token": token, "at": NOW, "app_id": PRODUCTION}),
    )
    .await;
    assert_fails(
        &report,
        "key",
        "eit_key_not_found",
        "the kid belongs to the staging app",
    );
    // For the staging app the key is right, and iss is the mistake.
    let (_, report) = inspect(
        &app,
        &admin,
        &json!({"token": token, "at": NOW, "app_id": STAGING}),
    )
    .await;
    assert_eq!(rule(&report, "key")["ok"], true, "{report:#}");
    assert_eq!(
        rule(&report, "iss")["reason_code"],
        "eit_provider_not_bound_to_app"
    );
}

#[tokio::test]
async fn a_jwks_url_or_a_public_key_can_stand_for_the_keys() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = sign_with_test_key(&header(), &claims(), false);
    let forged = sign_with_test_key(&header(), &claims(), true);
    let jwks = app.url("/.well-known/jwks.json");
    let pem = test_public_pem();
    for source in [json!({"jwks_url": jwks}), json!({"public_key": pem})] {
        let mut body = source.clone();
        body["at"] = json!(NOW);
        body["provider_id"] = json!(PROVIDER_ID);
        body["token"] = json!(good);
        let (status, report) = inspect(&app, &admin, &body).await;
        assert_eq!(status, 200);
        assert_eq!(report["valid"], true, "{source}: {report:#}");
        body["token"] = json!(forged);
        let (_, report) = inspect(&app, &admin, &body).await;
        assert_eq!(
            rule(&report, "signature")["reason_code"],
            "eit_signature_verification_failed",
            "{source}"
        );
    }
}

#[tokio::test]
async fn without_at_the_applications_clock_decides_expiry() {
    let clock = manual_clock();
    let app = spawn_app_with_clock(clock.clone(), |_| {}).await;
    let admin = app.admin_token().await;
    let now = clock.now();
    let mut c = claims();
    c["iat"] = json!(now);
    c["exp"] = json!(now + 120);
    let token = sign_with_test_key(&header(), &c, false);
    let (_, report) = inspect(&app, &admin, &json!({"token": token})).await;
    assert_eq!(report["valid"], true, "{report:#}");
    clock.advance(121);
    let (_, report) = inspect(&app, &admin, &json!({"token": token})).await;
    assert_eq!(rule(&report, "expiry")["reason_code"], "eit_expired");
}

#[tokio::test]
async fn the_endpoint_needs_an_admin_token_and_refuses_bad_input() {
    let app = spawn_app().await;
    let token = sign_with_test_key(&header(), &claims(), false);
    let response = app
        .client
        .post(app.url("/admin/tokens/inspect"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    app.sign_up("ada@example.com", "correct horse battery")
        .await;
    let session = app
        .session_token("ada@example.com", "correct horse battery")
        .await;
    let (status, _) = inspect(&app, &session, &json!({"token": token})).await;
    assert_eq!(status, 401, "a session token is not an admin token");

    let admin = app.admin_token().await;
    let bad = [
        json!({}),
        json!({"token": 5}),
        json!({"token": token, "unknown": 1}),
        json!({"token": token, "jwks_url": "http://127.0.0.1:9/", "public_key": "x"}),
        json!({"token": token, "public_key": "not a pem"}),
        json!({"token": token, "jwks_url": "ftp://example.invalid/jwks"}),
        json!({"token": token, "jwks_url": "http://127.0.0.1:9/jwks.json"}),
        json!({"token": token, "app_id": "layer:///apps/nowhere/1"}),
    ];
    for body in bad {
        let (status, error) = inspect(&app, &admin, &body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"], "invalid_request", "{body}: {error}");
        assert!(error["error_description"].is_string());
    }
    let response = app
        .admin(Method::POST, "/admin/tokens/inspect", &admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

fn base64_url(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn the_command_reports_rule_by_rule_and_exits_non_zero_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.public.pem");
    std::fs::write(&key_file, test_public_pem()).unwrap();
    let key = key_file.to_str().unwrap();
    let at = NOW.to_string();
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "token",
            "inspect",
            "--key",
            key,
            "--provider-id",
            PROVIDER_ID,
            "--at",
            &at,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let good = sign_with_test_key(&header(), &claims(), false);
    let argv = args(&["-"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let output = run(dir.path(), &argv, Some(&format!("{good}\n")));
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).contains("valid: every rule passed"),
        "{}",
        stdout(&output)
    );

    let mut c = claims();
    c["iat"] = json!(NOW * 1000);
    c["exp"] = json!(NOW * 1000 + 120);
    let millis = sign_with_test_key(&header(), &c, false);
    let mut argv = args(&[]);
    argv.push(millis.clone());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let output = run(dir.path(), &argv, None);
    assert!(!output.status.success());
    let text = stdout(&output);
    assert!(text.contains("FAIL not_before"), "{text}");
    assert!(text.contains("[eit_not_before]"), "{text}");
    assert!(
        text.contains("likely cause: iat and exp are in milliseconds"),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("fails 1 rule"), "{stderr}");
    assert!(
        !stderr.contains(&millis) && !text.contains(&millis),
        "the token is echoed"
    );

    let argv = args(&["--json"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let output = run(dir.path(), &argv, Some(&millis));
    assert!(!output.status.success());
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(rule(&report, "not_before")["reason_code"], "eit_not_before");
    assert_eq!(rule(&report, "signature")["ok"], true);
}

// Several threads: the server answers the binary's fetch while this test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_checks_against_a_running_providers_jwks() {
    let app = spawn_app_with(two_apps).await;
    let dir = tempfile::tempdir().unwrap();
    let jwks = app.url("/.well-known/jwks.json");
    let mut c = claims();
    c["iss"] = json!(PRODUCTION_PROVIDER);
    let token = sign_with_test_key(&header(), &c, false);
    let at = NOW.to_string();
    let output = run(
        dir.path(),
        &[
            "token",
            "inspect",
            "--jwks-url",
            &jwks,
            "--at",
            &at,
            "--json",
            &token,
        ],
        None,
    );
    assert!(!output.status.success());
    let report: Value = serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_fails(
        &report,
        "key",
        "eit_key_not_found",
        "the kid belongs to the staging app",
    );
}

#[test]
fn the_command_checks_against_this_providers_own_keys_by_default() {
    let dir = tempfile::tempdir().unwrap();
    // Writes the test key to active.private.pem, the name a developer might put in kid.
    test_settings(dir.path());
    // Private, as a key should be (a wider one draws a warning in the log).
    use std::os::unix::fs::PermissionsExt;
    let key = dir.path().join("active.private.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("layer-idp.toml");
    std::fs::write(
        &config,
        format!(
            "provider_id = \"{PROVIDER_ID}\"\n\n[[signing.keys]]\nid = \"{KEY_ID}\"\n\
             private_key_file = \"{}\"\n",
            dir.path().join("active.private.pem").display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let at = NOW.to_string();
    let good = sign_with_test_key(&header(), &claims(), false);
    let output = run(
        dir.path(),
        &["--config", config, "token", "inspect", "--at", &at, &good],
        None,
    );
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).contains("against this layer-idp, provider"));

    let mut named = header();
    named["kid"] = json!("active");
    let token = sign_with_test_key(&named, &claims(), false);
    let output = run(
        dir.path(),
        &[
            "--config", config, "token", "inspect", "--at", &at, "--json", "-",
        ],
        Some(&token),
    );
    assert!(!output.status.success());
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_fails(
        &report,
        "key",
        "eit_key_malformed",
        &format!("the kid is the key's name, not its ID: put the key ID {KEY_ID} in kid"),
    );
}
