//! The Alerts page: channels (with "send test"), rules (mute, delete), and the delivery log.
//! Everyone logged in can look; admins change. The forms share their rules with the API
//! (`crate::alerts::api`).

use crate::alerts::api::{self, ChannelView, RuleView, DEFAULT_COOLDOWN_S};
use crate::auth::AdminUser;
use crate::http::{AppError, PageError};
use crate::state::AppState;
use crate::web::{form_outcome, render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use vigie_core::alert::{RuleKind, Target};
use vigie_core::{Project, Timestamp};
use vigie_store::{Delivery, NewRule, Rule};

const ALERTS: &str = "/alerts";

/// The rule kinds a form offers: value, words, what the "Only" field means for it, and what
/// the threshold means (empty: the kind has none).
pub const KINDS: &[(&str, &str, &str, &str)] = &[
    ("new_issue", "a new issue appears", "", ""),
    ("regression", "a resolved issue comes back", "", ""),
    (
        "job_failed",
        "a reported job fails",
        "job kind (celery, monitor: their jobs too)",
        "",
    ),
    ("job_stalled", "a reported job stalls", "job kind", ""),
    (
        "monitor_down",
        "a monitor run fails, is missed or times out",
        "monitor slug",
        "",
    ),
    (
        "issue_events",
        "an issue gets more than N events in the window",
        "",
        "events",
    ),
    (
        "error_events",
        "more than N error events per minute",
        "",
        "events per minute",
    ),
    (
        "log_matches",
        "more than N log lines match a query in the window",
        "the log query (required), e.g. level:>=error logger:invoices*",
        "lines",
    ),
    (
        "slow_transactions",
        "transactions' p95 is above N ms over the window",
        "transaction name, or a prefix*",
        "milliseconds",
    ),
    (
        "failing_transactions",
        "more than N % of transactions fail over the window",
        "transaction name, or a prefix*",
        "percent",
    ),
    (
        "worker_offline",
        "a Celery worker goes offline",
        "worker hostname, e.g. celery@web-1",
        "",
    ),
    (
        "item_errors",
        "more than N % of a job's items fail",
        "job kind",
        "percent",
    ),
    (
        "task_failures",
        "more than N % of Celery tasks fail over the window",
        "task name, or a prefix*",
        "percent",
    ),
    (
        "task_runtime",
        "a Celery task runs longer than N minutes",
        "task name, or a prefix*",
        "minutes",
    ),
    (
        "queue_length",
        "more than N messages wait in a Celery queue",
        "queue name",
        "messages",
    ),
    (
        "metric_threshold",
        "a metric's figure is above N over the window",
        "figure(metric) and filters, e.g. p95(http.server.duration) http.route:/api*",
        "value",
    ),
    (
        "crash_free_sessions",
        "a release's crash-free sessions fall below N % over the window (whole hours)",
        "",
        "percent, e.g. 99.5",
    ),
];

#[derive(Template)]
#[template(path = "alerts/alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    project: Project,
    channels: Vec<ChannelView>,
    rules: Vec<RuleView>,
    deliveries: Vec<Delivery>,
    smtp: bool,
    now: Timestamp,
    /// The rule form's values: empty to add a rule, a rule's own to change it.
    form: RuleForm,
    /// The rule the form changes (`?edit=ID`).
    editing: Option<i64>,
}

