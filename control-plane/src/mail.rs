//! Outgoing e-mail: through SMTP when `smtp_url` is configured, otherwise as `.eml` files in
//! `{data_dir}/outbox/`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

use crate::config::ControlPlaneConfig;

/// Time limit for each SMTP command, including connecting.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One plain-text message.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub to: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub body: String,
}

/// Destination a message was delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the SMTP server.
    Smtp,
    /// Written to this file in the outbox.
    Outbox(PathBuf),
}

pub struct Mailer {
    from: Mailbox,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    outbox: PathBuf,
}

impl Mailer {
    /// Builds the mailer from `smtp_url` and `mail_from`. An invalid SMTP URL or sender address
    /// fails here, at start, and not on the first message.
    pub fn new(config: &ControlPlaneConfig) -> anyhow::Result<Mailer> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .with_context(|| format!("invalid mail_from address {:?}", config.mail_from))?;
        let smtp = match &config.smtp_url {
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|error| anyhow::anyhow!("invalid smtp_url: {error}"))?;
                Some(builder.timeout(Some(SMTP_TIMEOUT)).build())
            }
            None => None,
        };
        Ok(Mailer { from, smtp, outbox: config.data_dir.join("outbox") })
    }

    /// Sends the message through SMTP, or writes it to the outbox when SMTP is not configured.
    pub async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<Delivery> {
        let to: Mailbox = mail.to.parse().with_context(|| format!("invalid recipient address {:?}", mail.to))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.replace(['\r', '\n'], " "))
            .header(ContentType::TEXT_PLAIN);
        if let Some(reply_to) = &mail.reply_to {
            let reply_to: Mailbox = reply_to.parse().with_context(|| format!("invalid Reply-To address {reply_to:?}"))?;
            builder = builder.reply_to(reply_to);
        }
        // lettre picks the transfer encoding: 7bit for ASCII lines shorter than 76 characters,
        // otherwise quoted-printable or base64.
        let message = builder.body(mail.body.clone()).context("failed to build the e-mail")?;

        match &self.smtp {
            Some(transport) => {
                transport.send(message).await.context("the SMTP server did not accept the e-mail")?;
                Ok(Delivery::Smtp)
            }
            None => {
                tokio::fs::create_dir_all(&self.outbox)
                    .await
                    .with_context(|| format!("failed to create {}", self.outbox.display()))?;
                let timestamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
                let path = self.outbox.join(format!("{timestamp}-{}.eml", Uuid::new_v4().simple()));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .with_context(|| format!("failed to write {}", path.display()))?;
                Ok(Delivery::Outbox(path))
            }
        }
    }

    /// Sends the message and logs where it went or why it failed. `kind` names the message in
    /// the log line, which never contains the body.
    pub async fn send_logged(&self, kind: &str, mail: &OutgoingMail) -> anyhow::Result<()> {
        match self.send(mail).await {
            Ok(Delivery::Smtp) => {
                tracing::info!(kind, "sent an e-mail through SMTP");
                Ok(())
            }
            Ok(Delivery::Outbox(path)) => {
                tracing::info!(kind, path = %path.display(), "wrote an e-mail to the outbox because SMTP is not configured");
                Ok(())
            }
            Err(error) => {
                tracing::error!(kind, error = format!("{error:#}"), "failed to send an e-mail");
                Err(error)
            }
        }
    }
}
