//! `POST /users/verify`, `POST /password_resets`, `POST /password_resets/confirm`, and the
//! minimal built-in pages for teams without a web app of their own: `/password_resets/form`
//! and `/users/verify/form` (plain HTML, no script, no external assets). Tokens in their query
//! strings never reach the log: the request log records route patterns only.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::{HttpResponse, get, post};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Accepted, UserView, json};
use crate::idp::IdpState;
use crate::idp::client::ClientAddr;
use crate::idp::error::IdpError;
use crate::idp::extract::Body;
use crate::idp::lifecycle;
use crate::idp::mail::escape_html;
use crate::idp::openapi::ErrorBody;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// An e-mail address: `name@domain`, no spaces, at most 254 bytes once trimmed.
    email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    token: String,
    /// At least `[passwords] min_length` characters (8 by default) and at most 1024, counted
    /// after NFKC normalisation.
    password: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The token from the e-mailed link.
    #[serde(default)]
    #[param(required = false)]
    token: String,
}

/// Verifies an e-mail address
///
/// Marks the address verified with the token from the verification message, and answers the
/// user.
#[utoipa::path(
    tag = "lifecycle",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "The user, `email_verified: true`.", body = UserView),
        (status = 400, description = "`invalid_token`: the token is unknown, used or expired.", body = ErrorBody),
    )
)]
#[post("/users/verify")]
pub async fn post_verify(
    state: Data<IdpState>,
    Body(request): Body<TokenRequest>,
) -> Result<HttpResponse, IdpError> {
    let user = lifecycle::verify_email(&state, &request.token).await?;
    Ok(json(StatusCode::OK, UserView::from(user)))
}

/// Asks for a password reset link
///
/// Always 202 with the same body, account or not; an account with this address is sent a link.
#[utoipa::path(
    tag = "lifecycle",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "Accepted, the same for every address.", body = Accepted),
        (status = 422, description = "`invalid_value`: not an e-mail address.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many requests for this address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/password_resets")]
pub async fn post_password_resets(
    state: Data<IdpState>,
    client: ClientAddr,
    Body(request): Body<ResetRequest>,
) -> Result<HttpResponse, IdpError> {
    lifecycle::request_reset(&state.into_inner(), &request.email, client).await?;
    Ok(json(StatusCode::ACCEPTED, reset_accepted()))
}

fn reset_accepted() -> Accepted {
    Accepted {
        status: "accepted",
        message: "if an account has this address, a link to reset its password is on its way",
    }
}

/// Sets a new password with a reset token
///
/// Every session of the account ends.
#[utoipa::path(
    tag = "lifecycle",
    request_body = ConfirmRequest,
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 400, description = "`invalid_token`: the token is unknown, used or expired.", body = ErrorBody),
        (status = 422, description = "`invalid_value`: the password breaks the policy.", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: too many password hashes queued.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/password_resets/confirm")]
pub async fn post_password_resets_confirm(
    state: Data<IdpState>,
    client: ClientAddr,
    Body(request): Body<ConfirmRequest>,
) -> Result<HttpResponse, IdpError> {
    let user = lifecycle::confirm_reset(&state, &request.token, &request.password, client).await?;
    Ok(json(StatusCode::OK, UserView::from(user)))
}

/// The built-in password reset page
///
/// With a token, the new-password form; without, the form that asks for a link. Plain HTML, no
/// script.
#[utoipa::path(
    tag = "lifecycle",
    params(TokenQuery),
    responses(
        (status = 200, description = "The form.", body = String, content_type = "text/html"),
        (status = 400, description = "The token is unknown, used or expired (a page saying so).", body = String, content_type = "text/html"),
    )
)]
#[get("/password_resets/form")]
pub async fn get_reset_form(
    state: Data<IdpState>,
    Query(query): Query<TokenQuery>,
) -> Result<HttpResponse, IdpError> {
    if query.token.is_empty() {
        return Ok(page(StatusCode::OK, "Reset your password", REQUEST_FORM));
    }
    if !lifecycle::reset_token_is_live(&state, &query.token).await? {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Reset link expired",
            "<p role=\"alert\">This link is unknown, used or expired. Ask for a new one.</p>",
        ));
    }
    Ok(page(
        StatusCode::OK,
        "Choose a new password",
        &reset_form(&query.token, None),
    ))
}

fn reset_form(token: &str, error: Option<&str>) -> String {
    let alert = error
        .map(|e| format!("<p role=\"alert\" id=\"error\">{}</p>", escape_html(e)))
        .unwrap_or_default();
    format!(
        "{alert}<form method=\"post\" action=\"form\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\
         <p><label for=\"password\">New password</label><br>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required{}></p>\
         <p><button type=\"submit\">Set password</button></p></form>",
        escape_html(token),
        if error.is_some() {
            " aria-describedby=\"error\" aria-invalid=\"true\""
        } else {
            ""
        }
    )
}

