//! `POST /users` (sign-up), `GET /users/me`, `PATCH /users/me`.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpResponse, delete, get, patch, post};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::{Accepted, UserView, json};
use crate::config::SignupMode;
use crate::domain::{Email, Password};
use crate::idp::IdpState;
use crate::idp::accounts::{self, NewAccount, ProfileInput};
use crate::idp::audit::{self, Actor, Event};
use crate::idp::client::ClientAddr;
use crate::idp::error::IdpError;
use crate::idp::extract::{Body, SessionUser};
use crate::idp::lifecycle;
use crate::idp::openapi::ErrorBody;
use crate::idp::password::HashRequest;
use crate::store::{AccountUpdate, StoreError};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// An e-mail address: `name@domain`, no spaces, at most 254 bytes once trimmed.
    email: String,
    /// At least `[passwords] min_length` characters (8 by default) and at most 1024, counted
    /// after NFKC normalisation.
    password: String,
    #[serde(flatten)]
    profile: ProfileInput,
}

/// Signs a user up
///
/// The ID is generated and never changes. The answer depends on `[accounts] signup`: `open`
/// answers the new user, `private` answers 202 whether or not the address was taken (its owner
/// is told by mail), `closed` refuses.
#[utoipa::path(
    tag = "accounts",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "The new user (`signup = \"open\"`).", body = UserView),
        (status = 202, description = "Accepted (`signup = \"private\"`): check the inbox.", body = Accepted),
        (status = 403, description = "`signup_closed`.", body = ErrorBody),
        (status = 409, description = "`email_taken` (`signup = \"open\"`).", body = ErrorBody),
        (status = 422, description = "`invalid_value`: the e-mail, password or a profile field breaks a rule.", body = ErrorBody),
        (status = 429, description = "`too_many_signups` from this address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`temporarily_unavailable`: too many password hashes queued.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/users")]
pub async fn post_users(
    state: Data<IdpState>,
    client: ClientAddr,
    Body(request): Body<SignUpRequest>,
) -> Result<HttpResponse, IdpError> {
    let account = NewAccount::parse(
        None,
        &request.email,
        &request.password,
        &request.profile,
        state.hasher.policy(),
    )?;
    let mode = state.lifecycle.accounts.signup;
    if mode == SignupMode::Closed {
        return Err(IdpError::Refused {
            code: "signup_closed",
            description: "sign-up is closed; an administrator creates accounts".to_owned(),
        });
    }
    // Counted once the request is valid, before the hash it would cost.
    state.throttle.admit_signup(client).await?;
    let email = account.email.as_str().to_owned();
    let created = accounts::create_account(
        state.store.as_ref(),
        &state.hasher,
        account,
        HashRequest::sign_up(client),
    )
    .await;
    match (mode, created) {
        (_, Ok(user)) => {
            audit::record(
                state.store.as_ref(),
                state.clock.now(),
                Event {
                    kind: "sign_up",
                    actor: Actor::Anonymous,
                    subject: Some(&user.id),
                    client: Some(client),
                    outcome: "created",
                },
            )
            .await;
            lifecycle::send_verification(&state, &user).await?;
            if mode == SignupMode::Private {
                Ok(json(StatusCode::ACCEPTED, signup_accepted()))
            } else {
                Ok(json(StatusCode::CREATED, UserView::from(user)))
            }
        }
        // Private sign-up: a taken address answers like a new one, after the same hashing
        // work, and its owner is told.
        (
            SignupMode::Private,
            Err(IdpError::Conflict {
                code: "email_taken",
                ..
            }),
        ) => {
            lifecycle::send_signup_attempt(&state, &email);
            Ok(json(StatusCode::ACCEPTED, signup_accepted()))
        }
        (_, Err(e)) => Err(e),
    }
}

fn signup_accepted() -> Accepted {
    Accepted {
        status: "accepted",
        message: "check your inbox to confirm your address",
    }
}

/// The caller's account
#[utoipa::path(
    tag = "accounts",
    security(("session" = [])),
    responses((status = 200, description = "The user behind the session.", body = UserView))
)]
#[get(
    "/users/me",
    wrap = "actix_web::middleware::from_fn(crate::idp::extract::require_session)"
)]
pub async fn get_me(caller: SessionUser) -> HttpResponse {
    json(StatusCode::OK, UserView::from(caller.user))
}

/// `null` and `""` clear a profile field; an absent key leaves it alone.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// An e-mail address: `name@domain`, no spaces, at most 254 bytes once trimmed.
    email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    /// An absolute http(s) URL of at most 1024 characters once surrounding whitespace is
    /// trimmed; empty means none.
    avatar_url: Option<Option<String>>,
    /// At least `[passwords] min_length` characters (8 by default) and at most 1024, counted
    /// after NFKC normalisation.
    password: Option<String>,
    current_password: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Updates the caller's profile
