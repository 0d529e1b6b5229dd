//! Health and key publication: `/healthz` (alive), `/readyz` (database reachable),
//! `/deployed` (the probe older sample deployments use), `/.well-known/jwks.json`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::web::Data;
use serde_json::json as body;

use super::json;
use crate::idp::IdpState;

pub async fn get_healthz() -> HttpResponse {
    json(StatusCode::OK, body!({"status": "ok"}))
}

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

pub async fn get_deployed() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// Every configured public key with its `kid`. Relying parties may cache it for five minutes
/// and should fetch again when a token names a `kid` they do not know (the emulator does).
pub async fn get_jwks(state: Data<IdpState>) -> HttpResponse {
    let mut response = json(StatusCode::OK, state.issuer.apps().jwks());
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