const REQUEST_FORM: &str = "<form method=\"post\" action=\"form\">\
     <p><label for=\"email\">E-mail address</label><br>\
     <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required></p>\
     <p><button type=\"submit\">Send me a link</button></p></form>";

/// What the built-in reset pages post: `{email}` asks for a link, `{token, password}` sets it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetFormPost {
    /// An e-mail address: `name@domain`, no spaces, at most 254 bytes once trimmed.
    email: Option<String>,
    token: Option<String>,
    /// At least `[passwords] min_length` characters (8 by default) and at most 1024, counted
    /// after NFKC normalisation.
    password: Option<String>,
}

/// The built-in password reset page, submitted
///
/// `email` asks for a link; `token` and `password` set the new password.
#[utoipa::path(
    tag = "lifecycle",
    request_body = ResetFormPost,
    responses(
        (status = 200, description = "The password was changed (a page).", body = String, content_type = "text/html"),
        (status = 202, description = "A link is on its way if the address has an account (a page).", body = String, content_type = "text/html"),
        (status = 400, description = "The token is unknown, used or expired (a page); or, as JSON, `invalid_request`: neither `email` nor `token` and `password`.",
            content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 422, description = "The password breaks the policy (the form again, saying why); as JSON, `invalid_value`: not an e-mail address.",
            content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 429, description = "`too_many_attempts`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`temporarily_unavailable`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/password_resets/form")]
pub async fn post_reset_form(
    state: Data<IdpState>,
    client: ClientAddr,
    Body(post): Body<ResetFormPost>,
) -> Result<HttpResponse, IdpError> {
    let request = match post {
        ResetFormPost {
            email: Some(email),
            token: None,
            password: None,
        } => {
            lifecycle::request_reset(&state.into_inner(), &email, client).await?;
            return Ok(page(
                StatusCode::ACCEPTED,
                "Check your inbox",
                "<p role=\"status\">If an account has this address, a link to reset its password is on its way.</p>",
            ));
        }
        ResetFormPost {
            email: None,
            token: Some(token),
            password: Some(password),
        } => ConfirmRequest { token, password },
        _ => {
            return Err(IdpError::InvalidRequest(
                "send either email, or token and password".to_owned(),
            ));
        }
    };
    match lifecycle::confirm_reset(&state, &request.token, &request.password, client).await {
        Ok(_) => Ok(page(
            StatusCode::OK,
            "Password changed",
            "<p role=\"status\">Your password was changed. Every session was signed out; log in again with the new password.</p>",
        )),
        Err(IdpError::InvalidValue(invalid)) => Ok(page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a new password",
            &reset_form(&request.token, Some(&invalid.to_string())),
        )),
        Err(IdpError::Unprocessable { .. } | IdpError::InvalidRequest(_)) => Ok(page(
            StatusCode::BAD_REQUEST,
            "Reset link expired",
            "<p role=\"alert\">This link is unknown, used or expired. Ask for a new one.</p>",
        )),
        Err(e) => Err(e),
    }
}

/// The built-in verification page
///
/// A button, so a mail scanner following the link verifies nothing.
#[utoipa::path(
    tag = "lifecycle",
    params(TokenQuery),
    responses((status = 200, description = "The page.", body = String, content_type = "text/html"))
)]
#[get("/users/verify/form")]
pub async fn get_verify_form(Query(query): Query<TokenQuery>) -> HttpResponse {
    page(
        StatusCode::OK,
        "Confirm your address",
        &format!(
            "<form method=\"post\" action=\"form\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <p><button type=\"submit\">Confirm my address</button></p></form>",
            escape_html(&query.token)
        ),
    )
}

/// The built-in verification page, submitted
#[utoipa::path(
    tag = "lifecycle",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "The address is confirmed (a page).", body = String, content_type = "text/html"),
        (status = 400, description = "The token is unknown, used or expired (a page).",
            content((String = "text/html"), (ErrorBody = "application/json"))),
    )
)]
#[post("/users/verify/form")]
pub async fn post_verify_form(
    state: Data<IdpState>,
    Body(request): Body<TokenRequest>,
) -> Result<HttpResponse, IdpError> {
    match lifecycle::verify_email(&state, &request.token).await {
        Ok(_) => Ok(page(
            StatusCode::OK,
            "Address confirmed",
            "<p role=\"status\">Your address is confirmed.</p>",
        )),
        Err(IdpError::Unprocessable { .. } | IdpError::InvalidRequest(_)) => Ok(page(
            StatusCode::BAD_REQUEST,
            "Link expired",
            "<p role=\"alert\">This link is unknown, used or expired.</p>",
        )),
        Err(e) => Err(e),
    }
}

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; form-action 'self'",
        ))
        .body(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{0}</title></head><body><main><h1>{0}</h1>{body}</main></body></html>",
            escape_html(title)
        ))
}
