//! The admin API under `/admin/`: list, look up, create (with a given ID, for importing an
//! existing user base), disable, enable and delete users. Every route requires an admin token
//! (`layer-idp admin-tokens create`), which the store keeps only as a hash.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpResponse, delete, get, patch, post};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{UserView, json};
use crate::clock::unix_now;
use crate::domain::{Email, UserId};
use crate::idp::IdpState;
use crate::idp::accounts::{self, NewAccount, ProfileInput, UserChanges};
use crate::idp::audit::{self, Actor, Event};
use crate::idp::client::ClientAddr;
use crate::idp::error::IdpError;
use crate::idp::extract::{Admin, Body};
use crate::idp::openapi::ErrorBody;
use crate::idp::password::HashRequest;
use crate::store::{AuditEvent, User};

const MAX_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The `next_after` of the previous page.
    after: Option<String>,
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A page of users, by ID.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    users: Vec<UserView>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
    total: i64,
}

/// Lists users
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of users.", body = UserPage),
        (status = 400, description = "`invalid_request`: a bad or unknown query parameter.", body = ErrorBody),
    )
)]
#[get("/users")]
pub async fn get_users(
    state: Data<IdpState>,
    _admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<HttpResponse, IdpError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(IdpError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let users = state
        .store
        .list_users(query_user_id("after", query.after.as_deref())?, limit)
        .await?;
    let total = state.store.count_users().await?;
    let next_after = (users.len() == limit as usize)
        .then(|| users.last().map(|u| u.id.clone()))
        .flatten();
    Ok(json(
        StatusCode::OK,
        UserPage {
            users: users.into_iter().map(UserView::from).collect(),
            next_after,
            total,
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Keep an existing user's ID (it is their `prn` at Layer); generated when absent.
    id: Option<String>,
    /// An e-mail address: `name@domain`, no spaces, at most 254 bytes once trimmed.
    email: String,
    /// At least `[passwords] min_length` characters (8 by default) and at most 1024, counted
    /// after NFKC normalisation.
    password: Option<String>,
    /// A hash from another system (bcrypt, Django PBKDF2, PHC argon2/scrypt/PBKDF2), stored
    /// as given; instead of `password`.
    password_hash: Option<String>,
    /// Marks the e-mail address verified from the start (an address the other system had
    /// verified); unverified when absent.
    #[serde(default)]
    email_verified: bool,
    #[serde(flatten)]
    profile: ProfileInput,
}

/// Creates or imports a user
///
/// With `password`, or with `password_hash` (a hash from another system, stored as given).
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The new user.", body = UserView),
        (status = 400, description = "`invalid_request`: not exactly one of `password` and `password_hash`, or an unsupported or over-cost hash.", body = ErrorBody),
        (status = 409, description = "`email_taken`, or `id_taken` (also for a deleted account's ID).", body = ErrorBody),
        (status = 422, description = "`invalid_value`: a value breaks a rule.", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: too many password hashes queued.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/users")]
pub async fn post_users(
    state: Data<IdpState>,
    admin: Admin,
    client: ClientAddr,
    Body(request): Body<CreateUserRequest>,
) -> Result<HttpResponse, IdpError> {
    let password = match (request.password, request.password_hash) {
        (Some(password), None) => password,
        (None, Some(hash)) => {
            let id = match request.id.as_deref() {
                Some(id) => UserId::parse(id)?,
                None => UserId::generate(),
            };
            let email = Email::parse(&request.email)?;
            let profile = request.profile.parse()?;
            state
                .hasher
                .check_stored(&hash)
                .map_err(|refused| IdpError::InvalidRequest(format!("password_hash: {refused}")))?;
            let user = accounts::insert_account(state.store.as_ref(), &id, &email, &profile, &hash)
                .await?;
            tracing::info!(admin = %admin.token_name, user_id = %user.id, "admin imported a user with a password hash");
            let user = verify_if_asked(&state, user, request.email_verified).await?;
            admin_event(&state, &admin, client, "admin_create_user", &user.id).await;
            return Ok(json(StatusCode::CREATED, UserView::from(user)));
        }
        _ => {
            return Err(IdpError::InvalidRequest(
                "give exactly one of password and password_hash".to_owned(),
            ));
        }
    };
    let account = NewAccount::parse(
        request.id.as_deref(),
        &request.email,
        &password,
        &request.profile,
        state.hasher.policy(),
    )?;
    // An administrator's import is trusted work: the login lane, not the sign-up share.
    let user = accounts::create_account(
        state.store.as_ref(),
        &state.hasher,
        account,
        HashRequest::login(client),
    )
    .await?;
    tracing::info!(admin = %admin.token_name, user_id = %user.id, "admin created a user");
    let user = verify_if_asked(&state, user, request.email_verified).await?;
    admin_event(&state, &admin, client, "admin_create_user", &user.id).await;
    Ok(json(StatusCode::CREATED, UserView::from(user)))
}

/// Marks a just-created user's address verified when the admin said it was.
async fn verify_if_asked(state: &IdpState, user: User, verified: bool) -> Result<User, IdpError> {
    if !verified {
        return Ok(user);
    }
    let marked = state
        .store
        .mark_email_verified(&user.id, state.clock.now())
        .await?;
    Ok(marked.unwrap_or(user))
}

/// Changes a user
///
/// The profile, e-mail, `email_verified` or password; a new password ends every session of the
/// user.
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    request_body = UserChanges,
    responses(
        (status = 200, description = "The updated user.", body = UserView),
        (status = 404, description = "`not_found`: no user has this ID.", body = ErrorBody),
        (status = 409, description = "`email_taken`.", body = ErrorBody),
        (status = 422, description = "`invalid_value`: a value breaks a rule.", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: too many password hashes queued.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[patch("/users/{id}")]
pub async fn patch_user(
    state: Data<IdpState>,
    admin: Admin,
    client: ClientAddr,
    id: Path<String>,
    Body(changes): Body<UserChanges>,
) -> Result<HttpResponse, IdpError> {
    let id = possible_id(&id)?;
    let updated = accounts::update_user(
        state.store.as_ref(),
        &state.hasher,
        id,
        changes,
        HashRequest::login(client),
        state.clock.now(),
    )
    .await?;
    tracing::info!(admin = %admin.token_name, user_id = %updated.id, "admin updated a user");
    admin_event(&state, &admin, client, "admin_update_user", &updated.id).await;
    Ok(json(StatusCode::OK, UserView::from(updated)))
}

async fn admin_event(state: &IdpState, admin: &Admin, client: ClientAddr, kind: &str, id: &str) {
    audit::record(
        state.store.as_ref(),
        state.clock.now(),
        Event {
            kind,
            actor: Actor::Admin(&admin.token_name),
            subject: Some(id),
            client: Some(client),
            outcome: "done",
        },
    )
    .await;
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// An event ID: the events after it (default 0).
    after: Option<i64>,
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only the events about this user.
    user_id: Option<String>,
}

/// A page of audit events, oldest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    events: Vec<AuditEvent>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<i64>,
}

/// The audit trail
///
/// Oldest first: `after` an event ID, at most `limit` (default 100, at most 1000), only about
/// `user_id` when given.
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of events.", body = AuditPage),
        (status = 400, description = "`invalid_request`: a bad or unknown query parameter.", body = ErrorBody),
    )
)]
#[get("/audit")]
pub async fn get_audit(
    state: Data<IdpState>,
    _admin: Admin,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, IdpError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(IdpError::InvalidRequest(
            "limit must be 1 to 1000".to_owned(),
        ));
    }
    let events = state
        .store
        .list_audit_events(
            query.after.unwrap_or(0),
            limit,
            query_user_id("user_id", query.user_id.as_deref())?,
        )
        .await?;
    let next_after = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(json(StatusCode::OK, AuditPage { events, next_after }))
}

fn no_such_user(id: &str) -> IdpError {
    IdpError::NotFound(format!("there is no user with the ID {id}"))
}

/// An ID from the path, if some user could have it: one that is no valid user ID (a control
/// character, say) is no user's, and is answered 404 before the store sees it. PostgreSQL
/// refuses a NUL byte in text outright, which was a 500.
fn possible_id(id: &str) -> Result<&str, IdpError> {
    UserId::parse(id).map(|_| id).map_err(|_| no_such_user(id))
}

/// A user ID given as a query parameter, refused with 400 unless it is a valid one.
fn query_user_id<'a>(name: &str, raw: Option<&'a str>) -> Result<Option<&'a str>, IdpError> {
    match raw {
        Some(raw) => UserId::parse(raw)
            .map(|_| Some(raw))
            .map_err(|e| IdpError::InvalidRequest(format!("{name}: {}", e.reason))),
        None => Ok(None),
    }
}

