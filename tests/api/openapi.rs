//! `GET /openapi.json`: the description lists exactly the routes the server mounts. Every
//! documented operation is probed and must reach its handler (anything but the router's own
//! 404 or 405); every other method on a documented path must be the router's 405, and paths
//! outside the description its 404.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "options", "trace"];

async fn description(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    response.json().await.unwrap()
}

/// The router's own answers carry these: a route that exists never gives them.
async fn is_router_miss(response: reqwest::Response) -> Option<String> {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let description = body["error_description"].as_str().unwrap_or_default();
    match status {
        405 if body["error"] == "method_not_allowed" => Some("405".to_owned()),
        404 if description.starts_with("there is no ") && !description.contains(" ID ") => {
            Some(format!("404 {description}"))
        }
        _ => None,
    }
}

#[tokio::test]
async fn the_description_is_openapi_3_1_with_both_bearer_schemes_and_the_error_body() {
    let app = spawn_app().await;
    let document = description(&app).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."));
    for scheme in ["session", "admin"] {
        let scheme = &document["components"]["securitySchemes"][scheme];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
    }
    let error = &document["components"]["schemas"]["ErrorBody"];
    for key in ["error", "error_description", "request_id"] {
        assert!(
            error["required"].as_array().unwrap().contains(&json!(key)),
            "{error}"
        );
    }
    let codes = document["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    for code in [
        "invalid_credentials",
        "nonce_already_signed",
        "too_many_attempts",
    ] {
        assert!(codes.contains(&json!(code)), "{code}");
    }
    // Secured operations name their scheme and document the 401.
    let me = &document["paths"]["/users/me"]["get"];
    assert_eq!(me["security"], json!([{"session": []}]));
    assert!(me["responses"]["401"].is_object());
    let users = &document["paths"]["/admin/users"]["get"];
    assert_eq!(users["security"], json!([{"admin": []}]));
    // Bodies are documented as JSON and as forms, nested credentials Rails-style.
    let login = &document["paths"]["/authenticate"]["post"]["requestBody"]["content"];
    assert!(login["application/json"]["schema"].is_object());
    let form = &login["application/x-www-form-urlencoded"]["schema"]["properties"];
    assert!(form["user[email]"].is_object(), "{form}");
    assert!(form["nonce"].is_object(), "{form}");
}

#[tokio::test]
async fn every_documented_operation_is_mounted_and_no_other_method_is() {
    let app = spawn_app().await;
    let document = description(&app).await;
    let admin = app.admin_token().await;
    app.sign_up("probe@example.com", "correct horse battery")
        .await;
    let session = app
        .session_token("probe@example.com", "correct horse battery")
        .await;
    let created = app
        .admin(Method::POST, "/admin/users", &admin)
        .json(&json!({"email": "target@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let target: Value = created.json().await.unwrap();
    let target_id = target["id"].as_str().unwrap();

    let paths = document["paths"].as_object().unwrap();
    let mut probed = 0;
    for (template, item) in paths {
        let path = template.replace("{id}", target_id);
        assert!(
            !path.contains('{'),
            "a path parameter to fill in: {template}"
        );
        for method in METHODS {
            let documented = item.get(method);
            let mut request = app.client.request(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                app.url(&path),
            );
            if template.starts_with("/admin/") {
                request = request.bearer_auth(&admin);
            } else if documented.is_some_and(|op| op["security"] == json!([{"session": []}])) {
                request = request.bearer_auth(&session);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let allow = response
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned());
            let miss = is_router_miss(response).await;
            if documented.is_some() {
                probed += 1;
                assert_eq!(
                    miss, None,
                    "{method} {template} is documented but not mounted"
                );
            } else if method != "options" {
                // OPTIONS is CORS's (a preflight without Origin is just unsupported).
                assert_eq!(
                    miss.as_deref(),
                    Some("405"),
                    "{method} {template} is mounted ({status}) but not documented"
                );
                let allow = allow.expect("a 405 names the allowed methods");
                for listed in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                    assert!(allow.contains(&listed.to_uppercase()), "{allow} {template}");
                }
            }
        }
    }
    assert!(probed >= 29, "only {probed} operations documented");
}

#[tokio::test]
async fn paths_outside_the_description_are_not_mounted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for path in [
        "/",
        "/openapi.yaml",
        "/users/me/extra",
        "/users/verify/form/x",
        "/sessions/abc",
        "/nonces",
        "/admin/users/x/y",
        "/admin/tokens",
        "/admin/openapi.json",
        "/.well-known/openid-configuration",
    ] {
        let response = app.admin(Method::GET, path, &admin).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(is_router_miss(response).await.is_some(), "{path}");
    }
}
