//! Bad input, class by class, on every endpoint family: a clear 4xx in the face's JSON error
//! format, nothing written, and the server keeps serving.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const PASSWORD: &str = "correct horse battery";

struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
}

fn case(
    name: &'static str,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        name,
        content_type,
        body: body.into(),
        status,
        error,
    }
}

const JSON: Option<&str> = Some("application/json");
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

/// The classes every body-taking endpoint must handle; `valid` is a correct body for it, whose
/// first key (alphabetically) is required unless `all_optional`.
fn classes(valid: &Value, all_optional: bool) -> Vec<Case> {
    let mut extra = valid.clone();
    extra["is_admin"] = json!(true);
    let mut wrong_type = valid.clone();
    let first_key = valid.as_object().unwrap().keys().next().unwrap().clone();
    wrong_type[&first_key] = json!(12345);
    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove(&first_key);
    // The first key once more, with another value, in front of the valid body.
    let repeated = format!(
        "{{{}: {}, {}",
        Value::from(first_key.clone()),
        json!(12345),
        &valid.to_string()[1..]
    );
    let mut absurd = valid.clone();
    absurd[&first_key] = json!("x".repeat(60_000));
    let mut cases = vec![
        case(
            "malformed JSON",
            JSON,
            r#"{"email": "a@b.c", "#,
            400,
            "malformed_request",
        ),
        case(
            "JSON that is not an object",
            JSON,
            "[1, 2, 3]",
            400,
            "invalid_request",
        ),
        case("empty JSON body", JSON, "", 400, "malformed_request"),
        case(
            "invalid UTF-8 in JSON",
            JSON,
            b"{\"email\": \"\xff\xfe\"}".to_vec(),
            400,
            "malformed_request",
        ),
        case(
            "invalid UTF-8 in a form",
            FORM,
            "email=%FF%FE&password=x",
            400,
            "malformed_request",
        ),
        case(
            "no content type",
            None,
            valid.to_string(),
            415,
            "unsupported_media_type",
        ),
        case(
            "wrong content type",
            Some("text/plain"),
            valid.to_string(),
            415,
            "unsupported_media_type",
        ),
        case(
            "extra field",
            JSON,
            extra.to_string(),
            400,
            "invalid_request",
        ),
        case(
            "wrongly typed field",
            JSON,
            wrong_type.to_string(),
            400,
            "invalid_request",
        ),
        case("repeated key", JSON, repeated, 400, "invalid_request"),
        case(
            "missing field",
            JSON,
            missing.to_string(),
            400,
            "invalid_request",
        ),
        case(
            "oversized body",
            JSON,
            format!("{{\"email\": \"{}\"}}", "x".repeat(70_000)),
            413,
            "payload_too_large",
        ),
        case(
            "absurd field length",
            JSON,
            absurd.to_string(),
            422,
            "invalid_value",
        ),
    ];
    if all_optional {
        cases.retain(|c| c.name != "missing field");
    }
    cases
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    case: &Case,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .body(case.body.clone());
    if let Some(content_type) = case.content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(token) = bearer {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    request.send().await.unwrap()
}

async fn assert_each_class_is_refused_cleanly(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    valid: Value,
) {
    let all_optional = method == reqwest::Method::PATCH;
    for case in classes(&valid, all_optional) {
        let users_before = app.user_count().await;
        let response = send(app, method.clone(), path, bearer, &case).await;
        let status = response.status().as_u16();
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path} {}: body is not JSON: {e}", case.name));
        assert_eq!(
            status, case.status,
            "{method} {path} with {}: {body}",
            case.name
        );
        assert_eq!(
            content_type.unwrap(),
            "application/json",
            "{path} {}",
            case.name
        );
        assert_eq!(body["error"], case.error, "{path} {}: {body}", case.name);
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            !description.is_empty(),
            "{path} {}: no description",
            case.name
        );
        assert!(body["request_id"].is_string());
        assert_eq!(
            app.user_count().await,
            users_before,
            "{path} {} wrote something",
            case.name
        );
    }
    // And the server still serves.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn sign_up_refuses_each_class_of_bad_input_and_writes_nothing() {
    let app = spawn_app().await;
    let valid = json!({"email": "new@example.com", "password": PASSWORD});
    assert_each_class_is_refused_cleanly(&app, reqwest::Method::POST, "/users", None, valid).await;
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn profile_updates_refuse_each_class_of_bad_input_and_change_nothing() {
    let app = spawn_app().await;
    let user = app.sign_up("me@example.com", PASSWORD).await;
    let session = app.session_token("me@example.com", PASSWORD).await;
    let valid = json!({"display_name": "Someone", "first_name": "Some"});
    assert_each_class_is_refused_cleanly(
        &app,
        reqwest::Method::PATCH,
        "/users/me",
        Some(&session),
        valid,
    )
    .await;
    let me: Value = app.get_me(&session).await.json().await.unwrap();
    assert_eq!(me["updated_at"], user["updated_at"]);
    assert_eq!(me["display_name"], Value::Null);
}

