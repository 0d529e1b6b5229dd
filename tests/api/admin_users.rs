//! `PATCH /admin/users/{id}`: an administrator changes a user's profile, e-mail or password.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_admin_changes_profile_and_email_keeping_sessions_and_a_password_ending_them() {
    let app = spawn_app().await;
    let user = app.sign_up("ada@example.com", "a long password").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let session = app
        .session_token("ada@example.com", "a long password")
        .await;
    let admin = app.admin_token().await;
    let path = format!("/admin/users/{id}");
    let patch = |body: Value| app.admin(Method::PATCH, &path, &admin).json(&body).send();

    let response = patch(
        json!({"display_name": "Countess", "email": "ada@lovelace.example",
                                "email_verified": true}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "ada@lovelace.example");
    assert_eq!(body["display_name"], "Countess");
    assert_eq!(
        app.get_me(&session).await.status(),
        200,
        "a profile change keeps sessions"
    );

    let response = patch(json!({"password": "a brand new password"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.get_me(&session).await.status(),
        401,
        "a new password ends sessions"
    );
    app.session_token("ada@lovelace.example", "a brand new password")
        .await;
    let old = app
        .post_json(
            "/sessions",
            &json!({"email": "ada@lovelace.example", "password": "a long password"}),
        )
        .await;
    assert_eq!(old.status(), 401);
}

#[tokio::test]
async fn bad_admin_patches_answer_4xx_and_change_nothing() {
    let app = spawn_app().await;
    let user = app.sign_up("bob@example.com", "a long password").await;
    app.sign_up("carol@example.com", "a long password").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let admin = app.admin_token().await;
    let path = format!("/admin/users/{id}");
    let before = app.store.find_login_by_id(&id).await.unwrap().unwrap();
    for (body, status, code) in [
        (json!({"password": "short"}), 422, "invalid_value"),
        (json!({"email": "not an address"}), 422, "invalid_value"),
        (json!({"nickname": "x"}), 400, "invalid_request"),
        (json!({"email_verified": "yes"}), 400, "invalid_request"),
        (
            json!({"email": "Carol@example.com", "display_name": "B"}),
            409,
            "email_taken",
        ),
    ] {
        let response = app
            .admin(Method::PATCH, &path, &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], code, "{body}");
    }
    let after = app.store.find_login_by_id(&id).await.unwrap().unwrap();
    assert_eq!(after.user, before.user);
    assert_eq!(after.password_hash, before.password_hash);
    let missing = app
        .admin(Method::PATCH, "/admin/users/nobody", &admin)
        .json(&json!({"display_name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let anonymous = app
        .client
        .patch(app.url(&path))
        .json(&json!({"display_name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_user_deletes_their_account_with_the_current_password_and_the_id_stays_taken() {
    let app = spawn_app().await;
    let user = app.sign_up("dora@example.com", "a long password").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let session = app
        .session_token("dora@example.com", "a long password")
        .await;
    let other = app
        .session_token("dora@example.com", "a long password")
        .await;
    let delete = |body: Value| {
        app.client
            .delete(app.url("/users/me"))
            .bearer_auth(&session)
            .json(&body)
            .send()
    };
    for (body, status) in [
        (json!({}), 400),
        (json!({"current_password": "not my password"}), 403),
        (
            json!({"current_password": "a long password", "extra": 1}),
            400,
        ),
    ] {
        assert_eq!(
            delete(body.clone()).await.unwrap().status(),
            status,
            "{body}"
        );
    }
    assert!(
        app.store.find_user(&id).await.unwrap().is_some(),
        "nothing changed"
    );
    assert_eq!(app.get_me(&other).await.status(), 200);

    let response = delete(json!({"current_password": "a long password"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(app.store.find_user(&id).await.unwrap().is_none());
    assert_eq!(
        app.get_me(&other).await.status(),
        401,
        "every session ended"
    );
    // The address is free again, but the ID is not.
    app.sign_up("dora@example.com", "another long password")
        .await;
    let admin = app.admin_token().await;
    let reuse = app
        .admin(Method::POST, "/admin/users", &admin)
        .json(&json!({"id": id, "email": "eve@example.com", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 409);
}
