//! Alerts: rules that watch for something, channels that carry the news, and the message
//! itself as each channel shows it.
//!
//! ```text
//! something happens (a new issue, a failed job, a missed cron run…)
//!   -> each enabled, unmuted rule of the project whose kind matches  (RuleKind::matches)
//!   -> not again for the same thing within the rule's cooldown
//!   -> one Notification (what, where, how many, a link, the evidence)
//!   -> rendered per channel: an e-mail, a Slack or Discord message, a signed JSON webhook
//! ```
//!
//! Threshold rules ("more than 50 matching log lines in 5 minutes", "p95 above 800 ms") are
//! not single happenings but conditions that become true and clear again: the server keeps a
//! [`window::Window`] per rule, fed as things arrive, and judges the rules every second; a
//! condition that holds opens an alert, may remind every re-notify interval, and sends a
//! "resolved" message when it clears.
//!
//! Channels are checked when they are saved: an e-mail address must look like one, a webhook
//! URL must be http(s) with a host, a Slack or Discord URL must be that service's webhook.

pub mod window;

use crate::{ProjectId, Timestamp};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::fmt;

/// What a rule watches for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// An issue's first event.
    NewIssue,
    /// A resolved issue came back.
    Regression,
    /// A job ended failed: one the application reported, or only jobs of `job_kind` (which
    /// may name `celery` or `monitor` to watch those too).
    JobFailed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_kind: Option<String>,
    },
    /// A job stopped reporting.
    JobStalled {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_kind: Option<String>,
    },
    /// A monitor run failed, was missed or timed out (optionally one monitor); a "resolved"
    /// message follows when the monitor is up again.
    MonitorDown {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slug: Option<String>,
    },
    /// One issue gets more than `above` events within `window_s`.
    IssueEvents { above: u64, window_s: u64 },
    /// More than `per_minute` error events in a minute, all issues together.
    ErrorEvents { per_minute: u64 },
    /// More than `above` log lines match `query` within `window_s`.
    LogMatches {
        query: String,
        above: u64,
        window_s: u64,
    },
    /// The 95th percentile duration of transactions (optionally of one name) over
    /// `window_s` is above `p95_ms`.
    SlowTransactions {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transaction: Option<String>,
        p95_ms: u64,
        window_s: u64,
    },
    /// More than `percent` % of transactions (optionally of one name) failed over `window_s`.
    FailingTransactions {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transaction: Option<String>,
        percent: u32,
        window_s: u64,
    },
    /// More than `percent` % of a running job's items failed (judged from
    /// [`MIN_ITEMS`] items on).
    ItemErrors {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_kind: Option<String>,
        percent: u32,
    },
    /// A Celery worker (optionally one hostname) stopped sending heartbeats or said goodbye;
    /// resolved when it is back.
    WorkerOffline {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hostname: Option<String>,
    },
    /// More than `percent` % of Celery tasks (optionally one name or a `prefix*`) that ended
    /// over `window_s` failed (judged from [`MIN_TASKS`] tasks).
    TaskFailures {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<String>,
        percent: u32,
        window_s: u64,
    },
    /// A Celery task (optionally one name or a `prefix*`) has been running for more than
    /// `above_s` seconds; resolved when it ends.
    TaskRuntime {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<String>,
        above_s: u64,
    },
    /// More than `above` messages wait in a Celery queue (optionally one), read from the
    /// broker every 10 s; resolved when it drains.
    QueueLength {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        above: u64,
    },
    /// An application metric's figure (`stat`: avg, max, p95, rate…) over `window_s`, of its
    /// series matching `filter` (`key:value` words), is above `above`; read from the stored
    /// minutes every 10 s, resolved when it falls back.
    MetricThreshold {
        metric: String,
        stat: crate::metric::Stat,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        filter: String,
        above: crate::metric::Limit,
        window_s: u64,
    },
    /// A release's crash-free sessions over `window_s` (whole hours, as sessions are kept)
    /// fall below `below` percent, judged from [`MIN_SESSIONS`] sessions: a new release that
    /// crashes more than the last. Read from storage every 10 s; resolved when it is back
    /// above, or has no sessions left in the window.
    CrashFreeSessions {
        below: crate::metric::Limit,
        window_s: u64,
    },
}

