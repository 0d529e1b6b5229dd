//! The admin API: every route needs an admin token; users can be imported with their IDs,
//! listed, disabled, enabled and deleted.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{jwt_part, spawn_app};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_unknown_token() {
    let app = spawn_app().await;
    let user = app.sign_up("victim@example.com", PASSWORD).await;
    let id = user["id"].as_str().unwrap();
    let routes = [
        (Method::GET, "/admin/users".to_owned()),
        (Method::POST, "/admin/users".to_owned()),
        (Method::GET, format!("/admin/users/{id}")),
        (Method::DELETE, format!("/admin/users/{id}")),
        (Method::POST, format!("/admin/users/{id}/disable")),
        (Method::POST, format!("/admin/users/{id}/enable")),
    ];
    // A user's session token is not an admin token either.
    let session = app.session_token("victim@example.com", PASSWORD).await;
    for (method, path) in routes {
        let response = app
            .client
            .request(method.clone(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        for token in ["not-a-token", session.as_str()] {
            let response = app
                .admin(method.clone(), &path, token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_token");
        }
    }
    assert_eq!(app.user_count().await, 1);
    assert!(
        app.store
            .find_user(id)
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_none()
    );
}

#[tokio::test]
async fn an_imported_user_keeps_the_id_layer_already_knows() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let response = app
        .admin(Method::POST, "/admin/users", &admin)
        .json(&json!({"id": "legacy-user-42", "email": "legacy@example.com", "password": PASSWORD, "display_name": "Legacy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["id"], "legacy-user-42");
    let token = app
        .identity_token("legacy@example.com", PASSWORD, "n")
        .await;
    assert_eq!(jwt_part(&token, 1)["prn"], "legacy-user-42");

    let response = app
        .admin(Method::POST, "/admin/users", &admin)
        .json(&json!({"id": "legacy-user-42", "email": "other@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "id_taken");
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn an_admin_creates_a_user_with_the_email_already_verified() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let cases = [
        (
            json!({"email": "plain@example.com", "password": PASSWORD}),
            false,
        ),
        (
            json!({"email": "said-no@example.com", "password": PASSWORD, "email_verified": false}),
            false,
        ),
        (
            json!({"email": "said-yes@example.com", "password": PASSWORD, "email_verified": true}),
            true,
        ),
        (
            json!({"email": "hashed@example.com", "email_verified": true,
                   "password_hash": "$2b$10$4sUynEODO0cYEmODNFgyQ.zaqQ2oQGSETwwe7OQiXI4EHOLqt11VG"}),
            true,
        ),
    ];
    for (body, verified) in cases {
        let response = app
            .admin(Method::POST, "/admin/users", &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{body}");
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["email_verified"], verified, "{body}");
        let stored = app
            .store
            .find_user(user["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.email_verified_at.is_some(), verified, "{body}");
    }
    let refused = app
        .admin(Method::POST, "/admin/users", &admin)
        .json(&json!({"email": "bad@example.com", "password": PASSWORD, "email_verified": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(app.user_count().await, 4);
}

#[tokio::test]
async fn users_are_listed_in_pages_and_can_be_disabled_enabled_and_deleted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for i in 0..5 {
        app.sign_up(&format!("user{i}@example.com"), PASSWORD).await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/admin/users?limit=2&after={a}"),
            None => "/admin/users?limit=2".to_owned(),
        };
        let page: Value = app
            .admin(Method::GET, &path, &admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["total"], 5);
        for user in page["users"].as_array().unwrap() {
            seen.push(user["id"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are ordered and do not overlap");
    assert_eq!(seen.len(), 5);

    let id = &seen[0];
    let response = app
        .admin(Method::POST, &format!("/admin/users/{id}/disable"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["disabled"], true);
    let response = app
        .admin(Method::POST, &format!("/admin/users/{id}/enable"), &admin)
        .send()
        .await
        .unwrap();
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["disabled"], false);

    let response = app
        .admin(Method::DELETE, &format!("/admin/users/{id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = app
        .admin(Method::GET, &format!("/admin/users/{id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .admin(Method::DELETE, &format!("/admin/users/{id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(app.user_count().await, 4);

    let response = app
        .admin(Method::GET, "/admin/users?limit=0", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .admin(Method::GET, "/admin/users?limit=abc", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn admin_tokens_are_stored_only_as_hashes_and_can_be_revoked() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let hash = layer_idp::idp::sessions::hash_token(&admin);
    let used = app.store.use_admin_token(&hash, 1).await.unwrap();
    assert!(used.is_some());
    assert!(
        app.store
            .use_admin_token(admin.as_bytes(), 1)
            .await
            .unwrap()
            .is_none()
    );
    let name = used.unwrap().name;
    assert!(app.store.revoke_admin_token(&name).await.unwrap());
    let response = app
        .admin(Method::GET, "/admin/users", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// Holds the database's write lock — SQLite's, or an exclusive lock on PostgreSQL's
/// `admin_tokens` table (reads still pass) — until dropped or released.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(url: &str) -> WriteLock {
        use sqlx::Connection;
        if url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            WriteLock::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE admin_tokens IN EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .unwrap();
            WriteLock::Postgres(conn)
        }
    }

    async fn release(self) {
        match self {
            WriteLock::Sqlite(mut c) => sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(|_| ()),
            WriteLock::Postgres(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(|_| ())
            }
        }
        .unwrap();
    }
}

#[tokio::test]
async fn an_unknown_admin_token_is_refused_without_writing() {
    // A write that meets the held lock fails instead of waiting: SQLite gives up after its
    // busy timeout, PostgreSQL after this lock timeout. Either way the request would be a 500.
    let app = crate::helpers::spawn_app_with(|s| {
        if let Some(url) = &s.database_url
            && url.is_postgres()
        {
            let mut url = url::Url::parse(url.expose()).unwrap();
            url.query_pairs_mut()
                .append_pair("options[lock_timeout]", "200");
            s.database_url = Some(layer_idp::config::DatabaseUrl::new(url.to_string()));
        }
    })
    .await;
    let token = app.admin_token().await;
    let url = app.settings.effective_database_url().expose().to_owned();

    let lock = WriteLock::take(&url).await;
    for bogus in ["not-a-token", "a".repeat(64).as_str()] {
        let response = app
            .admin(Method::GET, "/admin/users", bogus)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
    lock.release().await;

    // The real token still works, and its use is noted.
    let response = app
        .admin(Method::GET, "/admin/users", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens = app.store.list_admin_tokens().await.unwrap();
    assert!(tokens[0].last_used_at.is_some(), "{tokens:?}");
}