impl AlertsPage {
    fn form_action(&self) -> String {
        match self.editing {
            Some(id) => format!("/alerts/rules/{id}"),
            None => "/alerts/rules".into(),
        }
    }
    fn kind_chosen(&self, value: &str) -> bool {
        self.form.kind == value
    }
    fn channel_chosen(&self, id: &i64) -> bool {
        self.form.channels.contains(id)
    }
    fn kinds(&self) -> &'static [(&'static str, &'static str, &'static str, &'static str)] {
        KINDS
    }

    fn channel_names(&self, ids: &[i64]) -> String {
        ids.iter()
            .map(|id| {
                self.channels
                    .iter()
                    .find(|c| c.channel.id == *id)
                    .map_or_else(|| format!("#{id}"), |c| c.channel.name.clone())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn channel_name(&self, id: &i64) -> String {
        self.channel_names(&[*id])
    }

    fn cooldown(&self, seconds: &i64) -> String {
        match seconds {
            0 => "none".into(),
            // Settings in whole minutes read as such ("30 min", not "30m 0s").
            s => vigie_core::alert::span_words((*s).max(0) as u64),
        }
    }

    fn muted(&self, rule: &RuleView) -> bool {
        rule.rule.muted_at(self.now)
    }

    fn status_class(&self, status: &str) -> &'static str {
        match status {
            "sent" => "completed",
            "failed" => "failed",
            _ => "running",
        }
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    /// A rule to change in the form.
    edit: Option<i64>,
}

pub async fn page(
    State(state): State<AppState>,
    request: PageRequest,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "alerts").await?;
    let project = chrome.project_or_404()?;
    let channels = state.store.list_channels(project.id).await?;
    let rules = state.store.list_rules(project.id).await?;
    let edited = query
        .edit
        .and_then(|id| rules.iter().find(|r| r.id == id && !r.from_config));
    let page = AlertsPage {
        form: edited.map(RuleForm::of).unwrap_or_default(),
        editing: edited.map(|r| r.id),
        channels: channels.into_iter().map(ChannelView::from).collect(),
        rules: rules.into_iter().map(RuleView::from).collect(),
        deliveries: state.store.list_deliveries(project.id, 50).await?,
        smtp: state.config.smtp.configured(),
        now: Timestamp::now(),
        project,
        chrome,
    };
    render(&page, &page.chrome)
}

async fn current(state: &AppState, request: &PageRequest<AdminUser>) -> Result<Project, PageError> {
    let chrome = request.chrome(state, "alerts").await?;
    Ok(chrome.project_or_404()?)
}

#[derive(Deserialize)]
pub struct ChannelForm {
    name: String,
    kind: String,
    destination: String,
    #[serde(default)]
    secret: String,
}

impl ChannelForm {
    fn target(&self) -> Result<Target, AppError> {
        let url = self.destination.trim().to_string();
        Ok(match self.kind.as_str() {
            "email" => Target::Email {
                to: self
                    .destination
                    .split([',', ';', ' '])
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
            },
            "slack" => Target::Slack { url },
            "discord" => Target::Discord { url },
            "webhook" => Target::Webhook {
                url,
                secret: Some(self.secret.trim().to_string()).filter(|s| !s.is_empty()),
            },
            other => {
                return Err(AppError::Invalid {
                    field: "kind".into(),
                    message: format!("\"{other}\" is not email, slack, discord or webhook"),
                })
            }
        })
    }
}

pub async fn add_channel(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Form(form): Form<ChannelForm>,
) -> Result<Response, PageError> {
    let project = current(&state, &request).await?;
    let result = match form.target() {
        Ok(target) => api::create_channel(&state, project.id, &form.name, &target).await,
        Err(err) => Err(err),
    };
    form_outcome(result, ALERTS, request.secure_cookies(&state), |c| {
        format!(
            "Channel \"{}\" added. Send it a test to see the message arrive.",
            c.name
        )
    })
}

pub async fn test_channel(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let project = current(&state, &request).await?;
    let result = match api::test_channel(&state, project.id, id).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(AppError::Invalid {
            field: "channel".into(),
            message: format!("the test could not be delivered: {why}"),
        }),
        Err(err) => Err(err),
    };
    form_outcome(result, ALERTS, request.secure_cookies(&state), |()| {
        "Test message sent.".to_string()
    })
}

pub async fn delete_channel(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let project = current(&state, &request).await?;
    let result = state
        .store
        .delete_channel(project.id, id)
        .await
        .map_err(AppError::from);
    form_outcome(result, ALERTS, request.secure_cookies(&state), |()| {
        "Channel deleted.".to_string()
    })
}

/// The rule form as typed. Read from the raw body: the checked channels come as repeated
/// keys (`channel=1&channel=3`), which the usual form extractor cannot gather.
#[derive(Default)]
pub struct RuleForm {
    name: String,
    kind: String,
    filter: String,
    environment: String,
    cooldown_min: String,
    renotify_min: String,
    threshold: String,
    window_min: String,
    channels: Vec<i64>,
}