/// Sessions a release must have started in the window before its crash-free rate is judged.
pub const MIN_SESSIONS: i64 = 20;

/// Items a job must have processed before its error ratio is judged: 1 failure in 2 is not a
/// trend.
pub const MIN_ITEMS: i64 = 10;
/// Transactions a window must hold before its p95 or failure rate is judged.
pub const MIN_TRANSACTIONS: u64 = 10;
/// Celery tasks that must have ended in a window before its failure rate is judged.
pub const MIN_TASKS: u64 = 10;
/// The longest window of a threshold rule: a day.
pub const MAX_WINDOW_S: u64 = 86_400;

/// "5 min", "1 h", "90 s": a window for people.
pub fn span_words(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// "an" before a vowel ("an email job"), else "a" ("a celery job").
fn article(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

impl RuleKind {
    /// Words for people: "a job fails (kind celery)".
    pub fn describe(&self) -> String {
        match self {
            RuleKind::NewIssue => "a new issue appears".into(),
            RuleKind::Regression => "a resolved issue comes back".into(),
            RuleKind::JobFailed { job_kind: None } => "a reported job fails".into(),
            RuleKind::JobFailed { job_kind: Some(k) } => format!("{} {k} job fails", article(k)),
            RuleKind::JobStalled { job_kind: None } => "a reported job stalls".into(),
            RuleKind::JobStalled { job_kind: Some(k) } => {
                format!("{} {k} job stalls", article(k))
            }
            RuleKind::MonitorDown { slug: None } => {
                "a monitor run fails, is missed or times out".into()
            }
            RuleKind::MonitorDown { slug: Some(s) } => {
                format!("a run of monitor {s} fails, is missed or times out")
            }
            RuleKind::IssueEvents { above, window_s } => format!(
                "an issue gets more than {above} events in {}",
                span_words(*window_s)
            ),
            RuleKind::ErrorEvents { per_minute } => {
                format!("more than {per_minute} error events in a minute")
            }
            RuleKind::LogMatches {
                query,
                above,
                window_s,
            } => format!(
                "more than {above} log lines match `{query}` in {}",
                span_words(*window_s)
            ),
            RuleKind::SlowTransactions {
                transaction,
                p95_ms,
                window_s,
            } => format!(
                "the p95 of {} is above {p95_ms} ms over {}",
                transaction.as_deref().unwrap_or("all transactions"),
                span_words(*window_s)
            ),
            RuleKind::FailingTransactions {
                transaction,
                percent,
                window_s,
            } => format!(
                "more than {percent} % of {} fail over {}",
                transaction.as_deref().unwrap_or("all transactions"),
                span_words(*window_s)
            ),
            RuleKind::ItemErrors {
                job_kind: None,
                percent,
            } => format!("more than {percent} % of a job's items fail"),
            RuleKind::ItemErrors {
                job_kind: Some(k),
                percent,
            } => format!(
                "more than {percent} % of {} {k} job's items fail",
                article(k)
            ),
            RuleKind::WorkerOffline { hostname: None } => "a Celery worker goes offline".into(),
            RuleKind::WorkerOffline { hostname: Some(h) } => {
                format!("Celery worker {h} goes offline")
            }
            RuleKind::TaskFailures {
                task,
                percent,
                window_s,
            } => format!(
                "more than {percent} % of {} fail over {}",
                task.as_deref().unwrap_or("Celery tasks"),
                span_words(*window_s)
            ),
            RuleKind::TaskRuntime { task, above_s } => format!(
                "{} runs longer than {}",
                task.as_deref()
                    .map_or("a Celery task".to_string(), |t| format!("task {t}")),
                span_words(*above_s)
            ),
            RuleKind::QueueLength { queue, above } => format!(
                "more than {above} messages wait in {}",
                queue
                    .as_deref()
                    .map_or("a Celery queue".to_string(), |q| format!("queue {q}"))
            ),
            RuleKind::MetricThreshold {
                metric,
                stat,
                filter,
                above,
                window_s,
            } => format!(
                "the {stat} of {metric}{} is above {} over {}",
                if filter.is_empty() {
                    String::new()
                } else {
                    format!(" ({filter})")
                },
                above.0,
                span_words(*window_s)
            ),
            RuleKind::CrashFreeSessions { below, window_s } => format!(
                "a release's crash-free sessions fall below {} % over {}",
                below.0,
                span_words(*window_s)
            ),
        }
    }

    /// A condition judged over time (with a "resolved" message when it clears), rather than
    /// one happening.
    pub fn is_threshold(&self) -> bool {
        matches!(
            self,
            RuleKind::IssueEvents { .. }
                | RuleKind::ErrorEvents { .. }
                | RuleKind::LogMatches { .. }
                | RuleKind::SlowTransactions { .. }
                | RuleKind::FailingTransactions { .. }
                | RuleKind::ItemErrors { .. }
                | RuleKind::WorkerOffline { .. }
                | RuleKind::TaskFailures { .. }
                | RuleKind::TaskRuntime { .. }
                | RuleKind::QueueLength { .. }
                | RuleKind::MetricThreshold { .. }
                | RuleKind::CrashFreeSessions { .. }
        )
    }

    /// Checks the rule as saved; `Err` says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        let window = |window_s: u64| {
            if (10..=MAX_WINDOW_S).contains(&window_s) {
                Ok(())
            } else {
                Err(format!(
                    "a window is 10 s to 1 day, not {}",
                    span_words(window_s)
                ))
            }
        };
        let percent = |p: u32| {
            if (1..=99).contains(&p) {
                Ok(())
            } else {
                Err(format!("a percentage is 1 to 99, not {p}"))
            }
        };
        let named = |name: &Option<String>, what: &str| match name {
            Some(n) if n.trim().is_empty() => Err(format!("the {what} is empty")),
            _ => Ok(()),
        };
        match self {
            RuleKind::NewIssue | RuleKind::Regression => Ok(()),
            RuleKind::JobFailed { job_kind }
            | RuleKind::JobStalled { job_kind }
            | RuleKind::ItemErrors { job_kind, .. } => {
                named(job_kind, "job kind")?;
                match self {
                    RuleKind::ItemErrors { percent: p, .. } => percent(*p),
                    _ => Ok(()),
                }
            }
            RuleKind::MonitorDown { slug } => named(slug, "monitor"),
            RuleKind::WorkerOffline { hostname } => named(hostname, "worker"),
            RuleKind::IssueEvents { window_s, .. } => window(*window_s),
            RuleKind::ErrorEvents { per_minute } => {
                if *per_minute == 0 {
                    Err("give a number of events per minute above 0".into())
                } else {
                    Ok(())
                }
            }
            RuleKind::LogMatches {
                query, window_s, ..
            } => {
                window(*window_s)?;
                let parsed = crate::logquery::LogQuery::parse(query, 0)
                    .map_err(|e| format!("the log query: {e}"))?;
                if parsed.from.is_some() || parsed.to.is_some() {
                    return Err("the log query cannot hold a time range: the rule's window is its time range".into());
                }
                Ok(())
            }
            RuleKind::SlowTransactions {
                transaction,
                p95_ms,
                window_s,
            } => {
                named(transaction, "transaction")?;
                window(*window_s)?;
                if *p95_ms == 0 {
                    return Err("give a p95 above 0 ms".into());
                }
                Ok(())
            }
            RuleKind::FailingTransactions {
                transaction,
                percent: p,
                window_s,
            } => {
                named(transaction, "transaction")?;
                window(*window_s)?;
                percent(*p)
            }
            RuleKind::TaskFailures {
                task,
                percent: p,
                window_s,
            } => {
                named(task, "task")?;
                window(*window_s)?;
                percent(*p)
            }
            RuleKind::TaskRuntime { task, above_s } => {
                named(task, "task")?;
                if *above_s == 0 {
                    return Err("give a runtime above 0 seconds".into());
                }
                Ok(())
            }
            RuleKind::QueueLength { queue, .. } => named(queue, "queue"),
            RuleKind::MetricThreshold {
                metric,
                filter,
                above,
                window_s,
                ..
            } => {
                if metric.trim().is_empty() {
                    return Err("name the metric to watch".into());
                }
                crate::metric::parse_filter(filter)?;
                if !above.0.is_finite() {
                    return Err("give a threshold that is a number".into());
                }
                if *window_s < 60 {
                    return Err(
                        "a metric's window is at least 1 min: metrics are kept per minute".into(),
                    );
                }
                window(*window_s)
            }
            RuleKind::CrashFreeSessions { below, window_s } => {
                if !(below.0 > 0.0 && below.0 < 100.0) {
                    return Err(format!(
                        "a crash-free rate is above 0 and below 100 %, not {}",
                        below.0
                    ));
                }
                if *window_s < 3600 {
                    return Err(
                        "a crash-free window is at least 1 h: sessions are kept per hour".into(),
                    );
                }
                window(*window_s)
            }
        }
    }

    /// Whether a transaction (or Celery task) named `name` is one this rule watches: any, the
    /// one named, or those starting with a `prefix*`.
    pub fn watches_transaction(filter: &Option<String>, name: &str) -> bool {
        match filter.as_deref() {
            None => true,
            // "/x" written before endpoints carried their method still watches "GET /x".
            Some(f) => {
                [name, crate::endpoint::route(name)]
                    .iter()
                    .any(|name| match f.strip_suffix('*') {
                        Some(prefix) => name.starts_with(prefix),
                        None => *name == f,
                    })
            }
        }
    }

    /// Whether `happening` is what this rule watches for.
    pub fn matches(&self, happening: &Happening) -> bool {
        match (self, &happening.what) {
            (RuleKind::NewIssue, What::NewIssue) => true,
            (RuleKind::Regression, What::Regression) => true,
            // A rule for any job watches the jobs the application reported: a Celery task's
            // or a monitor run's failure is the Celery and monitor rules' to tell (one cause,
            // one message), unless the rule names that kind.
            (RuleKind::JobFailed { job_kind }, What::JobFailed { kind })
            | (RuleKind::JobStalled { job_kind }, What::JobStalled { kind }) => match job_kind {
                None => crate::JobOrigin::of(kind.as_deref()) == crate::JobOrigin::Reported,
                Some(_) => job_kind == kind,
            },
            (
                RuleKind::MonitorDown { slug },
                What::MonitorDown { slug: s } | What::MonitorUp { slug: s },
            ) => slug.is_none() || slug.as_ref() == Some(s),
            _ => false,
        }
    }
}

