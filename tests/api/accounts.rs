//! Sign-up, the password policy, Layer's profile limits, `GET/PATCH /users/me`.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn sign_up_returns_the_user_with_a_generated_id_and_never_the_hash() {
    let app = spawn_app().await;
    let response = app
        .post_users(
            &json!({"email": "Grace@Example.com", "password": PASSWORD, "display_name": "Grace"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    let id = user["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id} is a UUID");
    assert_eq!(user["email"], "Grace@Example.com");
    assert_eq!(user["display_name"], "Grace");
    assert_eq!(user["disabled"], false);
    let text = user.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );
}

#[tokio::test]
async fn emails_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    app.sign_up("Case@Example.com", PASSWORD).await;
    let response = app
        .post_users(&json!({"email": "case@EXAMPLE.com", "password": PASSWORD}))
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "email_taken");
    assert_eq!(app.user_count().await, 1);
    // Logging in works with any case.
    app.identity_token("CASE@example.COM", PASSWORD, "n").await;
}

#[tokio::test]
async fn passwords_follow_nist_800_63b() {
    let app = spawn_app().await;
    let response = app
        .post_users(&json!({"email": "short@example.com", "password": "seven77"}))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], "password");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("at least 8")
    );

    // No composition rules; any Unicode; long passphrases.
    for (email, password) in [
        ("lower@example.com", "alllowercase"),
        ("unicode@example.com", "пароль 密码 كلمة 🔑"),
        (
            "long@example.com",
            &"a long passphrase that goes on ".repeat(20),
        ),
    ] {
        let response = app
            .post_users(&json!({"email": email, "password": password}))
            .await;
        assert_eq!(response.status(), 201, "{password}");
        app.identity_token(email, password, email).await;
    }
}

#[tokio::test]
async fn the_minimum_password_length_is_configurable() {
    let app = crate::helpers::spawn_app_with(|s| s.passwords.min_length = 15).await;
    let response = app
        .post_users(&json!({"email": "min@example.com", "password": "fourteen chars"}))
        .await;
    assert_eq!(response.status(), 422);
    let response = app
        .post_users(&json!({"email": "min@example.com", "password": "fifteen chars!!"}))
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn profile_fields_obey_layers_identity_limits() {
    let app = spawn_app().await;
    let cases = [
        json!({"display_name": "x".repeat(129)}),
        json!({"first_name": "x".repeat(129)}),
        json!({"last_name": "x".repeat(129)}),
        json!({"avatar_url": format!("https://example.com/{}", "a".repeat(1010))}),
        json!({"avatar_url": "ftp://example.com/a.png"}),
        json!({"avatar_url": "not a url"}),
        json!({"display_name": "line\nbreak"}),
    ];
    for extra in cases {
        let mut body = json!({"email": "limits@example.com", "password": PASSWORD});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = app.post_users(&body).await;
        assert_eq!(response.status(), 422, "{extra}");
    }
    assert_eq!(app.user_count().await, 0);
    let body = json!({
        "email": "limits@example.com", "password": PASSWORD,
        "display_name": "é".repeat(128), "avatar_url": "http://example.com/a.png"
    });
    assert_eq!(app.post_users(&body).await.status(), 201);
}

#[tokio::test]
async fn users_me_shows_and_updates_the_profile() {
    let app = spawn_app().await;
    let user = app
        .sign_up_with(json!({"email": "me@example.com", "password": PASSWORD, "display_name": "Me", "first_name": "Em"}))
        .await;
    let session = app.session_token("me@example.com", PASSWORD).await;
    let me: Value = app.get_me(&session).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["display_name"], "Me");

    let response = app
        .patch_me(&session, &json!({"display_name": "New Me", "first_name": null, "avatar_url": "https://example.com/me.png"}))
        .await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["display_name"], "New Me");
    assert_eq!(me["first_name"], Value::Null);
    assert_eq!(me["avatar_url"], "https://example.com/me.png");
    assert_eq!(me["id"], user["id"], "the ID never changes");

    // The new profile goes into the next identity token.
    let token = app.identity_token("me@example.com", PASSWORD, "n").await;
    let claims = crate::helpers::jwt_part(&token, 1);
    assert_eq!(claims["display_name"], "New Me");
    assert!(claims.get("first_name").is_none());

    // Without a session: 401.
    assert_eq!(app.get("/users/me").await.status(), 401);
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    app.sign_up("pw@example.com", PASSWORD).await;
    let this_device = app.session_token("pw@example.com", PASSWORD).await;
    let other_device = app.session_token("pw@example.com", PASSWORD).await;

    let response = app
        .patch_me(&this_device, &json!({"password": "a new passphrase"}))
        .await;
    assert_eq!(response.status(), 400);
    let response = app
        .patch_me(
            &this_device,
            &json!({"password": "a new passphrase", "current_password": "not it!!"}),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        app.get_me(&other_device).await.status(),
        200,
        "nothing changed yet"
    );

    let response = app
        .patch_me(
            &this_device,
            &json!({"password": "a new passphrase", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.get_me(&this_device).await.status(), 200);
    assert_eq!(app.get_me(&other_device).await.status(), 401);
    let old = app
        .post_authenticate(&json!({"email": "pw@example.com", "password": PASSWORD, "nonce": "a"}))
        .await;
    assert_eq!(old.status(), 401);
    app.identity_token("pw@example.com", "a new passphrase", "b")
        .await;
}

#[tokio::test]
async fn changing_the_email_needs_the_current_password_and_a_free_address() {
    let app = spawn_app().await;
    app.sign_up("taken@example.com", PASSWORD).await;
    app.sign_up("mover@example.com", PASSWORD).await;
    let session = app.session_token("mover@example.com", PASSWORD).await;
    let response = app
        .patch_me(&session, &json!({"email": "moved@example.com"}))
        .await;
    assert_eq!(response.status(), 400);
    let response = app
        .patch_me(
            &session,
            &json!({"email": "TAKEN@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let response = app
        .patch_me(
            &session,
            &json!({"email": "moved@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    app.identity_token("moved@example.com", PASSWORD, "n").await;
}

#[tokio::test]
async fn an_email_change_refused_as_taken_changes_nothing_not_even_the_password() {
    let app = spawn_app().await;
    app.sign_up("taken@example.com", PASSWORD).await;
    app.sign_up("atomic@example.com", PASSWORD).await;
    let this_device = app.session_token("atomic@example.com", PASSWORD).await;
    let other_device = app.session_token("atomic@example.com", PASSWORD).await;
    let response = app
        .patch_me(
            &this_device,
            &json!({"email": "taken@example.com", "password": "a new passphrase", "current_password": PASSWORD, "display_name": "Changed"}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let me: Value = app.get_me(&other_device).await.json().await.unwrap();
    assert_eq!(me["email"], "atomic@example.com");
    assert_eq!(me["display_name"], Value::Null);
    app.identity_token("atomic@example.com", PASSWORD, "old-password-still-works")
        .await;
}
