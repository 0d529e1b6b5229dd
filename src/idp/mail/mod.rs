//! Outgoing mail: messages built from templates (plain text plus HTML), sent over SMTP with
//! lettre, or — with no SMTP server configured — written to an outbox directory, one `.eml`
//! file each.
//!
//! Sending never holds up a request: the caller writes to the database first, then hands the
//! message to [`Mailer::send_in_background`], which runs it on a task bounded by a semaphore.
//! When every slot is busy the message is dropped and an error is logged, rather than queueing
//! without limit. A delivery failure is logged, never the message: links in it carry secrets.

mod templates;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;

pub use templates::{Template, Templates, escape_html};

use crate::config::MailSettings;

/// Deliveries running at once; more are dropped (and logged).
const MAX_PENDING: usize = 64;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// A rendered message, ready to go.
pub struct Outgoing {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    pub templates: Templates,
    pub product_name: String,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

impl Mailer {
    pub fn from_settings(
        settings: &MailSettings,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .with_context(|| format!("mail.from is not an address: {}", settings.from))?;
        let timeout = Duration::from_secs(settings.send_timeout_secs.max(1));
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    // lettre's error would repeat the URL, credentials included.
                    .map_err(|_| anyhow::anyhow!("mail.smtp_url is not a valid SMTP URL"))?
                    .timeout(Some(timeout))
                    .build(),
            ),
            None => Transport::Outbox(
                settings
                    .outbox_dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("outbox")),
            ),
        };
        Ok(Self {
            transport,
            from,
            templates: Templates::load(settings.templates_dir.as_deref())?,
            product_name: settings.product_name.clone(),
            timeout,
            slots: Arc::new(Semaphore::new(MAX_PENDING)),
        })
    }

    /// Delivers one message now.
    pub async fn send(&self, message: Outgoing) -> anyhow::Result<()> {
        let to: Mailbox = message
            .to
            .parse()
            .context("the recipient is not an address")?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject)
            .multipart(MultiPart::alternative_plain_html(
                message.text,
                message.html,
            ))
            .context("building the message")?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                tokio::time::timeout(self.timeout, smtp.send(email))
                    .await
                    .context("the SMTP server did not answer in time")?
                    .context("the SMTP server refused the message")?;
                tracing::info!("message sent over SMTP");
            }
            Transport::Outbox(dir) => {
                // Messages carry single-use links: the outbox is as private as the database.
                tokio::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .await
                    .with_context(|| format!("creating the outbox {}", dir.display()))?;
                let file = dir.join(format!("{}.eml", uuid::Uuid::new_v4()));
                let mut out = tokio::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&file)
                    .await
                    .with_context(|| format!("writing {}", file.display()))?;
                tokio::io::AsyncWriteExt::write_all(&mut out, &email.formatted())
                    .await
                    .with_context(|| format!("writing {}", file.display()))?;
                tracing::info!(file = %file.display(), "message written to the outbox (no SMTP server configured)");
            }
        }
        Ok(())
    }

    /// Delivers on a background task after the request has done its work; failures are
    /// logged. `what` names the message in the log (never its content).
    pub fn send_in_background(self: &Arc<Self>, what: &'static str, message: Outgoing) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::error!(
                message = what,
                "too many messages pending; this one is dropped"
            );
            return;
        };
        let mailer = self.clone();
        tokio::spawn(async move {
            if let Err(e) = mailer.send(message).await {
                tracing::error!(
                    message = what,
                    error = format!("{e:#}"),
                    "sending mail failed"
                );
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MailSettings;

    fn build(url: &str) -> anyhow::Result<Mailer> {
        let settings = MailSettings {
            smtp_url: Some(url.to_owned().into()),
            ..MailSettings::default()
        };
        Mailer::from_settings(&settings, std::path::Path::new("data"))
    }

    #[test]
    fn every_documented_smtp_url_form_builds_a_transport() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.com:587?tls=required",
            "smtp://mail.example.com:587?tls=opportunistic",
            "smtps://user:p%40ss@mail.example.com:465",
        ] {
            let mailer = build(url).unwrap_or_else(|e| panic!("{url}: {e:#}"));
            assert!(matches!(mailer.transport, Transport::Smtp(_)), "{url}");
        }
    }

    #[test]
    fn a_bad_smtp_url_is_refused_without_repeating_it() {
        let error = build("ftp://user:secret@host").err().expect("refused");
        assert!(!format!("{error:#}").contains("secret"));
    }
}