impl RuleForm {
    /// A rule as the form shows it, to change it: the inverse of [`RuleForm::rule`].
    fn of(rule: &Rule) -> RuleForm {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let minutes = |s: u64| (s / 60).to_string();
        let (kind, filter, threshold, window_min) = match &rule.kind {
            RuleKind::NewIssue => ("new_issue", String::new(), String::new(), String::new()),
            RuleKind::Regression => ("regression", String::new(), String::new(), String::new()),
            RuleKind::JobFailed { job_kind } => {
                ("job_failed", text(job_kind), String::new(), String::new())
            }
            RuleKind::JobStalled { job_kind } => {
                ("job_stalled", text(job_kind), String::new(), String::new())
            }
            RuleKind::MonitorDown { slug } => {
                ("monitor_down", text(slug), String::new(), String::new())
            }
            RuleKind::IssueEvents { above, window_s } => (
                "issue_events",
                String::new(),
                above.to_string(),
                minutes(*window_s),
            ),
            RuleKind::ErrorEvents { per_minute } => (
                "error_events",
                String::new(),
                per_minute.to_string(),
                String::new(),
            ),
            RuleKind::LogMatches {
                query,
                above,
                window_s,
            } => (
                "log_matches",
                query.clone(),
                above.to_string(),
                minutes(*window_s),
            ),
            RuleKind::SlowTransactions {
                transaction,
                p95_ms,
                window_s,
            } => (
                "slow_transactions",
                text(transaction),
                p95_ms.to_string(),
                minutes(*window_s),
            ),
            RuleKind::FailingTransactions {
                transaction,
                percent,
                window_s,
            } => (
                "failing_transactions",
                text(transaction),
                percent.to_string(),
                minutes(*window_s),
            ),
            RuleKind::WorkerOffline { hostname } => (
                "worker_offline",
                text(hostname),
                String::new(),
                String::new(),
            ),
            RuleKind::ItemErrors { job_kind, percent } => (
                "item_errors",
                text(job_kind),
                percent.to_string(),
                String::new(),
            ),
            RuleKind::TaskFailures {
                task,
                percent,
                window_s,
            } => (
                "task_failures",
                text(task),
                percent.to_string(),
                minutes(*window_s),
            ),
            RuleKind::TaskRuntime { task, above_s } => {
                ("task_runtime", text(task), minutes(*above_s), String::new())
            }
            RuleKind::QueueLength { queue, above } => (
                "queue_length",
                text(queue),
                above.to_string(),
                String::new(),
            ),
            RuleKind::MetricThreshold {
                metric,
                stat,
                filter,
                above,
                window_s,
            } => (
                "metric_threshold",
                vigie_core::metric::watch_text(*stat, metric, filter),
                above.0.to_string(),
                minutes(*window_s),
            ),
            RuleKind::CrashFreeSessions { below, window_s } => (
                "crash_free_sessions",
                String::new(),
                below.0.to_string(),
                minutes(*window_s),
            ),
        };
        RuleForm {
            name: rule.name.clone(),
            kind: kind.into(),
            filter,
            environment: text(&rule.environment),
            cooldown_min: (rule.cooldown_s / 60).to_string(),
            renotify_min: match rule.renotify_s {
                0 => String::new(),
                s => (s / 60).to_string(),
            },
            threshold,
            window_min,
            channels: rule.channels.clone(),
        }
    }