/// Something that happened, as the alert engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Happening {
    pub project: ProjectId,
    pub what: What,
    /// What it is about, so the same thing does not alert twice within a cooldown:
    /// `issue:42`, `job:…`, `monitor:nightly`.
    pub key: String,
    pub environment: Option<String>,
    pub at: Timestamp,
    /// The message, ready for every channel.
    pub notification: Notification,
}

#[derive(Clone, Debug, PartialEq)]
pub enum What {
    NewIssue,
    Regression,
    JobFailed {
        kind: Option<String>,
    },
    JobStalled {
        kind: Option<String>,
    },
    MonitorDown {
        slug: String,
    },
    /// The monitor is up again: the "resolved" message of a MonitorDown alert.
    MonitorUp {
        slug: String,
    },
}

impl What {
    /// A message that says a problem is over (sent only if the problem was alerted).
    pub fn resolves(&self) -> bool {
        matches!(self, What::MonitorUp { .. })
    }
}

/// What a message says: a title, a few lines of facts, a link into Vigie, and the evidence
/// (a stack frame, log lines, job counters) as preformatted text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub title: String,
    pub facts: Vec<(String, String)>,
    pub link: String,
    pub evidence: Option<String>,
    /// `true` for a "resolved" message.
    pub resolved: bool,
    /// `true` for a scheduled report rather than an alert.
    #[serde(default)]
    pub report: bool,
}

