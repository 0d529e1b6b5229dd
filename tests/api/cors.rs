//! CORS on the identity provider: browser apps on allowed origins may call it, others get
//! no CORS headers, the admin API never answers cross-origin.

use reqwest::header::HeaderMap;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const APP_ORIGIN: &str = "https://chat.example.com";

/// Production keys (the test default) with one listed origin.
async fn spawn_listed() -> TestApp {
    spawn_app_with(|s| s.http.cors_allowed_origins = vec![APP_ORIGIN.to_owned()]).await
}

/// The zero-configuration start: development credentials, nothing listed.
async fn spawn_development() -> TestApp {
    spawn_app_with(|s| {
        s.provider_id = None;
        s.signing.keys.clear();
    })
    .await
}

async fn preflight(app: &TestApp, path: &str, origin: &str, headers: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn assert_allowed(headers: &HeaderMap, origin: &str) {
    assert_eq!(header(headers, "access-control-allow-origin"), Some(origin));
    assert!(
        header(headers, "vary").is_some_and(|v| v.contains("Origin")),
        "{headers:?}"
    );
    assert_eq!(header(headers, "access-control-allow-credentials"), None);
}

#[tokio::test]
async fn an_allowed_origin_gets_preflights_answers_and_errors_with_cors_headers() {
    let app = spawn_listed().await;

    let response = preflight(
        &app,
        "/identity_tokens",
        APP_ORIGIN,
        "content-type,authorization",
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_allowed(headers, APP_ORIGIN);
    let methods = header(headers, "access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = header(headers, "access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("content-type") && allowed.contains("authorization"),
        "{allowed}"
    );
    assert_eq!(header(headers, "access-control-max-age"), Some("3600"));

    // A success…
    let response = app
        .client
        .post(app.url("/users"))
        .header("origin", APP_ORIGIN)
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_allowed(response.headers(), APP_ORIGIN);

    // …and errors: a failed login, a missing session, an unknown path.
    let response = app
        .client
        .post(app.url("/sessions"))
        .header("origin", APP_ORIGIN)
        .json(&json!({"email": "ada@example.com", "password": "wrong password!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_allowed(response.headers(), APP_ORIGIN);
    let response = app
        .client
        .post(app.url("/identity_tokens"))
        .header("origin", APP_ORIGIN)
        .json(&json!({"nonce": "n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_allowed(response.headers(), APP_ORIGIN);
    let response = app
        .client
        .get(app.url("/nowhere"))
        .header("origin", APP_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_allowed(response.headers(), APP_ORIGIN);
}

#[tokio::test]
async fn other_origins_get_no_cors_headers_and_a_refused_preflight_in_the_idp_format() {
    let app = spawn_listed().await;
    for origin in ["https://evil.example.com", "http://localhost:5173"] {
        let response = preflight(&app, "/sessions", origin, "content-type").await;
        assert_eq!(response.status(), 400, "{origin}");
        assert!(cors_headers(response.headers()).is_empty(), "{origin}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(body["request_id"].is_string());

        // The request itself is served (a browser withholds the answer), without CORS headers.
        let response = app
            .client
            .post(app.url("/users"))
            .header("origin", origin)
            .json(&json!({"email": format!("{}@example.com", origin.len()), "password": "long enough pw"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert!(cors_headers(response.headers()).is_empty(), "{origin}");
    }
    // An allowed origin asking for a header the IdP does not use is refused.
    let response = preflight(&app, "/sessions", APP_ORIGIN, "x-custom").await;
    assert_eq!(response.status(), 400);
    assert!(cors_headers(response.headers()).is_empty());
}

#[tokio::test]
async fn production_keys_allow_no_origin_until_one_is_listed() {
    let app = spawn_app_with(|_| {}).await;
    for origin in [APP_ORIGIN, "http://localhost:5173", "http://127.0.0.1:3000"] {
        let response = preflight(&app, "/sessions", origin, "content-type").await;
        assert_eq!(response.status(), 400, "{origin}");
        assert!(cors_headers(response.headers()).is_empty(), "{origin}");
    }
}

#[tokio::test]
async fn development_credentials_allow_loopback_origins_on_any_port() {
    let app = spawn_development().await;
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:41234",
        "http://[::1]:8000",
    ] {
        let response = preflight(&app, "/sessions", origin, "content-type").await;
        assert_eq!(response.status(), 200, "{origin}");
        assert_allowed(response.headers(), origin);
    }
    for origin in [APP_ORIGIN, "http://localhost.example.com:5173"] {
        let response = preflight(&app, "/sessions", origin, "content-type").await;
        assert_eq!(response.status(), 400, "{origin}");
        assert!(cors_headers(response.headers()).is_empty(), "{origin}");
    }
}

#[tokio::test]
async fn the_admin_api_never_answers_cross_origin() {
    let app = spawn_listed().await;
    let token = app.admin_token().await;
    for path in ["/admin/users", "/%61dmin/users"] {
        let response = preflight(&app, path, APP_ORIGIN, "authorization").await;
        assert_eq!(response.status(), 400, "{path}");
        assert!(cors_headers(response.headers()).is_empty(), "{path}");
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&token)
            .header("origin", APP_ORIGIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path} routes to the admin API");
        assert!(cors_headers(response.headers()).is_empty(), "{path}");
    }

    let response = app
        .admin(Method::GET, "/admin/users", &token)
        .header("origin", APP_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(cors_headers(response.headers()).is_empty());
    // The same origin is allowed everywhere else.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("origin", APP_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_allowed(response.headers(), APP_ORIGIN);
}
