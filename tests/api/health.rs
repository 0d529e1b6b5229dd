//! Health endpoints and the request ID.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_readiness_and_the_legacy_deployed_probe_answer() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");

    let response = app.get("/deployed").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    // Close the store's pool under the running app: the database is now unreachable.
    let store = app.store.clone();
    store.close().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_ready");
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "alive, just not ready"
    );
}

#[tokio::test]
async fn a_request_id_is_echoed_when_safe_and_made_up_otherwise() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-123");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-123");

    for unsafe_id in ["has space", "semi;colon", &"x".repeat(65)] {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", unsafe_id)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(echoed).is_ok(),
            "{unsafe_id:?} was echoed as {echoed}"
        );
    }
    let response = app.get("/healthz").await;
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
}