impl Notification {
    /// This message with a fact saying how often the thing happened again since the rule's
    /// last message about it (none when it did not): repeated failures read as one problem
    /// with a count, not as silence or as one message each.
    pub fn with_repeats(&self, repeats: i64) -> Notification {
        let mut message = self.clone();
        if repeats > 0 {
            let times = if repeats == 1 { "once" } else { "times" };
            let count = if repeats == 1 {
                String::new()
            } else {
                format!("{repeats} ")
            };
            message.facts.push((
                "Repeats".into(),
                format!("happened {count}{times} more since the last message"),
            ));
        }
        message
    }

    /// The plain-text body of an e-mail.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.title);
        for (k, v) in &self.facts {
            out.push_str(&format!("{k}: {v}\n"));
        }
        if let Some(e) = &self.evidence {
            out.push_str(&format!("\n{e}\n"));
        }
        out.push_str(&format!("\nOpen in Vigie: {}\n", self.link));
        out
    }

    /// The e-mail subject.
    pub fn subject(&self) -> String {
        let mark = match (self.report, self.resolved) {
            (true, _) => "[report]",
            (false, true) => "[resolved]",
            (false, false) => "[alert]",
        };
        format!("{mark} {}", self.title)
    }

    /// A Slack incoming-webhook payload (mrkdwn).
    pub fn slack(&self) -> Value {
        let facts: Vec<String> = self
            .facts
            .iter()
            .map(|(k, v)| format!("*{}:* {}", slack_escape(k), slack_escape(v)))
            .collect();
        let mut text = format!(
            "{} *{}*\n{}",
            if self.resolved {
                ":white_check_mark:"
            } else {
                ":rotating_light:"
            },
            slack_escape(&self.title),
            facts.join("\n")
        );
        if let Some(e) = &self.evidence {
            text.push_str(&format!("\n```{}```", e.replace("```", "'''")));
        }
        text.push_str(&format!("\n<{}|Open in Vigie>", self.link));
        json!({ "text": text })
    }

    /// A Discord webhook payload (an embed; Discord limits descriptions to 4,096 characters).
    pub fn discord(&self) -> Value {
        let mut description: String = self
            .facts
            .iter()
            .map(|(k, v)| format!("**{k}:** {v}\n"))
            .collect();
        if let Some(e) = &self.evidence {
            description.push_str(&format!("```\n{}\n```", e.replace("```", "'''")));
        }
        let description: String = description.chars().take(4000).collect();
        json!({
            "embeds": [{
                "title": self.title.chars().take(250).collect::<String>(),
                "url": self.link,
                "description": description,
                "color": if self.resolved { 0x1a7f37 } else { 0xcf222e },
            }]
        })
    }

    /// The generic webhook's documented JSON.
    pub fn webhook(&self, rule: &str, at: Timestamp) -> Value {
        json!({
            "rule": rule,
            "title": self.title,
            "status": match (self.report, self.resolved) {
                (true, _) => "report",
                (false, true) => "resolved",
                (false, false) => "firing",
            },
            "facts": self.facts.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "evidence": self.evidence,
            "link": self.link,
            "at": at.to_rfc3339(),
        })
    }
}