    fn parse(body: &[u8]) -> RuleForm {
        let mut form = RuleForm::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "name" => form.name = value,
                "kind" => form.kind = value,
                "filter" => form.filter = value,
                "environment" => form.environment = value,
                "cooldown_min" => form.cooldown_min = value,
                "renotify_min" => form.renotify_min = value,
                "threshold" => form.threshold = value,
                "window_min" => form.window_min = value,
                "channel" => form.channels.extend(value.parse::<i64>().ok()),
                _ => {}
            }
        }
        form
    }

    fn rule(&self) -> Result<NewRule, AppError> {
        let filter = Some(self.filter.trim().to_string()).filter(|f| !f.is_empty());
        let threshold = || number(&self.threshold, "threshold", None);
        let window_s = || Ok::<_, AppError>(number(&self.window_min, "window", Some(5))? * 60);
        let percent = || {
            threshold().and_then(|p| {
                u32::try_from(p).map_err(|_| invalid("threshold", "a percentage is 1 to 99"))
            })
        };
        let kind = match self.kind.as_str() {
            "new_issue" => RuleKind::NewIssue,
            "regression" => RuleKind::Regression,
            "job_failed" => RuleKind::JobFailed { job_kind: filter },
            "job_stalled" => RuleKind::JobStalled { job_kind: filter },
            "monitor_down" => RuleKind::MonitorDown { slug: filter },
            "issue_events" => RuleKind::IssueEvents {
                above: threshold()?,
                window_s: window_s()?,
            },
            "error_events" => RuleKind::ErrorEvents {
                per_minute: threshold()?,
            },
            "log_matches" => RuleKind::LogMatches {
                query: filter.ok_or_else(|| invalid("filter", "give the log query to count"))?,
                above: threshold()?,
                window_s: window_s()?,
            },
            "slow_transactions" => RuleKind::SlowTransactions {
                transaction: filter,
                p95_ms: threshold()?,
                window_s: window_s()?,
            },
            "failing_transactions" => RuleKind::FailingTransactions {
                transaction: filter,
                percent: percent()?,
                window_s: window_s()?,
            },
            "worker_offline" => RuleKind::WorkerOffline { hostname: filter },
            "item_errors" => RuleKind::ItemErrors {
                job_kind: filter,
                percent: percent()?,
            },
            "task_failures" => RuleKind::TaskFailures {
                task: filter,
                percent: percent()?,
                window_s: window_s()?,
            },
            "task_runtime" => RuleKind::TaskRuntime {
                task: filter,
                above_s: threshold()? * 60,
            },
            "queue_length" => RuleKind::QueueLength {
                queue: filter,
                above: threshold()?,
            },
            "metric_threshold" => {
                let (stat, metric, filter) =
                    vigie_core::metric::parse_watch(filter.as_deref().unwrap_or_default())
                        .map_err(|e| invalid("filter", &e))?;
                let above = self
                    .threshold
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| invalid("threshold", "the threshold is a number, e.g. 0.5"))?;
                RuleKind::MetricThreshold {
                    metric,
                    stat,
                    filter,
                    above: vigie_core::metric::Limit(above),
                    window_s: window_s()?,
                }
            }
            "crash_free_sessions" => RuleKind::CrashFreeSessions {
                below: vigie_core::metric::Limit(
                    self.threshold
                        .trim()
                        .trim_end_matches('%')
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| {
                            invalid(
                                "threshold",
                                "the crash-free rate is a percentage, e.g. 99.5",
                            )
                        })?,
                ),
                // Sessions are kept per hour: an hour unless told.
                window_s: number(&self.window_min, "window", Some(60))? * 60,
            },
            other => {
                return Err(invalid(
                    "kind",
                    &format!("\"{other}\" is not a kind of rule"),
                ))
            }
        };
        let minutes = |text: &str, field: &str, default: i64| {
            number(text, field, Some(default as u64)).map(|m| m as i64 * 60)
        };
        Ok(NewRule {
            name: self.name.clone(),
            kind,
            environment: Some(self.environment.trim().to_string()).filter(|e| !e.is_empty()),
            channels: self.channels.clone(),
            cooldown_s: minutes(&self.cooldown_min, "cooldown", DEFAULT_COOLDOWN_S / 60)?,
            renotify_s: minutes(&self.renotify_min, "re-notify", 0)?,
            from_config: false,
        })
    }
}

