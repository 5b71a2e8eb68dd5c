//! Sending one message through one channel: SMTP for e-mail, an HTTP POST for Slack, Discord
//! and webhooks. Each send has a time limit, and its error ([`SendError`]) names the step that
//! failed, keeps the client's error as its source, and says what went wrong in words the
//! Alerts page can show ("SMTP mail.example.com:587: authentication failed", "HTTP 404 from
//! hooks.slack.com").

use crate::config::SmtpConfig;
use crate::state::AppState;
use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;
use vigie_core::alert::{signature, Notification, Target};
use vigie_core::Timestamp;
use vigie_store::Channel;

/// Longest a send may take before it counts as failed (and is retried later).
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// The header carrying a webhook's HMAC signature (see `vigie_core::alert::signature`).
pub const SIGNATURE_HEADER: &str = "x-vigie-signature";

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no answer from {target} within {seconds} s")]
    Timeout { target: String, seconds: u64 },
    #[error("cannot reach {host}: {}", root_cause(.source))]
    Unreachable {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("HTTP {status} from {host}: {body}")]
    Refused {
        status: u16,
        host: String,
        /// The start of the answer's body.
        body: String,
    },
    #[error("no mail server: set [smtp] host and from in vigie.toml")]
    NoMailServer,
    #[error("smtp.from is not an address: {0}")]
    BadSender(#[source] lettre::address::AddressError),
    #[error("\"{address}\" is not an address: {source}")]
    BadRecipient {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("cannot build the e-mail: {0}")]
    Build(#[source] lettre::error::Error),
    #[error("SMTP {host}:{port}: {}", root_cause(.source))]
    Smtp {
        host: String,
        port: u16,
        #[source]
        source: lettre::transport::smtp::Error,
    },
}

pub async fn send(
    state: &AppState,
    channel: &Channel,
    message: &Notification,
    rule: Option<&str>,
) -> Result<(), SendError> {
    let work = async {
        match &channel.target {
            Target::Email { to } => email(&state.config.smtp, to, message).await,
            Target::Slack { url } => post(url, &message.slack(), None).await,
            Target::Discord { url } => post(url, &message.discord(), None).await,
            Target::Webhook { url, secret } => {
                let body = message.webhook(rule.unwrap_or("test"), Timestamp::now());
                post(url, &body, secret.as_deref()).await
            }
        }
    };
    match tokio::time::timeout(SEND_TIMEOUT, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(SendError::Timeout {
            target: channel.target.describe(),
            seconds: SEND_TIMEOUT.as_secs(),
        }),
    }
}

fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
            .timeout(SEND_TIMEOUT)
            .build()
            .expect("an HTTP client with default settings")
    })
}

async fn post(url: &str, body: &serde_json::Value, secret: Option<&str>) -> Result<(), SendError> {
    let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
    let mut request = http().post(url).header("content-type", "application/json");
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, signature(secret, &bytes));
    }
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let answer = request
        .body(bytes)
        .send()
        .await
        .map_err(|source| SendError::Unreachable {
            host: host.clone(),
            source,
        })?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let text = answer.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(SendError::Refused {
        status: status.as_u16(),
        host,
        body: text.trim().to_string(),
    })
}

fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn email(smtp: &SmtpConfig, to: &[String], message: &Notification) -> Result<(), SendError> {
    if !smtp.configured() {
        return Err(SendError::NoMailServer);
    }
    let from: Mailbox = smtp.from.parse().map_err(SendError::BadSender)?;
    let mut builder = Message::builder()
        .from(from)
        .subject(message.subject())
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        builder = builder.to(address.parse().map_err(|source| SendError::BadRecipient {
            address: address.clone(),
            source,
        })?);
    }
    let email = builder.body(message.text()).map_err(SendError::Build)?;
    let smtp_error = |source| SendError::Smtp {
        host: smtp.host.trim().to_string(),
        port: smtp.port,
        source,
    };
    let transport = transport(smtp).map_err(smtp_error)?;
    transport.send(email).await.map(|_| ()).map_err(smtp_error)
}

fn transport(
    smtp: &SmtpConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
    let host = smtp.host.trim();
    let builder = match smtp.security.as_str() {
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        _ => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }?;
    let mut builder = builder.port(smtp.port).timeout(Some(SEND_TIMEOUT));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.expose().clone(),
        ));
    }
    Ok(builder.build())
}