/// Slack's three special characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `X-Vigie-Signature` header of a webhook: `sha256=` and the hex HMAC-SHA256 of the body
/// under the channel's secret, as GitHub does, so receivers can reuse their checks.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Where a channel delivers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Email {
        to: Vec<String>,
    },
    Slack {
        url: String,
    },
    Discord {
        url: String,
    },
    Webhook {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
}

impl fmt::Debug for Target {
    // Webhook URLs of Slack and Discord are secrets themselves: only the host is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.describe())
    }
}

/// Why a channel was refused; the text says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChannelError(pub String);

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Email { .. } => "email",
            Target::Slack { .. } => "slack",
            Target::Discord { .. } => "discord",
            Target::Webhook { .. } => "webhook",
        }
    }

    /// Where it goes, without secrets: `ops@example.com`, `hooks.slack.com`.
    pub fn describe(&self) -> String {
        match self {
            Target::Email { to } => to.join(", "),
            Target::Slack { url } | Target::Discord { url } | Target::Webhook { url, .. } => {
                url::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default()
            }
        }
    }

    /// Checks the target as saved; `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), ChannelError> {
        match self {
            Target::Email { to } => {
                if to.is_empty() {
                    return Err(ChannelError("give at least one e-mail address".into()));
                }
                for address in to {
                    let ok = address.split_once('@').is_some_and(|(user, host)| {
                        !user.is_empty()
                            && host.contains('.')
                            && !host.starts_with('.')
                            && !host.ends_with('.')
                            && !address.chars().any(|c| c.is_whitespace() || c == ',')
                    });
                    if !ok {
                        return Err(ChannelError(format!(
                            "\"{address}\" is not an e-mail address"
                        )));
                    }
                }
                Ok(())
            }
            Target::Slack { url } => web_url(url, Some("hooks.slack.com")),
            Target::Discord { url } => web_url(url, None).and_then(|()| {
                if url.contains("/api/webhooks/") {
                    Ok(())
                } else {
                    Err(ChannelError(format!(
                        "\"{url}\" is not a Discord webhook URL (…/api/webhooks/<id>/<token>)"
                    )))
                }
            }),
            Target::Webhook { url, .. } => web_url(url, None),
        }
    }
}

