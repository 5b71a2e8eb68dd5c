//! Sending one message through one channel: SMTP for e-mail, an HTTP POST for Slack, Discord
//! and webhooks. Each send has a time limit, and its error says what went wrong in words the
//! Alerts page can show ("SMTP: authentication failed", "HTTP 404 from hooks.slack.com").

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

pub async fn send(
    state: &AppState,
    channel: &Channel,
    message: &Notification,
    rule: Option<&str>,
) -> Result<(), String> {
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
        Err(_) => Err(format!(
            "no answer from {} within {} s",
            channel.target.describe(),
            SEND_TIMEOUT.as_secs()
        )),
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

async fn post(url: &str, body: &serde_json::Value, secret: Option<&str>) -> Result<(), String> {
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
        .map_err(|e| format!("cannot reach {host}: {}", root_cause(&e)))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let text = answer.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(format!(
        "HTTP {} from {host}: {}",
        status.as_u16(),
        text.trim()
    ))
}

fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn email(smtp: &SmtpConfig, to: &[String], message: &Notification) -> Result<(), String> {
    if !smtp.configured() {
        return Err("no mail server: set [smtp] host and from in vigie.toml".into());
    }
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("smtp.from is not an address: {e}"))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(message.subject())
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        builder = builder.to(address
            .parse()
            .map_err(|e| format!("\"{address}\" is not an address: {e}"))?);
    }
    let email = builder
        .body(message.text())
        .map_err(|e| format!("cannot build the e-mail: {e}"))?;
    let transport = transport(smtp)?;
    transport
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{}: {}", smtp.host, smtp.port, root_cause(&e)))
}

fn transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = smtp.host.trim();
    let builder = match smtp.security.as_str() {
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        _ => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }
    .map_err(|e| format!("SMTP {host}: {e}"))?;
    let mut builder = builder.port(smtp.port).timeout(Some(SEND_TIMEOUT));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.expose().clone(),
        ));
    }
    Ok(builder.build())
}
