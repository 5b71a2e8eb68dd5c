//! Issues, events and performance as JSON (what the CLI and scripts read).
//!
//! ```text
//! GET  /api/v1/issues?status=&level=&environment=&release=&query=&sort=&period=&limit=&offset=
//! GET  /api/v1/issues/{id}                 the issue, its tag values, its latest event
//! POST /api/v1/issues/{id}/status          {"action": "resolve" | "resolve_next" | "ignore"
//!                                           | "reopen", "more_events": n, "until": RFC 3339}
//! GET  /api/v1/issues/{id}/events?limit=   newest first
//! GET  /api/v1/events/{event_id}           one event's stored JSON (scrubbed)
//! GET  /api/v1/feedback?issue=&limit=      user feedback, newest first (only an issue's)
//! GET  /api/v1/attachments/{id}            an attachment's bytes
//! GET  /api/v1/transactions?period=        per name: throughput, failure rate, percentiles,
//!                                          Apdex
//! GET  /api/v1/transactions/detail?name=&period=   over time, samples, slow spans
//! GET  /api/v1/error-settings  PUT /api/v1/error-settings   the project's settings
//! ```
//!
//! `query` holds words and `key:value` tag filters (`is:resolved`, `level:error` and
//! `environment:production` work too), as in the UI's search box. The project is `?project=`
//! as everywhere (see `ProjectReader`).

use super::{ErrorIngest, SettingsChange};
use crate::auth::job_access::ProjectReader;
use crate::http::paging::{self, LimitParams};
use crate::http::{ApiError, AppError};
use crate::sourcemaps::maps::Resolver;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use vigie_core::issue::{Issue, IssueId, IssueStatus, StatusChange};
use vigie_core::search_box::Term;
use vigie_core::sketch::Apdex;
use vigie_core::{ProjectId, Timestamp};
use vigie_store::errors::{Feedback, SampleMeta, SpanStat, TagCount, TransactionStats};
use vigie_store::{ErrorSettings, EventFilter, EventMeta, IssueFilter, IssueSort};

const HOUR_MS: i64 = 3_600_000;

#[derive(Deserialize, Default, Clone)]
pub struct IssueParams {
    #[serde(default)]
    pub query: String,
    pub status: Option<String>,
    pub level: Option<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub sort: Option<String>,
    /// Only issues seen within this period (`24h`, `14d`); empty: any time.
    pub period: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// `24h`, `14d`, `90m`… as a duration.
pub fn parse_period(field: &str, text: &str) -> Result<Duration, AppError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        invalid(
            field,
            format!("{text:?} is not a period like 24h or 14d: {e}"),
        )
    })
}

impl IssueParams {
    /// The store filter these parameters describe. Terms of `query` shaped `key:value` filter
    /// (`is:` a status, `level:`, `environment:`, `release:`, any other key a tag); the rest,
    /// and anything in double quotes, are words ([`vigie_core::search_box`]).
    pub fn filter(&self, project: ProjectId) -> Result<IssueFilter, AppError> {
        let mut f = IssueFilter {
            project,
            status: None,
            level: self.level.clone().filter(|s| !s.is_empty()),
            environment: self.environment.clone().filter(|s| !s.is_empty()),
            release: self.release.clone().filter(|s| !s.is_empty()),
            limit: paging::limit(self.limit, 50, paging::MOST),
            offset: self.offset.unwrap_or(0),
            ..IssueFilter::default()
        };
        let mut status = self.status.clone().filter(|s| !s.is_empty() && s != "all");
        let mut words = Vec::new();
        for term in vigie_core::search_box::terms(&self.query) {
            match term {
                Term::Filter { key, value } => match key.as_str() {
                    "is" => status = Some(value),
                    "level" => f.level = Some(value),
                    "environment" | "env" => f.environment = Some(value),
                    "release" => f.release = Some(value),
                    _ => f.tags.push((key, value)),
                },
                Term::Word(word) => words.push(word),
            }
        }
        vigie_core::validate::tag_filters(f.tags.len()).map_err(|e| invalid("query", e))?;
        vigie_core::validate::search_words(vigie_core::search_box::word_count(&words))
            .map_err(|e| invalid("query", e))?;
        f.text = Some(words.join(" ")).filter(|t| !t.is_empty());
        f.status = status
            .map(|s| s.parse::<IssueStatus>().map_err(|e| invalid("status", e)))
            .transpose()?;
        f.sort = IssueSort::parse(self.sort.as_deref().unwrap_or(""))
            .ok_or_else(|| invalid("sort", "use last_seen, first_seen, events or users"))?;
        if let Some(period) = self.period.as_deref().filter(|p| !p.is_empty()) {
            f.since = Some(Timestamp(
                Timestamp::now().millis() - parse_period("period", period)?.as_millis() as i64,
            ));
        }
        Ok(f)
    }
}

