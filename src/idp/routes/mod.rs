//! The identity provider's routes, each registered through utoipa-actix-web so that the router
//! and the OpenAPI description ([`super::openapi`]) come from the same calls: a handler is
//! mounted by `service(handler)`, which also adds its `#[utoipa::path]` operation. A method a
//! path does not support answers a JSON 405, and an unknown path a JSON 404, so clients always
//! get the face's format.

mod accounts;
mod admin;
mod inspect;
mod lifecycle;
mod login;
mod meta;

use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::IdpError;
use super::extract::require_admin;
use super::openapi::Description;
use crate::clock::rfc3339;
use crate::store::User;

/// Every route of the identity provider. Nothing is mounted here except through
/// `service(...)` of a documented handler (or the fallbacks), so a route cannot exist without
/// its description; `tests/api/openapi.rs` probes both directions.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(accounts::post_users)
        .service(accounts::get_me)
        .service(accounts::patch_me)
        .service(accounts::delete_me)
        .service(lifecycle::post_verify)
        .service(lifecycle::get_verify_form)
        .service(lifecycle::post_verify_form)
        .service(lifecycle::post_password_resets)
        .service(lifecycle::post_password_resets_confirm)
        .service(lifecycle::get_reset_form)
        .service(lifecycle::post_reset_form)
        .service(login::post_authenticate)
        .service(login::post_sessions)
        .service(login::delete_session)
        .service(login::post_identity_tokens)
        .service(meta::get_jwks)
        .service(meta::get_healthz)
        .service(meta::get_readyz)
        .service(meta::get_deployed)
        .service(meta::get_openapi)
        .service(
            utoipa_actix_web::scope("/admin")
                .wrap(actix_web::middleware::from_fn(require_admin))
                .service(admin::get_users)
                .service(admin::post_users)
                .service(admin::get_user)
                .service(admin::patch_user)
                .service(admin::delete_user)
                .service(admin::get_audit)
                .service(admin::post_disable)
                .service(admin::post_enable)
                .service(inspect::post_tokens_inspect)
                .default_service(web::to(no_route)),
        )
        .default_service(web::to(no_route));
}

/// No route took the request: 405 with `Allow` when the path is a documented one (another
/// method is), else 404. Each handler is its own resource guarded by its method, so a method
/// that no handler takes falls through to here.
async fn no_route(req: HttpRequest, description: Option<web::Data<Description>>) -> HttpResponse {
    let allowed = description
        .as_ref()
        .and_then(|d| d.routes.methods_of(req.path()));
    match allowed {
        Some(methods) => {
            let mut response = IdpError::MethodNotAllowed.error_response();
            if let Ok(value) = HeaderValue::from_str(&methods.join(", ")) {
                response.headers_mut().insert(ALLOW, value);
            }
            response
        }
        None => IdpError::NotFound(format!("there is no {} {}", req.method(), req.path()))
            .error_response(),
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|e, _| IdpError::InvalidRequest(format!("invalid path: {e}")).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|e, _| IdpError::InvalidRequest(format!("invalid query string: {e}")).into())
}

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<String>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            disabled: user.is_disabled(),
            email_verified: user.email_verified(),
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            first_name: user.first_name,
            last_name: user.last_name,
            avatar_url: user.avatar_url,
        }
    }
}

/// The body of every successful token issuance. Both keys carry the same token: Instastart
/// clients read `identity_token`, Rails-era and Atlas Messenger clients `layer_identity_token`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityTokenBody {
    pub identity_token: String,
    pub layer_identity_token: String,
}

impl IdentityTokenBody {
    pub fn new(token: String) -> Self {
        Self {
            layer_identity_token: token.clone(),
            identity_token: token,
        }
    }
}

/// A JSON answer that no cache keeps: identity tokens, session tokens and user records must
/// not outlive the response in a browser or proxy cache. (The JWKS, which is public, sets its
/// own `Cache-Control`.)
pub fn json<T: Serialize>(status: actix_web::http::StatusCode, body: T) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `202 Accepted`: what a request whose outcome must not be revealed answers (a private
/// sign-up, a password reset request).
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: &'static str,
    pub message: &'static str,
}
