//! `layer-idp users import`: users from another system with their hashes, logging in and being
//! upgraded to argon2id; idempotent re-runs; refused lines changing nothing.

use serde_json::{Value, json};

use layer_idp::idp::import::{self, Summary};
use layer_idp::idp::password::PasswordHasher;

use crate::helpers::{TestApp, spawn_app};

fn fixtures() -> (String, Vec<(String, String)>) {
    let all: Value = serde_json::from_str(include_str!("../fixtures/legacy_hashes.json")).unwrap();
    let hashes = all["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["scheme"].as_str().unwrap().to_owned(),
                h["hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (all["password"].as_str().unwrap().to_owned(), hashes)
}

/// Imports `input`, returning the summary and the refused lines with their reasons.
async fn run_import(app: &TestApp, input: &str) -> (Summary, Vec<(u64, String)>) {
    let hasher = PasswordHasher::new(&app.settings.passwords).unwrap();
    let mut refused = Vec::new();
    let summary = import::import(
        app.store.as_ref(),
        &hasher,
        input.as_bytes(),
        |line, reason| refused.push((line, reason.to_owned())),
        |_, _| {},
    )
    .await
    .unwrap();
    (summary, refused)
}

fn line(id: &str, email: &str, hash: &str) -> String {
    json!({"id": id, "email": email, "password_hash": hash, "display_name": id}).to_string()
}

async fn stored_hash(app: &TestApp, id: &str) -> String {
    app.store
        .find_login_by_id(id)
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

#[tokio::test]
async fn imported_users_log_in_with_their_old_hash_and_are_upgraded_to_argon2id() {
    let app = spawn_app().await;
    let (password, hashes) = fixtures();
    // Every scheme except argon2 (whose fixtures use more memory than the test settings).
    let legacy: Vec<_> = hashes
        .iter()
        .filter(|(_, h)| !h.starts_with("$argon2"))
        .collect();
    let input: String = legacy
        .iter()
        .enumerate()
        .map(|(i, (_, hash))| {
            line(&format!("legacy-{i}"), &format!("u{i}@example.com"), hash) + "\n"
        })
        .collect();
    let (summary, refused) = run_import(&app, &input).await;
    assert_eq!(refused, vec![]);
    assert_eq!(summary.created, legacy.len() as u64);
    for (i, (scheme, hash)) in legacy.iter().enumerate() {
        let id = format!("legacy-{i}");
        let email = format!("u{i}@example.com");
        assert_eq!(
            &stored_hash(&app, &id).await,
            hash,
            "{scheme}: stored as given"
        );
        let wrong = app
            .post_json(
                "/sessions",
                &json!({"email": email, "password": "not the password"}),
            )
            .await;
        assert_eq!(wrong.status(), 401, "{scheme}");
        assert_eq!(
            &stored_hash(&app, &id).await,
            hash,
            "{scheme}: a failure changes nothing"
        );
        app.session_token(&email, &password).await;
        let upgraded = stored_hash(&app, &id).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
            "{scheme}: {upgraded}"
        );
        // And the new hash takes the same password.
        app.session_token(&email, &password).await;
    }
}

#[tokio::test]
async fn a_rerun_skips_what_is_there_and_bad_lines_are_reported_without_stopping_the_rest() {
    let app = spawn_app().await;
    let (_, hashes) = fixtures();
    let bcrypt = &hashes[0].1;
    let first = [
        line("a", "a@example.com", bcrypt),
        line("b", "b@example.com", bcrypt),
    ]
    .join("\n");
    let (summary, refused) = run_import(&app, &first).await;
    assert_eq!(
        (summary.created, summary.skipped, summary.refused),
        (2, 0, 0)
    );
    assert!(refused.is_empty());

    let oversized = json!({"id": "big", "email": "big@example.com", "password_hash": bcrypt,
                           "display_name": "x".repeat(import::MAX_LINE_BYTES)})
    .to_string();
    let second = [
        line("a", "a@example.com", bcrypt),     // 1: skipped
        line("a", "other@example.com", bcrypt), // 2: ID taken
        line("c", "B@example.com", bcrypt),     // 3: e-mail taken
        line(
            "d",
            "d@example.com",
            "$2b$31$4sUynEODO0cYEmODNFgyQ.zaqQ2oQGSETwwe7OQiXI4EHOLqt11VG",
        ), // 4
        line("e", "e@example.com", "md5$x$0123456789abcdef"), // 5: unsupported
        oversized,                              // 6
        "{not json".to_owned(),                 // 7
        json!({"id": "f", "email": "f@example.com"}).to_string(), // 8: no password
        line("g", "not an address", bcrypt),    // 9
        line("h", "h@example.com", bcrypt),     // 10: created
    ]
    .join("\n");
    let before = app.user_count().await;
    let (summary, refused) = run_import(&app, &second).await;
    let lines: Vec<u64> = refused.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![4, 5, 6, 7, 8, 9, 2, 3], "{refused:?}");
    assert_eq!(
        (
            summary.lines,
            summary.created,
            summary.skipped,
            summary.refused
        ),
        (10, 1, 1, 8)
    );
    assert!(
        refused
            .iter()
            .any(|(l, r)| *l == 4 && r.contains("cost 31")),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|(l, r)| *l == 6 && r.contains("bytes")),
        "{refused:?}"
    );
    assert_eq!(app.user_count().await, before + 1);
    assert_eq!(
        app.store.find_user("a").await.unwrap().unwrap().email,
        "a@example.com"
    );
}

