//! The admin API under `/admin/`: list, look up, create (with a given ID, for importing an
//! existing user base), disable, enable and delete users. Every route requires an admin token
//! (`layer-idp admin-tokens create`), which the store keeps only as a hash.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use serde::{Deserialize, Serialize};

use super::{UserView, json};
use crate::clock::unix_now;
use crate::domain::{Email, Password, UserId};
use crate::idp::IdpState;
use crate::idp::accounts::{self, NewAccount, ProfileInput};
use crate::idp::client::ClientAddr;
use crate::idp::error::IdpError;
use crate::idp::extract::{Admin, Body};
use crate::idp::password::HashRequest;
use crate::store::{AccountUpdate, StoreError};

const MAX_PAGE: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct UserPage {
    users: Vec<UserView>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
    total: i64,
}

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
        .list_users(query.after.as_deref(), limit)
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Keep an existing user's ID (it is their `prn` at Layer); generated when absent.
    id: Option<String>,
    email: String,
    password: Option<String>,
    /// A hash from another system (bcrypt, Django PBKDF2, PHC argon2/scrypt/PBKDF2), stored
    /// as given; instead of `password`.
    password_hash: Option<String>,
    #[serde(flatten)]
    profile: ProfileInput,
}

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
    Ok(json(StatusCode::CREATED, UserView::from(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    email: Option<String>,
    #[serde(default, deserialize_with = "super::accounts::present")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::accounts::present")]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::accounts::present")]
    last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::accounts::present")]
    avatar_url: Option<Option<String>>,
    email_verified: Option<bool>,
    password: Option<String>,
}

/// Changes a user's profile, e-mail, `email_verified` or password; a new password ends every
/// session of the user. Everything is parsed (and a password hashed) before anything is
/// written.
pub async fn patch_user(
    state: Data<IdpState>,
    admin: Admin,
    client: ClientAddr,
    id: Path<String>,
    Body(patch): Body<UserPatch>,
) -> Result<HttpResponse, IdpError> {
    let user = state
        .store
        .find_user(&id)
        .await?
        .ok_or_else(|| no_such_user(&id))?;
    let email = Email::parse(patch.email.as_deref().unwrap_or(&user.email))?;
    let new_password = match &patch.password {
        Some(raw) => Some(Password::parse(raw, state.hasher.policy())?),
        None => None,
    };
    let profile = ProfileInput {
        display_name: patch
            .display_name
            .clone()
            .unwrap_or(user.display_name.clone()),
        first_name: patch.first_name.clone().unwrap_or(user.first_name.clone()),
        last_name: patch.last_name.clone().unwrap_or(user.last_name.clone()),
        avatar_url: patch.avatar_url.clone().unwrap_or(user.avatar_url.clone()),
    }
    .parse()?;
    let password_hash = match new_password {
        Some(password) => Some(
            state
                .hasher
                .hash(password, HashRequest::login(client))
                .await?,
        ),
        None => None,
    };
    let now = state.clock.now();
    let update = AccountUpdate {
        id: &user.id,
        email: &email,
        profile: &profile,
        password_hash: password_hash.as_deref(),
        keep_session: &[],
        email_verified: patch.email_verified.map(|v| v.then_some(now)),
        now,
    };
    let updated = match state.store.update_account(update).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(no_such_user(&id)),
        Err(StoreError::Conflict) => {
            return Err(IdpError::Conflict {
                code: "email_taken",
                description: "an account with this e-mail address already exists".to_owned(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        admin = %admin.token_name,
        user_id = %updated.id,
        email_changed = email.as_str() != user.email,
        password_changed = password_hash.is_some(),
        "admin updated a user"
    );
    Ok(json(StatusCode::OK, UserView::from(updated)))
}

fn no_such_user(id: &str) -> IdpError {
    IdpError::NotFound(format!("there is no user with the ID {id}"))
}

pub async fn get_user(
    state: Data<IdpState>,
    _admin: Admin,
    id: Path<String>,
) -> Result<HttpResponse, IdpError> {
    let user = state
        .store
        .find_user(&id)
        .await?
        .ok_or_else(|| no_such_user(&id))?;
    Ok(json(StatusCode::OK, UserView::from(user)))
}

pub async fn post_disable(
    state: Data<IdpState>,
    admin: Admin,
    id: Path<String>,
) -> Result<HttpResponse, IdpError> {
    let user = state
        .store
        .set_disabled(&id, true, unix_now())
        .await?
        .ok_or_else(|| no_such_user(&id))?;
    tracing::info!(admin = %admin.token_name, user_id = %user.id, "admin disabled a user");
    Ok(json(StatusCode::OK, UserView::from(user)))
}

pub async fn post_enable(
    state: Data<IdpState>,
    admin: Admin,
    id: Path<String>,
) -> Result<HttpResponse, IdpError> {
    let user = state
        .store
        .set_disabled(&id, false, unix_now())
        .await?
        .ok_or_else(|| no_such_user(&id))?;
    tracing::info!(admin = %admin.token_name, user_id = %user.id, "admin enabled a user");
    Ok(json(StatusCode::OK, UserView::from(user)))
}

pub async fn delete_user(
    state: Data<IdpState>,
    admin: Admin,
    id: Path<String>,
) -> Result<HttpResponse, IdpError> {
    if !state.store.delete_user(&id).await? {
        return Err(no_such_user(&id));
    }
    tracing::info!(admin = %admin.token_name, user_id = %id, "admin deleted a user");
    Ok(HttpResponse::NoContent().finish())
}