fn web_url(text: &str, host: Option<&str>) -> Result<(), ChannelError> {
    let url =
        url::Url::parse(text).map_err(|e| ChannelError(format!("\"{text}\" is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ChannelError(format!(
            "\"{text}\" must be an http:// or https:// URL with a host"
        )));
    }
    if let Some(host) = host {
        if url.host_str() != Some(host) || url.scheme() != "https" {
            return Err(ChannelError(format!(
                "\"{text}\" is not a Slack incoming webhook (https://{host}/services/…)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_message_says_how_often_the_thing_happened_again() {
        let message = Notification {
            title: "Monitor sync-Stock is down".into(),
            ..Notification::default()
        };
        assert!(message.with_repeats(0).facts.is_empty());
        let once = message.with_repeats(1);
        assert_eq!(
            once.facts,
            [(
                "Repeats".to_string(),
                "happened once more since the last message".to_string()
            )]
        );
        let many = message.with_repeats(14);
        assert_eq!(
            many.facts[0].1,
            "happened 14 times more since the last message"
        );
        assert_eq!(many.title, message.title);
    }
    #[test]
    fn a_transaction_filter_watches_the_route_under_any_method() {
        use super::RuleKind;
        let watches = |f: &str, name| RuleKind::watches_transaction(&Some(f.to_string()), name);
        assert!(watches("/invoices/{id}", "GET /invoices/{id}"));
        assert!(watches("GET /invoices/{id}", "GET /invoices/{id}"));
        assert!(!watches("POST /invoices/{id}", "GET /invoices/{id}"));
        assert!(watches("/invoices*", "DELETE /invoices/7"));
        assert!(watches("GET /inv*", "GET /invoices/7"));
        assert!(!watches("/invoices", "GET /invoices/7"));
        assert!(RuleKind::watches_transaction(&None, "anything"));
    }

    #[test]
    fn rules_read_right_whatever_the_job_kind() {
        use super::RuleKind;
        let email = || Some("email".to_string());
        assert_eq!(
            RuleKind::JobFailed { job_kind: email() }.describe(),
            "an email job fails"
        );
        assert_eq!(
            RuleKind::JobStalled { job_kind: email() }.describe(),
            "an email job stalls"
        );
        assert_eq!(
            RuleKind::ItemErrors {
                job_kind: email(),
                percent: 5
            }
            .describe(),
            "more than 5 % of an email job's items fail"
        );
        assert_eq!(
            RuleKind::JobFailed {
                job_kind: Some("celery".into())
            }
            .describe(),
            "a celery job fails"
        );
    }

    use super::*;

    fn happening(what: What) -> Happening {
        Happening {
            project: ProjectId(1),
            what,
            key: "k".into(),
            environment: None,
            at: Timestamp(0),
            notification: Notification::default(),
        }
    }

    #[test]
    fn rules_match_what_they_watch() {
        let celery = RuleKind::JobFailed {
            job_kind: Some("celery".into()),
        };
        assert!(celery.matches(&happening(What::JobFailed {
            kind: Some("celery".into())
        })));
        assert!(!celery.matches(&happening(What::JobFailed { kind: None })));
        assert!(
            RuleKind::JobFailed { job_kind: None }.matches(&happening(What::JobFailed {
                kind: Some("x".into())
            }))
        );
        // Any job: the application's, not a Celery task's nor a monitor run's.
        for theirs in ["celery", "monitor"] {
            let failed = happening(What::JobFailed {
                kind: Some(theirs.into()),
            });
            assert!(!RuleKind::JobFailed { job_kind: None }.matches(&failed));
            let named = RuleKind::JobFailed {
                job_kind: Some(theirs.into()),
            };
            assert!(named.matches(&failed), "unless the rule asks for {theirs}");
        }
        assert!(!RuleKind::NewIssue.matches(&happening(What::Regression)));
        let nightly = RuleKind::MonitorDown {
            slug: Some("nightly".into()),
        };
        assert!(nightly.matches(&happening(What::MonitorUp {
            slug: "nightly".into()
        })));
        assert!(!nightly.matches(&happening(What::MonitorDown {
            slug: "backup".into()
        })));
        assert_eq!(celery.describe(), "a celery job fails");
    }

    #[test]
    fn a_crash_free_rule_needs_a_rate_and_whole_hours() {
        let rule = |below: f64, window_s: u64| RuleKind::CrashFreeSessions {
            below: crate::metric::Limit(below),
            window_s,
        };
        assert!(rule(99.5, 3600).validate().is_ok());
        assert!(rule(99.5, 3600).is_threshold());
        assert_eq!(
            rule(99.5, 7200).describe(),
            "a release's crash-free sessions fall below 99.5 % over 2 h"
        );
        assert!(rule(100.0, 3600)
            .validate()
            .unwrap_err()
            .contains("below 100"));
        assert!(rule(0.0, 3600).validate().is_err());
        assert!(rule(f64::NAN, 3600).validate().is_err());
        assert!(rule(99.0, 600).validate().unwrap_err().contains("1 h"));
        assert!(rule(99.0, 2 * 86_400).validate().is_err());
        // Stored as JSON like every kind.
        let json = serde_json::to_value(rule(99.5, 3600)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "crash_free_sessions", "below": 99.5, "window_s": 3600})
        );
    }

    #[test]
    fn channels_are_checked_when_saved() {
        let err = |t: Target| t.validate().unwrap_err().0;
        assert!(Target::Email {
            to: vec!["ops@example.com".into()]
        }
        .validate()
        .is_ok());
        assert!(err(Target::Email { to: vec![] }).contains("at least one"));
        assert!(err(Target::Email {
            to: vec!["ops at example".into()]
        })
        .contains("not an e-mail address"));
        assert!(err(Target::Slack {
            url: "https://example.com/x".into()
        })
        .contains("not a Slack incoming webhook"));
        assert!(Target::Slack {
            url: "https://hooks.slack.com/services/T/B/X".into()
        }
        .validate()
        .is_ok());
        assert!(err(Target::Discord {
            url: "https://discord.com/channels/1".into()
        })
        .contains("not a Discord webhook"));
        assert!(err(Target::Webhook {
            url: "ftp://x".into(),
            secret: None
        })
        .contains("http:// or https://"));
        assert!(err(Target::Webhook {
            url: "nope".into(),
            secret: None
        })
        .contains("not a URL"));
        let slack = Target::Slack {
            url: "https://hooks.slack.com/services/T/B/SECRET".into(),
        };
        assert_eq!(format!("{slack:?}"), "hooks.slack.com", "no secret in logs");
    }

    #[test]
    fn messages_per_channel() {
        let n = Notification {
            title: "New issue: KeyError <'BE'>".into(),
            facts: vec![("Project".into(), "billing".into())],
            link: "http://vigie/issues/7".into(),
            evidence: Some("billing/invoices.py in render_invoice".into()),
            resolved: false,
            report: false,
        };
        assert_eq!(n.subject(), "[alert] New issue: KeyError <'BE'>");
        assert!(n.text().contains("Project: billing\n"));
        assert!(n.text().contains("Open in Vigie: http://vigie/issues/7"));
        let slack = n.slack()["text"].as_str().unwrap().to_string();
        assert!(slack.contains("KeyError &lt;'BE'&gt;"), "{slack}");
        assert!(slack.contains("<http://vigie/issues/7|Open in Vigie>"));
        assert_eq!(n.discord()["embeds"][0]["url"], "http://vigie/issues/7");
        let hook = n.webhook("new issues", Timestamp(0));
        assert_eq!(hook["status"], "firing");
        assert_eq!(hook["facts"][0]["name"], "Project");
        let report = Notification {
            report: true,
            ..n.clone()
        };
        assert!(report.subject().starts_with("[report] "));
        assert_eq!(
            report.webhook("daily report", Timestamp(0))["status"],
            "report"
        );
        // The signature GitHub-style receivers check (RFC 4231 test case 2).
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