///
/// Changing the e-mail or the password requires the current password; a new password ends
/// every other session of the account. A new e-mail is unverified until its owner follows the
/// link mailed to it.
#[utoipa::path(
    tag = "accounts",
    security(("session" = [])),
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "The updated user.", body = UserView),
        (status = 400, description = "`invalid_request`: `current_password` without a new e-mail or password, or missing with one.", body = ErrorBody),
        (status = 403, description = "`forbidden`: `current_password` is wrong.", body = ErrorBody),
        (status = 404, description = "`not_found`: the account no longer exists.", body = ErrorBody),
        (status = 409, description = "`email_taken`.", body = ErrorBody),
        (status = 422, description = "`invalid_value`: a value breaks a rule.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: password checks for this account or address are held.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`temporarily_unavailable`: too many password hashes queued.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[patch(
    "/users/me",
    wrap = "actix_web::middleware::from_fn(crate::idp::extract::require_session)"
)]
pub async fn patch_me(
    state: Data<IdpState>,
    caller: SessionUser,
    client: ClientAddr,
    Body(patch): Body<ProfilePatch>,
) -> Result<HttpResponse, IdpError> {
    let user = caller.user;
    // Parse everything before touching anything.
    let email = match &patch.email {
        Some(raw) => Email::parse(raw)?,
        None => Email::parse(&user.email)?,
    };
    let new_password = match &patch.password {
        Some(raw) => Some(Password::parse(raw, state.hasher.policy())?),
        None => None,
    };
    let current = ProfileInput {
        display_name: user.display_name.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        avatar_url: user.avatar_url.clone(),
    };
    let merged = ProfileInput {
        display_name: patch.display_name.clone().unwrap_or(current.display_name),
        first_name: patch.first_name.clone().unwrap_or(current.first_name),
        last_name: patch.last_name.clone().unwrap_or(current.last_name),
        avatar_url: patch.avatar_url.clone().unwrap_or(current.avatar_url),
    };
    let profile = merged.parse()?;

    let email_changes = email.as_str() != user.email;
    if email_changes || new_password.is_some() {
        accounts::confirm_password(&state, &user, patch.current_password.as_deref(), client)
            .await?;
    } else if patch.current_password.is_some() {
        return Err(IdpError::InvalidRequest(
            "current_password is only needed with a new email or password".to_owned(),
        ));
    }
    // Hash before writing anything: a hash can be refused (503 when the pool is saturated),
    // and then nothing must have changed.
    let password_hash = match new_password {
        Some(password) => Some(
            state
                .hasher
                .hash(password, HashRequest::login(client))
                .await?,
        ),
        None => None,
    };
    let update = AccountUpdate {
        id: &user.id,
        email: &email,
        profile: &profile,
        password_hash: password_hash.as_deref(),
        keep_session: &caller.token_hash,
        email_verified: None,
        now: state.clock.now(),
    };
    let updated = match state.store.update_account(update).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Err(IdpError::NotFound(
                "the account no longer exists".to_owned(),
            ));
        }
        Err(StoreError::Conflict) => {
            return Err(IdpError::Conflict {
                code: "email_taken",
                description: "an account with this e-mail address already exists".to_owned(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if password_hash.is_some() {
        tracing::info!(user_id = %user.id, "password changed; other sessions ended");
    }
    if email_changes {
        // The new address is unverified until its owner follows the new link.
        lifecycle::send_verification(&state, &updated).await?;
    }
    for (changed, kind) in [
        (email_changes, "email_change"),
        (password_hash.is_some(), "password_change"),
    ] {
        if changed {
            audit::record(
                state.store.as_ref(),
                state.clock.now(),
                Event {
                    kind,
                    actor: Actor::User(&user.id),
                    subject: Some(&user.id),
                    client: Some(client),
                    outcome: "changed",
                },
            )
            .await;
        }
    }
    Ok(json(StatusCode::OK, UserView::from(updated)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMe {
    current_password: Option<String>,
}

/// Deletes the caller's account
///
/// Every session of it ends, after the current password is checked (throttled like a login).
/// The ID is kept as taken, never given to anyone else.
#[utoipa::path(
    tag = "accounts",
    security(("session" = [])),
    request_body = DeleteMe,
    responses(
        (status = 204, description = "The account and its sessions are gone."),
        (status = 400, description = "`invalid_request`: `current_password` is missing.", body = ErrorBody),
        (status = 403, description = "`forbidden`: `current_password` is wrong.", body = ErrorBody),
        (status = 404, description = "`not_found`: the account no longer exists.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`temporarily_unavailable`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[delete(
    "/users/me",
    wrap = "actix_web::middleware::from_fn(crate::idp::extract::require_session)"
)]
pub async fn delete_me(
    state: Data<IdpState>,
    caller: SessionUser,
    client: ClientAddr,
    Body(request): Body<DeleteMe>,
) -> Result<HttpResponse, IdpError> {
    let Some(password) = request.current_password.as_deref() else {
        return Err(IdpError::InvalidRequest(
            "deleting the account requires current_password".to_owned(),
        ));
    };
    accounts::confirm_password(&state, &caller.user, Some(password), client).await?;
    if !state.store.delete_user(&caller.user.id).await? {
        return Err(IdpError::NotFound(
            "the account no longer exists".to_owned(),
        ));
    }
    tracing::info!(user_id = %caller.user.id, "account deleted by its owner");
    audit::record(
        state.store.as_ref(),
        state.clock.now(),
        Event {
            kind: "account_deleted",
            actor: Actor::User(&caller.user.id),
            subject: Some(&caller.user.id),
            client: Some(client),
            outcome: "deleted",
        },
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}
