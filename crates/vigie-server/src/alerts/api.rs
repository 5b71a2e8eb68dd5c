//! Alerts as JSON, and the actions the Alerts page shares with it.
//!
//! ```text
//! GET  /api/v1/alerts/channels            POST (admin) {"name", "target": {"kind": "email",
//!                                          "to": [...]} | {"kind": "slack" | "discord", "url"}
//!                                          | {"kind": "webhook", "url", "secret"}}
//! DELETE /api/v1/alerts/channels/{id}     POST /api/v1/alerts/channels/{id}/test
//! GET  /api/v1/alerts/rules               POST (admin) {"name", "rule": RuleKind as JSON
//!                                          ({"kind": "new_issue"}, {"kind": "log_matches",
//!                                          "query", "above", "window_s"}, …), "environment",
//!                                          "channels": [id], "cooldown_s", "renotify_s"}
//! PUT  /api/v1/alerts/rules/{id}          (admin) the same body: the rule changed wholly
//! DELETE /api/v1/alerts/rules/{id}        POST /api/v1/alerts/rules/{id}/mute {"until": RFC 3339
//!                                          | null}
//! GET  /api/v1/alerts/deliveries?limit=   the delivery log, newest first
//! ```
//!
//! The webhook JSON Vigie sends is documented in the README ("Alerts").

use crate::auth::job_access::ProjectReader;
use crate::http::paging::LimitParams;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use vigie_core::alert::{Notification, RuleKind, Target};
use vigie_core::{ProjectId, Timestamp};
use vigie_store::{Channel, Delivery, NewDelivery, NewRule, Rule};

/// Default cooldown: the same thing alerts at most once in 30 minutes.
pub const DEFAULT_COOLDOWN_S: i64 = 1800;

/// A channel as shown: where it delivers without its secrets.
#[derive(Serialize)]
pub struct ChannelView {
    #[serde(flatten)]
    pub channel: Channel,
    pub kind: &'static str,
    pub destination: String,
}

impl From<Channel> for ChannelView {
    fn from(channel: Channel) -> Self {
        ChannelView {
            kind: channel.target.kind(),
            destination: channel.target.describe(),
            channel,
        }
    }
}

#[derive(Deserialize)]
pub struct NewChannelBody {
    pub name: String,
    pub target: Target,
}

/// Saves a channel, refusing one that cannot work (an e-mail channel without a mail server).
pub async fn create_channel(
    state: &AppState,
    project: ProjectId,
    name: &str,
    target: &Target,
) -> Result<Channel, AppError> {
    if matches!(target, Target::Email { .. }) && !state.config.smtp.configured() {
        return Err(AppError::Invalid {
            field: "target".into(),
            message: "no mail server is configured: set [smtp] host and from in vigie.toml \
                      (or VIGIE_SMTP_HOST, VIGIE_SMTP_FROM) first"
                .into(),
        });
    }
    Ok(state
        .store
        .create_channel(project, name, target, false, Timestamp::now())
        .await?)
}

/// Sends a test message through a channel now; answers what happened.
pub async fn test_channel(
    state: &AppState,
    project: ProjectId,
    id: i64,
) -> Result<Result<(), String>, AppError> {
    let channel = state
        .store
        .channel(id)
        .await?
        .filter(|c| c.project == project)
        .ok_or_else(|| AppError::NotFound(format!("no channel {id}")))?;
    let message = Notification {
        title: format!("Test from Vigie: channel \"{}\" works", channel.name),
        facts: vec![("Channel".into(), channel.target.kind().into())],
        link: format!("{}/alerts", state.base_url.trim_end_matches('/')),
        evidence: None,
        resolved: false,
        report: false,
    };
    let outcome = super::send::send(state, &channel, &message, None)
        .await
        .map_err(|e| e.to_string());
    // Kept in the delivery log like any other message.
    let ids = state
        .store
        .enqueue(vec![NewDelivery {
            project,
            channel: id,
            rule: None,
            message,
            at: Timestamp::now(),
        }])
        .await?;
    state
        .store
        .delivered(ids[0], outcome.clone(), None, Timestamp::now())
        .await?;
    Ok(outcome)
}

pub async fn channels(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    let list = state.store.list_channels(reader.project.id).await?;
    Ok(Json(list.into_iter().map(ChannelView::from).collect()))
}

pub async fn add_channel(
    State(state): State<AppState>,
    reader: ProjectReader,
    Json(body): Json<NewChannelBody>,
) -> Result<Response, ApiError> {
    let channel = create_channel(&state, reader.project.id, &body.name, &body.target).await?;
    Ok((StatusCode::CREATED, Json(ChannelView::from(channel))).into_response())
}

pub async fn remove_channel(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    state.store.delete_channel(reader.project.id, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize)]
pub struct TestAnswer {
    pub sent: bool,
    pub error: Option<String>,
}

