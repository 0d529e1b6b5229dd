//! Account operations shared by the HTTP API and the command line: sign-up (and import with a
//! given ID), login, and profile changes.

use serde::Deserialize;

use super::IdpState;
use super::audit::{self, Actor, Event};
use super::client::ClientAddr;
use super::error::IdpError;
use super::metrics::LoginOutcome;
use super::password::{HashRequest, PasswordHasher};
use super::throttle::{Purpose, Success};
use crate::clock::unix_now;
use crate::domain::{
    AvatarUrl, Email, Invalid, Password, PasswordPolicy, Profile, ProfileName, UserId,
};
use crate::store::{AccountUpdate, NewUser, Store, StoreError, User};

/// Profile fields as they arrive; empty strings mean "not set".
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    pub display_name: Option<String>,
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    pub first_name: Option<String>,
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    pub last_name: Option<String>,
    /// An absolute http(s) URL of at most 1024 characters once surrounding whitespace is
    /// trimmed; empty means none.
    pub avatar_url: Option<String>,
}

impl ProfileInput {
    pub fn parse(&self) -> Result<Profile, Invalid> {
        let name = |field, value: &Option<String>| match value {
            Some(v) => ProfileName::parse(field, v),
            None => Ok(None),
        };
        Ok(Profile {
            display_name: name("display_name", &self.display_name)?,
            first_name: name("first_name", &self.first_name)?,
            last_name: name("last_name", &self.last_name)?,
            avatar_url: match &self.avatar_url {
                Some(v) => AvatarUrl::parse(v)?,
                None => None,
            },
        })
    }
}

/// A new account, parsed.
#[derive(Debug)]
pub struct NewAccount {
    pub id: UserId,
    pub email: Email,
    pub password: Password,
    pub profile: Profile,
}

impl NewAccount {
    pub fn parse(
        id: Option<&str>,
        email: &str,
        password: &str,
        profile: &ProfileInput,
        policy: PasswordPolicy,
    ) -> Result<Self, Invalid> {
        Ok(Self {
            id: match id {
                Some(id) => UserId::parse(id)?,
                None => UserId::generate(),
            },
            email: Email::parse(email)?,
            password: Password::parse(password, policy)?,
            profile: profile.parse()?,
        })
    }
}

/// Creates the account. 409 `email_taken` / `id_taken` when either is in use.
pub async fn create_account(
    store: &dyn Store,
    hasher: &PasswordHasher,
    account: NewAccount,
    request: HashRequest,
) -> Result<User, IdpError> {
    let hash = hasher.hash(account.password, request).await?;
    insert_account(store, &account.id, &account.email, &account.profile, &hash).await
}