#[tokio::test]
async fn a_deleted_accounts_id_is_never_given_to_anyone_else() {
    let app = spawn_app().await;
    let (_, hashes) = fixtures();
    let (summary, _) = run_import(&app, &line("gone", "gone@example.com", &hashes[0].1)).await;
    assert_eq!(summary.created, 1);
    assert!(app.store.delete_user("gone").await.unwrap());
    let (summary, refused) =
        run_import(&app, &line("gone", "someone@example.com", &hashes[0].1)).await;
    assert_eq!(summary.refused, 1);
    assert_eq!(refused[0].1, "the ID belonged to a deleted account");
    let admin = app.admin_token().await;
    let response = app
        .admin(reqwest::Method::POST, "/admin/users", &admin)
        .json(&json!({"id": "gone", "email": "someone@example.com", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "id_taken");
    assert!(app.store.find_user("gone").await.unwrap().is_none());
}

#[tokio::test]
async fn admin_create_takes_a_password_hash_and_refuses_a_bad_one_changing_nothing() {
    let app = spawn_app().await;
    let (password, hashes) = fixtures();
    let django = &hashes
        .iter()
        .find(|(s, _)| s.starts_with("Django pbkdf2_sha1"))
        .unwrap()
        .1;
    let admin = app.admin_token().await;
    let create = |body: Value| {
        app.admin(reqwest::Method::POST, "/admin/users", &admin)
            .json(&body)
            .send()
    };
    let before = app.user_count().await;
    for bad in [
        json!({"email": "x@example.com", "password_hash": "$2b$31$4sUynEODO0cYEmODNFgyQ.zaqQ2oQGSETwwe7OQiXI4EHOLqt11VG"}),
        json!({"email": "x@example.com", "password_hash": "sha1$salt$abcdef"}),
        json!({"email": "x@example.com", "password_hash": django, "password": "a long password"}),
        json!({"email": "x@example.com"}),
    ] {
        let response = create(bad.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{bad}");
        assert!(body["request_id"].is_string());
    }
    assert_eq!(app.user_count().await, before);

    let response = create(json!({"id": "dj", "email": "dj@example.com", "password_hash": django}))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(&stored_hash(&app, "dj").await, django);
    app.session_token("dj@example.com", &password).await;
    assert!(stored_hash(&app, "dj").await.starts_with("$argon2id$"));
}