#[tokio::test]
async fn the_login_endpoints_refuse_each_class_of_bad_input_and_sign_nothing() {
    let app = spawn_app().await;
    app.sign_up("login@example.com", PASSWORD).await;
    let session = app.session_token("login@example.com", PASSWORD).await;
    let nonce = "bad-input-nonce";
    assert_each_class_is_refused_cleanly(
        &app,
        reqwest::Method::POST,
        "/authenticate",
        None,
        json!({"email": "login@example.com", "password": PASSWORD, "nonce": nonce}),
    )
    .await;
    assert_each_class_is_refused_cleanly(
        &app,
        reqwest::Method::POST,
        "/sessions",
        None,
        json!({"email": "login@example.com", "password": PASSWORD}),
    )
    .await;
    assert_each_class_is_refused_cleanly(
        &app,
        reqwest::Method::POST,
        "/identity_tokens",
        Some(&session),
        json!({"nonce": nonce}),
    )
    .await;
    // Nothing was signed for the nonce along the way: it can still be signed once.
    assert_eq!(
        app.post_identity_tokens(&session, nonce).await.status(),
        200
    );
}

#[tokio::test]
async fn the_admin_api_refuses_each_class_of_bad_input_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    assert_each_class_is_refused_cleanly(
        &app,
        reqwest::Method::POST,
        "/admin/users",
        Some(&admin),
        json!({"email": "imported@example.com", "password": PASSWORD, "id": "legacy-7"}),
    )
    .await;
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_malformed_authorization_header_is_a_401_not_a_crash() {
    let app = spawn_app().await;
    for value in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a b c",
        &format!("Bearer {}", "x".repeat(10_000)),
    ] {
        let response = app
            .client
            .get(app.url("/users/me"))
            .header(AUTHORIZATION, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{value:.20}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_faces_format() {
    let app = spawn_app().await;
    let response = app.get("/no/such/path").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let response = app.get("/authenticate").await;
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    let response = app.client.delete(app.url("/users")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn a_stranger_with_a_bad_body_learns_only_that_they_must_log_in() {
    let app = spawn_app().await;
    for (method, path) in [
        (reqwest::Method::PATCH, "/users/me"),
        (reqwest::Method::POST, "/identity_tokens"),
        (reqwest::Method::POST, "/admin/users"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .header(CONTENT_TYPE, "text/plain")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        let header_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["request_id"], header_id.as_str(), "{method} {path}");
    }
}

#[tokio::test]
async fn a_repeated_json_key_is_refused_at_any_depth_rather_than_read_last_wins() {
    let app = spawn_app().await;
    app.sign_up("first@example.com", PASSWORD).await;
    app.sign_up("second@example.com", PASSWORD).await;
    let bodies = [
        (
            format!(
                r#"{{"email": "first@example.com", "email": "second@example.com", "password": "{PASSWORD}"}}"#
            ),
            r#""email""#,
        ),
        (
            format!(
                r#"{{"user": {{"email": "first@example.com", "password": "{PASSWORD}", "email": "second@example.com"}}}}"#
            ),
            r#""user.email""#,
        ),
    ];
    for (body, key) in bodies {
        let response = app
            .client
            .post(app.url("/sessions"))
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_request", "{error}");
        let description = error["error_description"].as_str().unwrap();
        assert!(description.contains(key), "{description}");
        assert!(error["request_id"].is_string(), "{error}");
    }
}

/// Sends `request` on a fresh connection and reads until the server closes it; returns each
/// response's status and body, in order.
pub async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> Vec<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may refuse and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    let mut responses = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(rest) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!(
                "not a response ({other:?}): {}",
                String::from_utf8_lossy(rest)
            ),
        };
        let length: usize = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
            .unwrap_or(0);
        responses.push((response.code.unwrap(), rest[head..head + length].to_vec()));
        rest = &rest[head + length..];
    }
    responses
}

#[tokio::test]
async fn requests_the_http_parser_refuses_get_the_idp_error_format() {
    let app = spawn_app().await;
    // actix-http reads a request head of up to 128 KiB and 96 headers.
    let long = "a".repeat(140_000);
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "garbage request line",
            "NOT HTTP AT ALL\r\n\r\n".to_owned(),
            400,
            "malformed_request",
        ),
        (
            "invalid header name",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n".to_owned(),
            400,
            "malformed_request",
        ),
        (
            "invalid content length",
            "POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n".to_owned(),
            400,
            "malformed_request",
        ),
        (
            "two Host headers",
            "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_owned(),
            400,
            "malformed_request",
        ),
        (
            "too many headers",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
            431,
            "request_header_fields_too_large",
        ),
        (
            "header too large",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {long}\r\n\r\n"),
            431,
            "request_header_fields_too_large",
        ),
        (
            "URI too long",
            format!("GET /{long} HTTP/1.1\r\nHost: x\r\n\r\n"),
            431,
            "request_header_fields_too_large",
        ),
        (
            "broken chunked body",
            "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
                .to_owned(),
            400,
            "malformed_request",
        ),
    ];
    for (name, request, status, error) in cases {
        let responses = raw_exchange(app.addr, request.as_bytes()).await;
        assert!(!responses.is_empty(), "{name}: no response");
        for (got, body) in &responses {
            assert_eq!(*got, status, "{name}");
            let body: Value = serde_json::from_slice(body)
                .unwrap_or_else(|_| panic!("{name}: {}", String::from_utf8_lossy(body)));
            assert_eq!(body["error"], error, "{name}: {body}");
            assert!(
                body["error_description"].as_str().unwrap().len() > 20,
                "{name}"
            );
            assert!(
                body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
                "{name}"
            );
        }
    }
    // Behind a good request on the same connection: that one is answered, then the refusal.
    let pipelined = raw_exchange(
        app.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nBad Header: y\r\n\r\n",
    )
    .await;
    let statuses: Vec<u16> = pipelined.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 400]);
    let refusal: Value = serde_json::from_slice(&pipelined[1].1).unwrap();
    assert_eq!(refusal["error"], "malformed_request");
    // Nothing was created, and the server still serves.
    assert_eq!(app.user_count().await, 0);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_user_id_with_a_nul_byte_is_no_users_not_a_server_error() {
    // PostgreSQL refuses a NUL byte in text outright; this was a 500 there (schemathesis run
    // against PostgreSQL).
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (method, path) in [
        (reqwest::Method::GET, "/admin/users/a%00b"),
        (reqwest::Method::DELETE, "/admin/users/a%00b"),
        (reqwest::Method::POST, "/admin/users/a%00b/disable"),
        (reqwest::Method::POST, "/admin/users/a%00b/enable"),
    ] {
        let response = app
            .admin(method.clone(), path, &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{method} {path}");
    }
    let response = app
        .admin(reqwest::Method::PATCH, "/admin/users/a%00b", &token)
        .json(&serde_json::json!({"display_name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    for path in ["/admin/users?after=a%00b", "/admin/audit?user_id=a%00b"] {
        let response = app
            .admin(reqwest::Method::GET, path, &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
}