pub async fn test(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
) -> Result<Json<TestAnswer>, ApiError> {
    let outcome = test_channel(&state, reader.project.id, id).await?;
    Ok(Json(TestAnswer {
        sent: outcome.is_ok(),
        error: outcome.err(),
    }))
}

#[derive(Deserialize)]
pub struct NewRuleBody {
    pub name: String,
    pub rule: RuleKind,
    pub environment: Option<String>,
    pub channels: Vec<i64>,
    pub cooldown_s: Option<i64>,
    #[serde(default)]
    pub renotify_s: i64,
}

/// Saves a rule (the API, the page and the configuration file) and has the engine re-read
/// the rules.
pub async fn save_rule(
    state: &AppState,
    project: ProjectId,
    rule: &NewRule,
) -> Result<Rule, AppError> {
    let saved = state
        .store
        .create_rule(project, rule, Timestamp::now())
        .await?;
    state.rules_changed.mark();
    Ok(saved)
}

/// Changes a rule the people of the project made; a rule from the configuration file is
/// changed there (it would come back as the file says at the next start).
pub async fn change_rule(
    state: &AppState,
    project: ProjectId,
    id: i64,
    rule: &NewRule,
) -> Result<Rule, AppError> {
    let rules = state.store.list_rules(project).await?;
    let current = rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| AppError::NotFound(format!("no rule {id} in this project")))?;
    if current.from_config {
        return Err(AppError::Conflict(format!(
            "the rule {:?} is set in the configuration file: change it there",
            current.name
        )));
    }
    let saved = state.store.update_rule(project, id, rule).await?;
    state.rules_changed.mark();
    Ok(saved)
}

pub async fn delete_rule(state: &AppState, project: ProjectId, id: i64) -> Result<(), AppError> {
    state.store.delete_rule(project, id).await?;
    state.rules_changed.mark();
    Ok(())
}

pub async fn mute_rule(
    state: &AppState,
    project: ProjectId,
    id: i64,
    until: Option<Timestamp>,
) -> Result<Rule, AppError> {
    let rule = state.store.mute_rule(project, id, until).await?;
    state.rules_changed.mark();
    Ok(rule)
}

#[derive(Serialize)]
pub struct RuleView {
    #[serde(flatten)]
    pub rule: Rule,
    /// The rule in words: "a job fails".
    pub when: String,
}

impl From<Rule> for RuleView {
    fn from(rule: Rule) -> Self {
        RuleView {
            when: rule.kind.describe(),
            rule,
        }
    }
}

pub async fn rules(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<Vec<RuleView>>, ApiError> {
    let list = state.store.list_rules(reader.project.id).await?;
    Ok(Json(list.into_iter().map(RuleView::from).collect()))
}

pub async fn add_rule(
    State(state): State<AppState>,
    reader: ProjectReader,
    Json(body): Json<NewRuleBody>,
) -> Result<Response, ApiError> {
    let rule = save_rule(&state, reader.project.id, &body.into_rule()).await?;
    Ok((StatusCode::CREATED, Json(RuleView::from(rule))).into_response())
}

impl NewRuleBody {
    /// The rule a client sent (to add or to change), with the default cooldown if it gave none.
    fn into_rule(self) -> NewRule {
        NewRule {
            name: self.name,
            kind: self.rule,
            environment: self.environment,
            channels: self.channels,
            cooldown_s: self.cooldown_s.unwrap_or(DEFAULT_COOLDOWN_S),
            renotify_s: self.renotify_s,
            from_config: false,
        }
    }
}

pub async fn replace_rule(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
    Json(body): Json<NewRuleBody>,
) -> Result<Json<RuleView>, ApiError> {
    let rule = change_rule(&state, reader.project.id, id, &body.into_rule()).await?;
    Ok(Json(RuleView::from(rule)))
}

pub async fn remove_rule(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    delete_rule(&state, reader.project.id, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct MuteBody {
    /// RFC 3339; `null` unmutes.
    pub until: Option<String>,
}

pub async fn mute(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
    Json(body): Json<MuteBody>,
) -> Result<Json<RuleView>, ApiError> {
    let until = body
        .until
        .map(|t| {
            Timestamp::parse_rfc3339(&t).ok_or_else(|| AppError::Invalid {
                field: "until".into(),
                message: format!("\"{t}\" is not an RFC 3339 time"),
            })
        })
        .transpose()?;
    let rule = mute_rule(&state, reader.project.id, id, until).await?;
    Ok(Json(RuleView::from(rule)))
}

pub async fn deliveries(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<LimitParams>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let limit = params.or(100);
    Ok(Json(
        state
            .store
            .list_deliveries(reader.project.id, limit)
            .await?,
    ))
}
