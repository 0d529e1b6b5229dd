//! `POST /users/verify`, `POST /password_resets`, `POST /password_resets/confirm`, and the
//! minimal built-in pages for teams without a web app of their own: `/password_resets/form`
//! and `/users/verify/form` (plain HTML, no script, no external assets). Tokens in their query
//! strings never reach the log: the request log records route patterns only.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use serde::Deserialize;
use serde_json::json as json_value;

use super::{UserView, json};
use crate::idp::IdpState;
use crate::idp::client::ClientAddr;
use crate::idp::error::IdpError;
use crate::idp::extract::Body;
use crate::idp::lifecycle;
use crate::idp::mail::escape_html;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    token: String,
    password: String,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// Marks the address verified and answers the user.
pub async fn post_verify(
    state: Data<IdpState>,
    Body(request): Body<TokenRequest>,
) -> Result<HttpResponse, IdpError> {
    let user = lifecycle::verify_email(&state, &request.token).await?;
    Ok(json(StatusCode::OK, UserView::from(user)))
}

/// Always 202 with the same body, account or not.
pub async fn post_password_resets(
    state: Data<IdpState>,
    client: ClientAddr,
    Body(request): Body<ResetRequest>,
) -> Result<HttpResponse, IdpError> {
    lifecycle::request_reset(&state.into_inner(), &request.email, client).await?;
    Ok(json(StatusCode::ACCEPTED, reset_accepted()))
}

fn reset_accepted() -> serde_json::Value {
    json_value!({
        "status": "accepted",
        "message": "if an account has this address, a link to reset its password is on its way"
    })
}

pub async fn post_password_resets_confirm(
    state: Data<IdpState>,
    client: ClientAddr,
    Body(request): Body<ConfirmRequest>,
) -> Result<HttpResponse, IdpError> {
    let user = lifecycle::confirm_reset(&state, &request.token, &request.password, client).await?;
    Ok(json(StatusCode::OK, UserView::from(user)))
}

/// The built-in reset form: with a token, the new-password form; without, the form that asks
/// for a link.
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetFormPost {
    email: Option<String>,
    token: Option<String>,
    password: Option<String>,
}

/// The built-in reset form, submitted.
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

/// The built-in verification page: a button, so a mail scanner following the link verifies
/// nothing.
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