/// Looks up a user
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 404, description = "`not_found`: no user has this ID.", body = ErrorBody),
    )
)]
#[get("/users/{id}")]
pub async fn get_user(
    state: Data<IdpState>,
    _admin: Admin,
    id: Path<String>,
) -> Result<HttpResponse, IdpError> {
    let id = possible_id(&id)?;
    let user = state
        .store
        .find_user(id)
        .await?
        .ok_or_else(|| no_such_user(id))?;
    Ok(json(StatusCode::OK, UserView::from(user)))
}

/// Disables a user, ending every session
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 404, description = "`not_found`: no user has this ID.", body = ErrorBody),
    )
)]
#[post("/users/{id}/disable")]
pub async fn post_disable(
    state: Data<IdpState>,
    admin: Admin,
    client: ClientAddr,
    id: Path<String>,
) -> Result<HttpResponse, IdpError> {
    let id = possible_id(&id)?;
    let user = state
        .store
        .set_disabled(id, true, unix_now())
        .await?
        .ok_or_else(|| no_such_user(id))?;
    tracing::info!(admin = %admin.token_name, user_id = %user.id, "admin disabled a user");
    admin_event(&state, &admin, client, "admin_disable_user", &user.id).await;
    Ok(json(StatusCode::OK, UserView::from(user)))
}

