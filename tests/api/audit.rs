//! The audit trail: what is recorded, `GET /admin/audit`, never a secret.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn security_events_are_recorded_with_actor_subject_and_client_and_no_secret() {
    let app = spawn_app().await;
    let user = app.sign_up("ivy@example.com", "first long password").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let wrong = app
        .post_json(
            "/sessions",
            &json!({"email": "ivy@example.com", "password": "guessed password"}),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let session = app
        .session_token("ivy@example.com", "first long password")
        .await;
    let changed = app
        .patch_me(
            &session,
            &json!({"password": "second long password", "current_password": "first long password"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let admin = app.admin_token().await;
    let patched = app
        .admin(Method::PATCH, &format!("/admin/users/{id}"), &admin)
        .json(&json!({"display_name": "Ivy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);

    let response = app
        .admin(Method::GET, &format!("/admin/audit?user_id={id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for secret in [
        "first long password",
        "second long password",
        "guessed password",
        &session,
        &admin,
    ] {
        assert!(!text.contains(secret), "the audit trail holds a secret");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let events = body["events"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    let me = format!("user:{id}");
    assert_eq!(
        summary,
        vec![
            ("sign_up", "anonymous", "created"),
            ("login", "anonymous", "failure: wrong password"),
            ("password_change", me.as_str(), "changed"),
            (
                "admin_update_user",
                events[3]["actor"].as_str().unwrap(),
                "done"
            ),
        ]
    );
    assert!(
        events[3]["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin:test-")
    );
    assert!(events.iter().all(|e| e["subject"] == id.as_str()));
    assert!(events.iter().all(|e| e["client"] == "127.0.0.1"));
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64())
    );

    // Paging.
    let first = events[0]["id"].as_i64().unwrap();
    let page: Value = app
        .admin(
            Method::GET,
            &format!("/admin/audit?user_id={id}&after={first}&limit=1"),
            &admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["events"][0]["kind"], "login");
    assert_eq!(page["next_after"], page["events"][0]["id"]);
}

#[tokio::test]
async fn bad_audit_queries_are_400_and_old_events_are_purged() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for query in ["limit=0", "limit=1001", "limit=x", "after=abc", "color=red"] {
        let response = app
            .admin(Method::GET, &format!("/admin/audit?{query}"), &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{query}");
    }
    let anonymous = app
        .client
        .get(app.url("/admin/audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    app.sign_up("old@example.com", "a long password").await;
    let now = layer_idp::clock::unix_now();
    assert_eq!(app.store.purge_audit_events(now - 60).await.unwrap(), 0);
    assert_eq!(app.store.purge_audit_events(now + 60).await.unwrap(), 1);
    assert!(
        app.store
            .list_audit_events(0, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_held_login_is_recorded() {
    let app = crate::helpers::spawn_app_with_clock(crate::helpers::manual_clock(), |_| {}).await;
    app.sign_up("held@example.com", "a long password").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = app
            .post_json(
                "/sessions",
                &json!({"email": "held@example.com", "password": "wrong password"}),
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let events = app.store.list_audit_events(0, 100, None).await.unwrap();
    let outcomes: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "login")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == "failure: wrong password")
            .count(),
        5
    );
    assert_eq!(outcomes.last(), Some(&"held"));
    assert_eq!(events.last().unwrap().client.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn admin_disable_and_enable_are_recorded_with_the_token_name() {
    let app = spawn_app().await;
    let user = app.sign_up("toggled@example.com", "a long password").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let admin = app.admin_token().await;
    for verb in ["disable", "enable"] {
        let response = app
            .admin(Method::POST, &format!("/admin/users/{id}/{verb}"), &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{verb}");
    }
    let missing = app
        .admin(Method::POST, "/admin/users/no-such-user/disable", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let events = app
        .store
        .list_audit_events(0, 100, Some(&id))
        .await
        .unwrap();
    let summary: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.kind.starts_with("admin_"))
        .map(|e| (e.kind.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("admin_disable_user", "done"),
            ("admin_enable_user", "done")
        ]
    );
    for event in events.iter().filter(|e| e.kind.starts_with("admin_")) {
        assert!(event.actor.starts_with("admin:test-"), "{}", event.actor);
        assert_eq!(event.client.as_deref(), Some("127.0.0.1"));
    }
    let all = app.store.list_audit_events(0, 100, None).await.unwrap();
    assert!(
        !all.iter()
            .any(|e| e.subject.as_deref() == Some("no-such-user"))
    );
}
