//! The identity provider's routes. Each resource answers a method it does not support with a
//! JSON 405, and an unknown path with a JSON 404, so clients always get the face's format.

mod accounts;
mod admin;
mod inspect;
mod lifecycle;
mod login;
mod meta;

use actix_web::{HttpRequest, HttpResponse, Resource, middleware, web};
use serde::Serialize;

use super::error::IdpError;
use super::extract::{require_admin, require_session};
use crate::clock::rfc3339;
use crate::store::User;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let session = || middleware::from_fn(require_session);
    cfg.service(resource("/users").route(web::post().to(accounts::post_users)))
        .service(
            resource("/users/me")
                .wrap(session())
                .route(web::get().to(accounts::get_me))
                .route(web::patch().to(accounts::patch_me))
                .route(web::delete().to(accounts::delete_me)),
        )
        .service(resource("/users/verify").route(web::post().to(lifecycle::post_verify)))
        .service(
            resource("/users/verify/form")
                .route(web::get().to(lifecycle::get_verify_form))
                .route(web::post().to(lifecycle::post_verify_form)),
        )
        .service(
            resource("/password_resets").route(web::post().to(lifecycle::post_password_resets)),
        )
        .service(
            resource("/password_resets/confirm")
                .route(web::post().to(lifecycle::post_password_resets_confirm)),
        )
        .service(
            resource("/password_resets/form")
                .route(web::get().to(lifecycle::get_reset_form))
                .route(web::post().to(lifecycle::post_reset_form)),
        )
        .service(resource("/authenticate").route(web::post().to(login::post_authenticate)))
        .service(resource("/sessions").route(web::post().to(login::post_sessions)))
        .service(
            resource("/sessions/current")
                .wrap(session())
                .route(web::delete().to(login::delete_session)),
        )
        .service(
            resource("/identity_tokens")
                .wrap(session())
                .route(web::post().to(login::post_identity_tokens)),
        )
        .service(resource("/.well-known/jwks.json").route(web::get().to(meta::get_jwks)))
        .service(resource("/healthz").route(web::get().to(meta::get_healthz)))
        .service(resource("/readyz").route(web::get().to(meta::get_readyz)))
        .service(resource("/deployed").route(web::get().to(meta::get_deployed)))
        .service(
            web::scope("/admin")
                .wrap(middleware::from_fn(require_admin))
                .service(
                    resource("/users")
                        .route(web::get().to(admin::get_users))
                        .route(web::post().to(admin::post_users)),
                )
                .service(
                    resource("/users/{id}")
                        .route(web::get().to(admin::get_user))
                        .route(web::patch().to(admin::patch_user))
                        .route(web::delete().to(admin::delete_user)),
                )
                .service(resource("/audit").route(web::get().to(admin::get_audit)))
                .service(resource("/users/{id}/disable").route(web::post().to(admin::post_disable)))
                .service(resource("/users/{id}/enable").route(web::post().to(admin::post_enable)))
                .service(
                    resource("/tokens/inspect").route(web::post().to(inspect::post_tokens_inspect)),
                )
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, IdpError> {
    Err(IdpError::NotFound(format!(
        "there is no {} {}",
        req.method(),
        req.path()
    )))
}

async fn method_not_allowed() -> Result<HttpResponse, IdpError> {
    Err(IdpError::MethodNotAllowed)
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
#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
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