fn invalid(field: &str, message: &str) -> AppError {
    AppError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A whole number typed in a form field; `default` when left empty (else it is required).
fn number(text: &str, field: &str, default: Option<u64>) -> Result<u64, AppError> {
    match (text.trim(), default) {
        ("", Some(d)) => Ok(d),
        ("", None) => Err(invalid(field, &format!("give a {field}"))),
        (t, _) => t
            .parse()
            .map_err(|_| invalid(field, &format!("\"{t}\" is not a whole number"))),
    }
}

/// `POST /alerts/rules/{id}`: the rule changed from the form.
pub async fn change_rule(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let project = current(&state, &request).await?;
    let result = async {
        let rule = RuleForm::parse(&body).rule()?;
        api::change_rule(&state, project.id, id, &rule).await
    }
    .await;
    form_outcome(result, ALERTS, request.secure_cookies(&state), |r| {
        format!("Rule \"{}\" saved: when {}.", r.name, r.kind.describe())
    })
}

pub async fn add_rule(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let project = current(&state, &request).await?;
    let result = async {
        let rule = RuleForm::parse(&body).rule()?;
        api::save_rule(&state, project.id, &rule).await
    }
    .await;
    form_outcome(result, ALERTS, request.secure_cookies(&state), |r| {
        format!("Rule \"{}\" added: when {}.", r.name, r.kind.describe())
    })
}

#[derive(Deserialize)]
pub struct MuteForm {
    /// Hours to mute for; 0 unmutes.
    hours: i64,
}

pub async fn mute_rule(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
    Form(form): Form<MuteForm>,
) -> Result<Response, PageError> {
    let project = current(&state, &request).await?;
    let until = (form.hours > 0)
        .then(|| Timestamp(Timestamp::now().millis() + form.hours.min(24 * 365) * 3_600_000));
    let result = api::mute_rule(&state, project.id, id, until).await;
    form_outcome(
        result,
        ALERTS,
        request.secure_cookies(&state),
        |r| match r.muted_until {
            Some(t) => format!("Rule \"{}\" muted until {}.", r.name, t.to_rfc3339()),
            None => format!("Rule \"{}\" is active again.", r.name),
        },
    )
}

pub async fn delete_rule(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let project = current(&state, &request).await?;
    let result = api::delete_rule(&state, project.id, id).await;
    form_outcome(result, ALERTS, request.secure_cookies(&state), |()| {
        "Rule deleted.".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::ProjectId;

    /// Every kind of rule shown in the form to change it reads back as the same rule.
    #[test]
    fn a_rule_in_the_form_reads_back_the_same() {
        let kinds = [
            RuleKind::NewIssue,
            RuleKind::JobFailed {
                job_kind: Some("email".into()),
            },
            RuleKind::MonitorDown { slug: None },
            RuleKind::IssueEvents {
                above: 50,
                window_s: 600,
            },
            RuleKind::ErrorEvents { per_minute: 20 },
            RuleKind::LogMatches {
                query: "level:error smtp".into(),
                above: 5,
                window_s: 300,
            },
            RuleKind::SlowTransactions {
                transaction: Some("/Reports/Export".into()),
                p95_ms: 800,
                window_s: 900,
            },
            RuleKind::FailingTransactions {
                transaction: None,
                percent: 5,
                window_s: 300,
            },
            RuleKind::ItemErrors {
                job_kind: None,
                percent: 10,
            },
            RuleKind::TaskFailures {
                task: Some("shop.tasks.*".into()),
                percent: 20,
                window_s: 600,
            },
            RuleKind::TaskRuntime {
                task: None,
                above_s: 1800,
            },
            RuleKind::QueueLength {
                queue: Some("mail".into()),
                above: 1000,
            },
            RuleKind::WorkerOffline { hostname: None },
        ];
        for kind in kinds {
            let rule = Rule {
                id: 1,
                project: ProjectId(1),
                name: "Failed sends".into(),
                kind: kind.clone(),
                environment: Some("production".into()),
                channels: vec![3, 4],
                cooldown_s: 1800,
                renotify_s: 3600,
                muted_until: None,
                created_at: Timestamp(0),
                from_config: false,
            };
            let back = RuleForm::of(&rule).rule().unwrap();
            assert_eq!(back.kind, kind);
            assert_eq!(
                (back.name.as_str(), back.environment.as_deref()),
                ("Failed sends", Some("production"))
            );
            assert_eq!(
                (back.channels, back.cooldown_s, back.renotify_s),
                (vec![3, 4], 1800, 3600)
            );
        }
    }
}