/// An issue as the API shows it.
#[derive(Serialize)]
pub struct IssueView {
    pub id: IssueId,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub status: IssueStatus,
    pub regressed: bool,
    pub first_seen: String,
    pub last_seen: String,
    pub events: i64,
    pub users: i64,
    pub first_release: Option<String>,
    pub last_release: Option<String>,
    pub resolved_release: Option<String>,
    pub ignore_until_events: Option<i64>,
    pub ignore_until: Option<String>,
}

impl From<&Issue> for IssueView {
    fn from(i: &Issue) -> Self {
        IssueView {
            id: i.id,
            title: i.title.clone(),
            culprit: i.culprit.clone(),
            level: i.level.clone(),
            status: i.status,
            regressed: i.regressed_at.is_some(),
            first_seen: i.first_seen.to_rfc3339(),
            last_seen: i.last_seen.to_rfc3339(),
            events: i.event_count,
            users: i.user_count,
            first_release: i.first_release.clone(),
            last_release: i.last_release.clone(),
            resolved_release: i.resolved_release.clone(),
            ignore_until_events: i.ignore_until_count,
            ignore_until: i.ignore_until.map(Timestamp::to_rfc3339),
        }
    }
}

#[derive(Serialize)]
pub struct IssueList {
    pub issues: Vec<IssueView>,
    pub total: u64,
}

/// `GET /api/v1/issues`.
pub async fn list(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<IssueParams>,
) -> Result<Json<IssueList>, ApiError> {
    let page = state
        .store
        .list_issues(&params.filter(reader.project.id)?)
        .await?;
    Ok(Json(IssueList {
        issues: page.issues.iter().map(IssueView::from).collect(),
        total: page.total,
    }))
}

/// An issue's page worth of data: the issue, its tag values and its latest event.
#[derive(Serialize)]
pub struct IssueDetail {
    pub issue: IssueView,
    pub tags: Vec<TagCount>,
    pub latest_event: Option<serde_json::Value>,
}

