//! E-mail verification and password reset: single-use tokens (256 random bits, stored only as
//! their SHA-256, expiring) sent by mail, and what using one does.

use super::audit::{self, Actor, Event};
use std::sync::Arc;

use crate::config::{AccountSettings, MailSettings};
use crate::domain::{Email, Password};
use crate::store::{NewAccountToken, TokenPurpose, User};

use super::IdpState;
use super::client::ClientAddr;
use super::error::IdpError;
use super::mail::{Outgoing, Template};
use super::password::HashRequest;
use super::sessions::{hash_token, new_token};
use super::throttle::Purpose;

/// The settings the lifecycle rules read, held by [`IdpState`].
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub accounts: AccountSettings,
    pub reset_url: String,
    pub verify_url: String,
}

impl Lifecycle {
    pub fn new(accounts: &AccountSettings, mail: &MailSettings) -> Self {
        let base = mail.base_url.trim_end_matches('/');
        Self {
            accounts: accounts.clone(),
            reset_url: mail
                .reset_url
                .clone()
                .unwrap_or_else(|| format!("{base}/password_resets/form?token={{token}}")),
            verify_url: mail
                .verify_url
                .clone()
                .unwrap_or_else(|| format!("{base}/users/verify/form?token={{token}}")),
        }
    }
}

/// A token as it arrives: URL-safe base64 of 32 bytes. Anything else is refused before the
/// database is asked.
fn parse_token(raw: &str) -> Result<&str, IdpError> {
    let ok = raw.len() == 43
        && raw
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if ok {
        Ok(raw)
    } else {
        Err(IdpError::InvalidRequest("token is malformed".to_owned()))
    }
}

fn invalid_token() -> IdpError {
    IdpError::Unprocessable {
        code: "invalid_token",
        description: "the token is unknown, used or expired".to_owned(),
    }
}

async fn issue(
    state: &IdpState,
    user: &User,
    purpose: TokenPurpose,
    ttl_secs: u64,
) -> Result<String, IdpError> {
    let (token, hash) = new_token().map_err(IdpError::Internal)?;
    let now = state.clock.now();
    state
        .store
        .replace_account_token(NewAccountToken {
            token_hash: &hash,
            user_id: &user.id,
            purpose,
            now,
            expires_at: now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
        })
        .await?;
    Ok(token)
}

/// Stores a verification token for the user's current address and mails the link.
pub async fn send_verification(state: &IdpState, user: &User) -> Result<(), IdpError> {
    let ttl = state.lifecycle.accounts.verification_ttl_secs;
    let token = issue(state, user, TokenPurpose::VerifyEmail, ttl).await?;
    let link = state.lifecycle.verify_url.replace("{token}", &token);
    let hours = (ttl / 3600).max(1).to_string();
    let message = render(
        state,
        Template::Verify,
        &user.email,
        &[("link", &link), ("expires_hours", &hours)],
    );
    state.mailer.send_in_background("verify_email", message);
    Ok(())
}

/// Tells the owner of a taken address that someone tried to sign up with it.
pub fn send_signup_attempt(state: &IdpState, email: &str) {
    let form = state.lifecycle.reset_url.replace("{token}", "");
    let message = render(
        state,
        Template::SignupAttempt,
        email,
        &[("reset_form", &form)],
    );
    state.mailer.send_in_background("signup_attempt", message);
}

fn render(state: &IdpState, template: Template, to: &str, vars: &[(&str, &str)]) -> Outgoing {
    let product = state.mailer.product_name.as_str();
    let mut all = vec![("product_name", product), ("email", to)];
    all.extend_from_slice(vars);
    let (text, html) = state.mailer.templates.render(template, &all);
    let subject = match template {
        Template::Verify => format!("Confirm your {product} address"),
        Template::Reset => format!("Reset your {product} password"),
        Template::SignupAttempt => {
            format!("Someone tried to sign up for {product} with your address")
        }
    };
    Outgoing {
        to: to.to_owned(),
        subject,
        text,
        html,
    }
}

/// `POST /users/verify`: uses the token and marks the address verified.
pub async fn verify_email(state: &IdpState, token: &str) -> Result<User, IdpError> {
    let token = parse_token(token)?;
    let user_id = state
        .store
        .consume_account_token(
            &hash_token(token),
            TokenPurpose::VerifyEmail,
            state.clock.now(),
        )
        .await?
        .ok_or_else(invalid_token)?;
    let user = state
        .store
        .mark_email_verified(&user_id, state.clock.now())
        .await?
        .ok_or_else(invalid_token)?;
    tracing::info!(user_id = %user.id, "e-mail address verified");
    audit::record(
        state.store.as_ref(),
        state.clock.now(),
        Event {
            kind: "email_verification",
            actor: Actor::Anonymous,
            subject: Some(&user.id),
            client: None,
            outcome: "verified",
        },
    )
    .await;
    Ok(user)
}