/// Enables a disabled user
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 404, description = "`not_found`: no user has this ID.", body = ErrorBody),
    )
)]
#[post("/users/{id}/enable")]
pub async fn post_enable(
    state: Data<IdpState>,
    admin: Admin,
    client: ClientAddr,
    id: Path<String>,
) -> Result<HttpResponse, IdpError> {
    let id = possible_id(&id)?;
    let user = state
        .store
        .set_disabled(id, false, unix_now())
        .await?
        .ok_or_else(|| no_such_user(id))?;
    tracing::info!(admin = %admin.token_name, user_id = %user.id, "admin enabled a user");
    admin_event(&state, &admin, client, "admin_enable_user", &user.id).await;
    Ok(json(StatusCode::OK, UserView::from(user)))
}

/// Deletes a user and every session; the ID is never given to anyone else
#[utoipa::path(
    tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no user has this ID.", body = ErrorBody),
    )
)]
#[delete("/users/{id}")]
pub async fn delete_user(
    state: Data<IdpState>,
    admin: Admin,
    client: ClientAddr,
    id: Path<String>,
) -> Result<HttpResponse, IdpError> {
    let id = possible_id(&id)?;
    if !state.store.delete_user(id).await? {
        return Err(no_such_user(id));
    }
    tracing::info!(admin = %admin.token_name, user_id = %id, "admin deleted a user");
    admin_event(&state, &admin, client, "admin_delete_user", id).await;
    Ok(HttpResponse::NoContent().finish())
}
