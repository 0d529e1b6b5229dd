//! Health and key publication: `/healthz` (alive), `/readyz` (database reachable),
//! `/deployed` (the probe older sample deployments use), `/.well-known/jwks.json`, and
//! `/openapi.json` (this API's description).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use serde_json::json as body;

use super::json;
use crate::idp::IdpState;
use crate::idp::openapi::{Description, ErrorBody, Health, Jwks};

/// Liveness: the process answers
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "Alive.", body = Health))
)]
#[get("/healthz")]
pub async fn get_healthz() -> HttpResponse {
    json(StatusCode::OK, body!({"status": "ok"}))
}

/// Readiness: the database is reachable
#[utoipa::path(
    tag = "meta",
    responses(
        (status = 200, description = "Ready.", body = Health),
        (status = 503, description = "`not_ready`: the database is not reachable.", body = ErrorBody),
    )
)]
#[get("/readyz")]
pub async fn get_readyz(state: Data<IdpState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => json(StatusCode::OK, body!({"status": "ok", "database": "ok"})),
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed: database unreachable");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                body!({
                    "error": "not_ready",
                    "error_description": "the database is not reachable",
                    "request_id": crate::telemetry::current_request_id(),
                }),
            )
        }
    }
}

/// The probe older sample deployments use
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "`ok`.", body = String, content_type = "text/plain"))
)]
#[get("/deployed")]
pub async fn get_deployed() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// The public keys (JWKS)
///
/// Every configured public key with its `kid`. Relying parties may cache it for five minutes
/// and should fetch again when a token names a `kid` they do not know (the emulator does).
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "The key set.", body = Jwks))
)]
#[get("/.well-known/jwks.json")]
pub async fn get_jwks(state: Data<IdpState>) -> HttpResponse {
    let mut response = json(StatusCode::OK, state.issuer.apps().jwks());
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// This description (OpenAPI 3.1)
///
/// Generated from the routes as they are mounted, so it lists exactly what the server answers.
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document.", body = Object))
)]
#[get("/openapi.json")]
pub async fn get_openapi(description: Data<Description>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(description.json.clone())
}