pub async fn issue_or_404(
    state: &AppState,
    project: ProjectId,
    id: IssueId,
) -> Result<Issue, AppError> {
    state
        .store
        .issue(project, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no issue {id} in this project")))
}

/// An event's stored JSON, parsed, its frames resolved when their source maps came after it
/// (then stored back resolved, so it is done once).
pub async fn event_json(
    state: &AppState,
    maps: &Resolver,
    project: ProjectId,
    event_id: &str,
) -> Result<Option<(EventMeta, serde_json::Value)>, AppError> {
    let Some((meta, body)) = state.store.event(project, event_id).await? else {
        return Ok(None);
    };
    let mut value = serde_json::from_slice(&body)
        .map_err(|e| AppError::Internal(format!("stored event {event_id} is not JSON: {e}")))?;
    let outcome = maps
        .resolve_late(state.store.as_ref(), project, &mut value)
        .await?;
    if outcome.resolved > 0 {
        state
            .store
            .set_event_body(project, event_id, value.to_string().as_bytes())
            .await?;
        state.metrics.sourcemap_frames_late(outcome.resolved);
    }
    Ok(Some((meta, value)))
}

/// `GET /api/v1/issues/{id}`.
pub async fn show(
    State(state): State<AppState>,
    State(ingest): State<ErrorIngest>,
    reader: ProjectReader,
    Path(id): Path<IssueId>,
) -> Result<Json<IssueDetail>, ApiError> {
    let project = reader.project.id;
    let issue = issue_or_404(&state, project, id).await?;
    let latest = state
        .store
        .events(&EventFilter {
            project,
            issue: Some(id),
            limit: 1,
            ..EventFilter::default()
        })
        .await?;
    let latest_event = match latest.first() {
        Some(meta) => event_json(&state, &ingest.maps, project, &meta.event_id)
            .await?
            .map(|(_, v)| v),
        None => None,
    };
    Ok(Json(IssueDetail {
        issue: IssueView::from(&issue),
        tags: state.store.issue_tags(id).await?,
        latest_event,
    }))
}

#[derive(Deserialize)]
pub struct StatusBody {
    pub action: String,
    pub more_events: Option<i64>,
    /// RFC 3339.
    pub until: Option<String>,
}

impl StatusBody {
    pub fn change(&self) -> Result<StatusChange, AppError> {
        Ok(match self.action.as_str() {
            "resolve" => StatusChange::Resolve,
            "resolve_next" => StatusChange::ResolveInNextRelease,
            "reopen" | "unresolve" => StatusChange::Reopen,
            "ignore" => StatusChange::Ignore {
                more_events: self.more_events,
                until: match self.until.as_deref().filter(|u| !u.is_empty()) {
                    Some(text) => Some(Timestamp::parse_rfc3339(text).ok_or_else(|| {
                        invalid("until", format!("{text:?} is not an RFC 3339 time"))
                    })?),
                    None => None,
                },
            },
            other => {
                return Err(invalid(
                    "action",
                    format!("{other:?}: use resolve, resolve_next, ignore or reopen"),
                ))
            }
        })
    }
}

/// `POST /api/v1/issues/{id}/status` (admin).
pub async fn set_status(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<IssueId>,
    Json(body): Json<StatusBody>,
) -> Result<Json<IssueView>, ApiError> {
    let issue = state
        .store
        .set_issue_status(reader.project.id, id, &body.change()?)
        .await?;
    Ok(Json(IssueView::from(&issue)))
}

/// `GET /api/v1/issues/{id}/events`.
pub async fn events(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<IssueId>,
    Query(params): Query<LimitParams>,
) -> Result<Json<Vec<EventMeta>>, ApiError> {
    issue_or_404(&state, reader.project.id, id).await?;
    Ok(Json(
        state
            .store
            .events(&EventFilter {
                project: reader.project.id,
                issue: Some(id),
                limit: params.or(50),
                ..EventFilter::default()
            })
            .await?,
    ))
}

#[derive(Deserialize)]
pub struct FeedbackParams {
    pub issue: Option<IssueId>,
    pub limit: Option<u32>,
}

/// `GET /api/v1/feedback`: what people wrote through `captureFeedback` or the feedback
/// widget, with the issue of the error it is about.
pub async fn feedback(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<FeedbackParams>,
) -> Result<Json<Vec<Feedback>>, ApiError> {
    if let Some(issue) = params.issue {
        issue_or_404(&state, reader.project.id, issue).await?;
    }
    let limit = paging::limit(params.limit, 100, paging::MOST);
    Ok(Json(
        state
            .store
            .feedback(reader.project.id, params.issue, limit)
            .await?,
    ))
}

/// `GET /api/v1/events/{event_id}`.
pub async fn event(
    State(state): State<AppState>,
    State(ingest): State<ErrorIngest>,
    reader: ProjectReader,
    Path(event_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = event_id.replace('-', "").to_ascii_lowercase();
    let (_, value) = event_json(&state, &ingest.maps, reader.project.id, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no event {event_id} in this project")))?;
    Ok(Json(value))
}

/// `GET /api/v1/attachments/{id}`: the bytes, as a download (never rendered inline).
pub async fn attachment(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (meta, data) = state
        .store
        .attachment(reader.project.id, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no attachment {id} in this project")))?;
    let name: String = meta
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        data,
    )
        .into_response())
}

/// A transaction name's figures over a period.
#[derive(Serialize, Clone, Debug)]
pub struct TransactionView {
    pub name: String,
    pub op: String,
    pub count: i64,
    /// Per minute while the endpoint was active (first to last minute with a transaction).
    pub throughput: f64,
    pub failure_rate: f64,
    pub p50_ms: Option<f64>,
    pub p75_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: f64,
    pub apdex: Option<f64>,
}

impl TransactionView {
    pub fn new(t: &TransactionStats, period_minutes: f64) -> Self {
        TransactionView {
            name: t.name.clone(),
            op: t.op.clone(),
            count: t.count,
            throughput: match t.active {
                Some(_) => t.per_minute(),
                None => t.count as f64 / period_minutes.max(1.0),
            },
            failure_rate: if t.count > 0 {
                t.failures as f64 / t.count as f64
            } else {
                0.0
            },
            p50_ms: t.sketch.quantile(0.50),
            p75_ms: t.sketch.quantile(0.75),
            p95_ms: t.sketch.quantile(0.95),
            p99_ms: t.sketch.quantile(0.99),
            max_ms: t.sketch.max_ms(),
            apdex: Apdex::score(t.satisfied as u64, t.tolerated as u64, t.count as u64),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct PeriodParams {
    pub period: Option<String>,
    pub name: Option<String>,
}

/// The period asked (default 24 hours), as `(since, until, minutes)`.
pub fn period_of(text: Option<&str>) -> Result<(Timestamp, Timestamp, f64), AppError> {
    let period = match text.filter(|p| !p.is_empty()) {
        Some(p) => parse_period("period", p)?,
        None => Duration::from_secs(24 * 3600),
    };
    let until = Timestamp(Timestamp::now().millis() + 60_000);
    let since = Timestamp(until.millis() - period.as_millis() as i64);
    Ok((since, until, period.as_secs_f64() / 60.0))
}

/// `GET /api/v1/transactions`.
pub async fn transactions(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<PeriodParams>,
) -> Result<Json<Vec<TransactionView>>, ApiError> {
    let (since, until, minutes) = period_of(params.period.as_deref())?;
    let list = state
        .store
        .transactions(reader.project.id, since, until, 0)
        .await?;
    Ok(Json(
        list.iter()
            .map(|t| TransactionView::new(t, minutes))
            .collect(),
    ))
}

#[derive(Serialize)]
pub struct SeriesPoint {
    pub at: String,
    pub count: i64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Serialize)]
pub struct TransactionDetail {
    pub summary: Option<TransactionView>,
    pub series: Vec<SeriesPoint>,
    pub samples: Vec<SampleMeta>,
    pub spans: Vec<SpanStat>,
}

/// A bucket width that gives about 60 points over the period, in whole minutes.
pub fn step_for(since: Timestamp, until: Timestamp) -> i64 {
    let span = (until.millis() - since.millis()).max(60_000);
    ((span / 60).div_euclid(60_000).max(1)) * 60_000
}

/// `GET /api/v1/transactions/detail?name=`.
pub async fn transaction_detail(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<PeriodParams>,
) -> Result<Json<TransactionDetail>, ApiError> {
    let name = params
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("name", "name the transaction: ?name=/invoices/{id}"))?;
    let (since, until, minutes) = period_of(params.period.as_deref())?;
    let project = reader.project.id;
    let store = &state.store;
    let series = store
        .transaction_series(project, &name, since, until, step_for(since, until))
        .await?;
    let whole = TransactionStats::sum(&name, series.iter().map(|(_, s)| s));
    Ok(Json(TransactionDetail {
        summary: (whole.count > 0).then(|| TransactionView::new(&whole, minutes)),
        series: series
            .iter()
            .map(|(at, s)| SeriesPoint {
                at: at.to_rfc3339(),
                count: s.count,
                p50_ms: s.sketch.quantile(0.5),
                p95_ms: s.sketch.quantile(0.95),
                p99_ms: s.sketch.quantile(0.99),
            })
            .collect(),
        samples: store
            .transaction_samples(project, Some(&name), since, None, 20)
            .await?,
        spans: store
            .span_stats(project, &name, Timestamp(since.millis() - HOUR_MS), 20)
            .await?,
    }))
}

/// `GET /api/v1/error-settings`.
pub async fn settings(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<ErrorSettings>, ApiError> {
    Ok(Json(state.store.error_settings(reader.project.id).await?))
}

/// `PUT /api/v1/error-settings` (admin): changes the fields given.
pub async fn update_settings(
    State(state): State<AppState>,
    reader: ProjectReader,
    Json(change): Json<SettingsChange>,
) -> Result<Json<ErrorSettings>, ApiError> {
    let settings =
        super::change_settings(state.store.as_ref(), &state.hub, reader.project.id, change).await?;
    Ok(Json(settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_of(query: &str) -> Result<IssueFilter, AppError> {
        IssueParams {
            query: query.into(),
            ..IssueParams::default()
        }
        .filter(ProjectId(1))
    }

    #[test]
    fn the_search_box_reads_filters_words_and_quoted_text() {
        let f =
            filter_of(r#"is:resolved customer:acme "http://shop/x" timeout level:error"#).unwrap();
        assert_eq!(f.status, Some(IssueStatus::Resolved));
        assert_eq!(f.level.as_deref(), Some("error"));
        assert_eq!(f.tags, [("customer".to_string(), "acme".to_string())]);
        assert_eq!(f.text.as_deref(), Some("http://shop/x timeout"));
        // What only looks like a filter is searched as text: a URL, a time, a quoted pair.
        let f = filter_of(r#"http://shop/x 12:30 "C:\temp""#).unwrap();
        assert!(f.tags.is_empty(), "{:?}", f.tags);
        assert_eq!(f.text.as_deref(), Some(r"http://shop/x 12:30 C:\temp"));
        // A quoted phrase counts each of its words against the limit.
        let nine = r#""a b c d e f g h" i"#;
        let refused = filter_of(nine).expect_err("9 words refused");
        assert!(refused.to_string().contains("9 words"), "{refused}");
    }
}
