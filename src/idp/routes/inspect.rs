//! `POST /admin/tokens/inspect`: the token inspector for administrators. It takes any identity
//! token — one this layer-idp signed, or one the customer's own code minted — and reports
//! Layer's rules one by one (see [`crate::identity_token`]), against this layer-idp's keys,
//! a JWKS URL, or a public key given in the request. The token is never logged.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpResponse, post};
use serde::Deserialize;
use utoipa::ToSchema;

use super::json;
use crate::app_id::{AppId, ClientAppId};
use crate::identity_token::keys::KeySet;
use crate::identity_token::{self, Options};
use crate::idp::IdpState;
use crate::idp::error::IdpError;
use crate::idp::extract::{Admin, Body};
use crate::idp::keys::inspection_key_set;
use crate::idp::openapi::ErrorBody;

/// A PEM public key is a few hundred bytes; this leaves room for 8192-bit keys.
const MAX_PUBLIC_KEY_BYTES: usize = 16 * 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectRequest {
    token: String,
    /// Check against this JWKS instead of this layer-idp's keys.
    jwks_url: Option<String>,
    /// Check against this SubjectPublicKeyInfo PEM instead (whatever the `kid`).
    public_key: Option<String>,
    /// The provider ID `iss` must be.
    provider_id: Option<String>,
    /// The app the token is for (full ID or bare UUID of a configured app).
    app_id: Option<String>,
    /// The time to check `iat`/`exp` against, Unix seconds; default now.
    at: Option<i64>,
}

/// Inspects an identity token
///
/// Reports Layer's rules one by one, with Layer's `eit_*` reason and the likely cause of each
/// failure, against this layer-idp's keys, a JWKS URL or a public key.
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    request_body = InspectRequest,
    responses(
        (status = 200, description = "The report (also for a token that fails every rule).", body = identity_token::Report),
        (status = 400, description = "`invalid_request`: both `jwks_url` and `public_key`, a JWKS that cannot be fetched, a key that cannot be read, or an `app_id` this layer-idp does not sign for.", body = ErrorBody),
    )
)]
#[post("/tokens/inspect")]
pub async fn post_tokens_inspect(
    state: Data<IdpState>,
    _admin: Admin,
    Body(request): Body<InspectRequest>,
) -> Result<HttpResponse, IdpError> {
    let keys = match (&request.jwks_url, &request.public_key) {
        (Some(_), Some(_)) => {
            return Err(IdpError::InvalidRequest(
                "give jwks_url or public_key, not both".to_owned(),
            ));
        }
        (Some(url), None) => KeySet::from_jwks_url(url)
            .await
            .map_err(IdpError::InvalidRequest)?,
        (None, Some(pem)) => public_key_set(pem)?,
        (None, None) => state.issuer.apps().inspection_keys(),
    };
    let app = request
        .app_id
        .as_deref()
        .map(|raw| app_named(&state, raw))
        .transpose()?;
    let options = Options {
        app,
        provider_id: request.provider_id,
        now: request.at.unwrap_or_else(|| state.clock.now()),
    };
    let report = identity_token::inspect(&request.token, &keys, &options);
    Ok(json(StatusCode::OK, report))
}

fn public_key_set(pem: &str) -> Result<KeySet, IdpError> {
    if pem.len() > MAX_PUBLIC_KEY_BYTES {
        return Err(IdpError::InvalidRequest(format!(
            "public_key is longer than {MAX_PUBLIC_KEY_BYTES} bytes"
        )));
    }
    inspection_key_set(pem.as_bytes(), "the public key given")
        .map_err(|e| IdpError::InvalidRequest(format!("public_key: {e}")))
}

/// A full app ID as given, or the configured app whose UUID a bare one names.
fn app_named(state: &IdpState, raw: &str) -> Result<AppId, IdpError> {
    if let Ok(app) = AppId::parse(raw) {
        return Ok(app);
    }
    let client =
        ClientAppId::parse(raw).map_err(|e| IdpError::InvalidRequest(format!("app_id: {e}")))?;
    state
        .issuer
        .apps()
        .rings()
        .iter()
        .filter_map(|ring| ring.app_id())
        .find(|app| client.names(app))
        .ok_or_else(|| {
            IdpError::InvalidRequest(format!(
                "app_id {raw} is not an app this layer-idp signs for"
            ))
        })
}