/// `POST /password_resets`: answers the same whether or not the address has an account. The
/// throttle runs in the request (keyed on the typed address, known or not); looking the
/// account up, storing the token and mailing happen after the answer, on a background task,
/// so the answer's timing cannot tell.
pub async fn request_reset(
    state: &Arc<IdpState>,
    email: &str,
    client: ClientAddr,
) -> Result<(), IdpError> {
    let email = Email::parse(email)?;
    let attempt = state
        .throttle
        .begin(email.key(), client, Purpose::PasswordReset)
        .await?;
    // Each request spends one from the same budgets as a failed login, so resets cannot be
    // used to flood an inbox or to probe faster than logins can.
    attempt.failed(None, "password reset requested").await?;
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = send_reset(&state, &email, client).await {
            tracing::error!(error = %e, "preparing a password reset failed");
        }
    });
    Ok(())
}

async fn send_reset(state: &IdpState, email: &Email, client: ClientAddr) -> Result<(), IdpError> {
    let Some(login) = state.store.find_login(email).await? else {
        tracing::info!("password reset requested for an unknown address; nothing sent");
        return Ok(());
    };
    if login.user.is_disabled() {
        tracing::info!(user_id = %login.user.id, "password reset requested for a disabled account; nothing sent");
        return Ok(());
    }
    let ttl = state.lifecycle.accounts.reset_ttl_secs;
    let token = issue(state, &login.user, TokenPurpose::PasswordReset, ttl).await?;
    let link = state.lifecycle.reset_url.replace("{token}", &token);
    let minutes = (ttl / 60).max(1).to_string();
    let message = render(
        state,
        Template::Reset,
        &login.user.email,
        &[("link", &link), ("expires_minutes", &minutes)],
    );
    audit::record(
        state.store.as_ref(),
        state.clock.now(),
        Event {
            kind: "password_reset_request",
            actor: Actor::Anonymous,
            subject: Some(&login.user.id),
            client: Some(client),
            outcome: "link_sent",
        },
    )
    .await;
    state.mailer.send_in_background("password_reset", message);
    tracing::info!(user_id = %login.user.id, "password reset link sent");
    Ok(())
}

/// `POST /password_resets/confirm`: checks the password against the policy first (a refused
/// password leaves the token usable), then uses the token, sets the password, ends every
/// session and marks the address verified.
pub async fn confirm_reset(
    state: &IdpState,
    token: &str,
    password: &str,
    client: ClientAddr,
) -> Result<User, IdpError> {
    let token = parse_token(token)?;
    let password = Password::parse(password, state.hasher.policy())?;
    let hash_of_token = hash_token(token);
    let now = state.clock.now();
    if !state
        .store
        .account_token_is_live(&hash_of_token, TokenPurpose::PasswordReset, now)
        .await?
    {
        return Err(invalid_token());
    }
    // Hash before using the token: a refused hash (503) must leave everything as it was.
    let hash = state
        .hasher
        .hash(password, HashRequest::login(client))
        .await?;
    let user_id = state
        .store
        .consume_account_token(&hash_of_token, TokenPurpose::PasswordReset, now)
        .await?
        .ok_or_else(invalid_token)?;
    let user = state
        .store
        .reset_password(&user_id, &hash, state.clock.now())
        .await?
        .ok_or_else(invalid_token)?;
    tracing::info!(user_id = %user.id, "password reset; every session ended");
    audit::record(
        state.store.as_ref(),
        state.clock.now(),
        Event {
            kind: "password_reset",
            actor: Actor::Anonymous,
            subject: Some(&user.id),
            client: Some(client),
            outcome: "changed",
        },
    )
    .await;
    Ok(user)
}

/// Whether a reset token is live (the built-in form checks before showing itself).
pub async fn reset_token_is_live(state: &IdpState, token: &str) -> Result<bool, IdpError> {
    let Ok(token) = parse_token(token) else {
        return Ok(false);
    };
    Ok(state
        .store
        .account_token_is_live(
            &hash_token(token),
            TokenPurpose::PasswordReset,
            state.clock.now(),
        )
        .await?)
}
