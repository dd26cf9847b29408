//! Outbound mail. Through SMTP (lettre) when `mail.smtp_url` is set; otherwise into the
//! development outbox: one RFC 5322 `.eml` file per message under `mail.outbox` (default
//! `<data_dir>/outbox/`), with a log line naming it. Every message has a text and an HTML body,
//! both from templates.

use crate::clock::Clock;
use crate::config::Settings;
use crate::pages::Template;
use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// How long one SMTP exchange may take before the sender is told it failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A message ready to go: recipient, subject and the two bodies.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(serde::Serialize)]
struct SignInCodeText<'a> {
    code: &'a str,
    audience: &'a str,
    minutes: u64,
}

crate::pages::template!(SignInCodeText<'a>, "mail/sign_in_code.txt");

#[derive(serde::Serialize)]
struct SignInCodeHtml<'a> {
    code: &'a str,
    audience: &'a str,
    minutes: u64,
}

crate::pages::template!(SignInCodeHtml<'a>, "mail/sign_in_code.html");

impl Mail {
    /// A one-time sign-in code for `audience` (the application, or "your account").
    pub fn sign_in_code(to: &str, code: &str, audience: &str, minutes: u64) -> Mail {
        let text = SignInCodeText { code, audience, minutes }.render().unwrap_or_default();
        let html = SignInCodeHtml { code, audience, minutes }.render().unwrap_or_default();
        // Not in the subject: that shows on lock screens.
        Mail { to: to.to_owned(), subject: crate::pages::tr("Your sign-in code"), text, html }
    }
}

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// The clock names the files, so they sort in the order they were written.
    Outbox {
        dir: PathBuf,
        from: Mailbox,
        clock: Clock,
    },
}

impl Mailer {
    pub fn from_settings(settings: &Settings, clock: Clock) -> anyhow::Result<Self> {
        let from: Mailbox = settings.mail.from.parse().context("mail.from")?;
        Ok(match &settings.mail.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("mail.smtp_url")?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                Mailer::Smtp { transport, from }
            }
            None => Mailer::Outbox { dir: settings.outbox(), from, clock },
        })
    }

    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let (Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. }) = self;
        let message = Message::builder()
            .from(from.clone())
            .to(mail.to.parse().context("recipient address")?)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))?;
        match self {
            Mailer::Smtp { transport, .. } => {
                transport.send(message).await.context("SMTP")?;
                tracing::info!(to = %masked(&mail.to), subject = %mail.subject, "mail sent");
            }
            Mailer::Outbox { dir, clock, .. } => {
                tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
                let name = format!("{}-{}.eml", clock.now(), crate::crypto::random_id());
                let path = dir.join(name);
                tokio::fs::write(&path, message.formatted())
                    .await
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(to = %masked(&mail.to), subject = %mail.subject, path = %path.display(), "mail written to the outbox");
            }
        }
        Ok(())
    }
}

/// An address as logs show it: the first character of the local part and the domain
/// (`a…@example.com`), enough to tell messages apart without writing addresses into logs.
pub fn masked(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{}…@{domain}", local.chars().next().unwrap_or('?')),
        None => "…".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn logs_see_a_masked_address() {
        assert_eq!(super::masked("margarethe@example.com"), "m…@example.com");
        assert_eq!(super::masked("not an address"), "…");
    }
}