/// Creates an account with a password hash brought from another system, checked by the caller
/// with [`PasswordHasher::check_stored`]. Same conflicts as [`create_account`].
pub async fn insert_account(
    store: &dyn Store,
    id: &UserId,
    email: &Email,
    profile: &Profile,
    password_hash: &str,
) -> Result<User, IdpError> {
    let created = store
        .create_user(NewUser {
            id,
            email,
            password_hash,
            profile,
            now: unix_now(),
        })
        .await;
    match created {
        Ok(Some(user)) => {
            tracing::info!(user_id = %user.id, "account created");
            Ok(user)
        }
        Ok(None) => Err(IdpError::Conflict {
            code: "id_taken",
            description: format!("a user with the ID {id} already exists, or had it"),
        }),
        Err(StoreError::Conflict) => Err(IdpError::Conflict {
            code: "email_taken",
            description: "an account with this e-mail address already exists".to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// An administrator's changes to a user (`PATCH /admin/users/{id}`, `layer-idp users update`
/// and `set-password`). Absent fields stay; a profile field given as `null` is cleared.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    /// An e-mail address: `name@domain`, no spaces, at most 254 bytes once trimmed.
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    /// At most 128 characters once surrounding whitespace is trimmed; no control characters;
    /// empty means none.
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    /// An absolute http(s) URL of at most 1024 characters once surrounding whitespace is
    /// trimmed; empty means none.
    pub avatar_url: Option<Option<String>>,
    pub email_verified: Option<bool>,
    /// At least `[passwords] min_length` characters (8 by default) and at most 1024, counted
    /// after NFKC normalisation.
    pub password: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Applies an administrator's changes. Everything is parsed (and a new password hashed) before
/// anything is written, in one transaction; a new password ends every session of the user.
pub async fn update_user(
    store: &dyn Store,
    hasher: &PasswordHasher,
    id: &str,
    changes: UserChanges,
    request: HashRequest,
    now: i64,
) -> Result<User, IdpError> {
    let no_such_user = || IdpError::NotFound(format!("there is no user with the ID {id}"));
    let user = store.find_user(id).await?.ok_or_else(no_such_user)?;
    let email = Email::parse(changes.email.as_deref().unwrap_or(&user.email))?;
    let new_password = match &changes.password {
        Some(raw) => Some(Password::parse(raw, hasher.policy())?),
        None => None,
    };
    let profile = ProfileInput {
        display_name: changes.display_name.unwrap_or(user.display_name.clone()),
        first_name: changes.first_name.unwrap_or(user.first_name.clone()),
        last_name: changes.last_name.unwrap_or(user.last_name.clone()),
        avatar_url: changes.avatar_url.unwrap_or(user.avatar_url.clone()),
    }
    .parse()?;
    let password_hash = match new_password {
        Some(password) => Some(hasher.hash(password, request).await?),
        None => None,
    };
    let update = AccountUpdate {
        id: &user.id,
        email: &email,
        profile: &profile,
        password_hash: password_hash.as_deref(),
        keep_session: &[],
        email_verified: changes.email_verified.map(|v| v.then_some(now)),
        now,
    };
    match store.update_account(update).await {
        Ok(Some(updated)) => {
            tracing::info!(
                user_id = %updated.id,
                email_changed = updated.email != user.email,
                password_changed = password_hash.is_some(),
                "user updated by an administrator"
            );
            Ok(updated)
        }
        Ok(None) => Err(no_such_user()),
        Err(StoreError::Conflict) => Err(IdpError::Conflict {
            code: "email_taken",
            description: "an account with this e-mail address already exists".to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// A successful login: the user, and what the login's own write records for the throttling
/// rules (the session row, or the signed-nonce ledger's batch).
pub struct LoggedIn {
    pub user: User,
    pub success: Success,
}

/// Checks an e-mail and password. Every failure — unknown e-mail, wrong password, disabled
/// account — is the same [`IdpError::LoginFailed`] after the same amount of hashing work. The
/// throttling rules run first: a held attempt is 429 before any hashing, the same for a known
/// and an unknown e-mail.
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &IdpState,
    email: &str,
    password: &str,
    client: ClientAddr,
) -> Result<LoggedIn, IdpError> {
    let request = HashRequest::login(client);
    let email = Email::parse(email)?;
    let password = Password::candidate(password, state.hasher.policy())?;
    let attempt = match state
        .throttle
        .begin(email.key(), client, Purpose::Login)
        .await
    {
        Ok(attempt) => attempt,
        Err(held @ IdpError::TooManyAttempts { .. }) => {
            state.metrics.login(LoginOutcome::Held);
            // No subject: whether the e-mail has an account is not looked up for a held
            // attempt (that would cost the query the hold saves).
            audit::record(
                state.store.as_ref(),
                state.clock.now(),
                Event {
                    kind: "login",
                    actor: Actor::Anonymous,
                    subject: None,
                    client: Some(client),
                    outcome: "held",
                },
            )
            .await;
            return Err(held);
        }
        Err(e) => return Err(e),
    };
    let login = state.store.find_login(&email).await?;
    let stored_hash = login.as_ref().map(|l| l.password_hash.clone());
    let verification = state
        .hasher
        .verify(password.clone(), stored_hash, request)
        .await?;
    let failure = |subject: Option<&str>, outcome: &'static str| {
        let subject = subject.map(str::to_owned);
        async move {
            audit::record(
                state.store.as_ref(),
                state.clock.now(),
                Event {
                    kind: "login",
                    actor: Actor::Anonymous,
                    subject: subject.as_deref(),
                    client: Some(client),
                    outcome,
                },
            )
            .await;
        }
    };
    let Some(login) = login else {
        state.metrics.login(LoginOutcome::Unknown);
        attempt.failed(None, "unknown e-mail").await?;
        failure(None, "failure: unknown e-mail").await;
        return Err(IdpError::LoginFailed);
    };
    if !verification.matches {
        state.metrics.login(LoginOutcome::Wrong);
        attempt
            .failed(Some(&login.user.id), "wrong password")
            .await?;
        failure(Some(&login.user.id), "failure: wrong password").await;
        return Err(IdpError::LoginFailed);
    }
    if login.user.is_disabled() {
        state.metrics.login(LoginOutcome::Disabled);
        attempt
            .failed(Some(&login.user.id), "account disabled")
            .await?;
        failure(Some(&login.user.id), "failure: account disabled").await;
        return Err(IdpError::LoginFailed);
    }
    let success = attempt.succeeded().await?;
    // Only after the password was checked, so the answer tells nothing to a guesser.
    if state.lifecycle.accounts.require_verified_email && !login.user.email_verified() {
        state.metrics.login(LoginOutcome::Unverified);
        return Err(IdpError::Refused {
            code: "email_not_verified",
            description: "confirm your e-mail address first; the link was sent when you signed up"
                .to_owned(),
        });
    }
    if verification.needs_rehash {
        let hash = state.hasher.hash(password, request).await?;
        state
            .store
            .set_password_hash(&login.user.id, &hash, state.clock.now())
            .await?;
        tracing::info!(user_id = %login.user.id, "password re-hashed with the current parameters");
    }
    tracing::info!(user_id = %login.user.id, "login succeeded");
    state.metrics.login(LoginOutcome::Ok);
    Ok(LoggedIn {
        user: login.user,
        success,
    })
}

/// Checks the current password of an already-authenticated user (before a sensitive change),
/// under the same throttling rules as a login.
pub async fn confirm_password(
    state: &IdpState,
    user: &User,
    password: Option<&str>,
    client: ClientAddr,
) -> Result<(), IdpError> {
    let Some(password) = password else {
        return Err(IdpError::InvalidRequest(
            "changing the e-mail or password requires current_password".to_owned(),
        ));
    };
    let password = Password::candidate(password, state.hasher.policy())?;
    // Stored e-mails were parsed on the way in; the fallback only keeps a corrupted row
    // throttled under some key rather than failing the request.
    let email_key = Email::parse(&user.email)
        .map(|e| e.key().to_owned())
        .unwrap_or_else(|_| user.email.to_lowercase());
    let attempt = state
        .throttle
        .begin(&email_key, client, Purpose::CurrentPassword)
        .await?;
    let login = state.store.find_login_by_id(&user.id).await?;
    let stored = login.map(|l| l.password_hash);
    if state
        .hasher
        .verify(password, stored, HashRequest::login(client))
        .await?
        .matches
    {
        attempt.succeeded().await?;
        Ok(())
    } else {
        attempt
            .failed(Some(&user.id), "wrong current_password")
            .await?;
        Err(IdpError::Forbidden("current_password is not correct"))
    }
}
