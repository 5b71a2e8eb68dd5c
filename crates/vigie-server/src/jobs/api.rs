//! The jobs API: create a job, report its progress and items, finish it, read it back.
//!
//! ```text
//! POST /api/v1/jobs                      create (answers the job and its read token)
//! GET  /api/v1/jobs                      list: status, kind, application, launched_by, since, until, q
//! GET  /api/v1/jobs/{id}                 the polling endpoint: counts, percent, speed, ETA, last items
//! POST /api/v1/jobs/{id}/start|progress|heartbeat|finish
//! POST /api/v1/jobs/{id}/items           one item, a list, or {"items": [...]}
//! GET  /api/v1/jobs/{id}/items           that job's items; GET /api/v1/items: across jobs
//! ```
//!
//! Bodies are read by `vigie_protocol::jobs` (errors name the field), the rules applied by
//! `vigie_core::job` inside one store transaction, and every accepted change is published on
//! the hub for the live streams (`super::live`). Who may call is [`JobAccess`].

use crate::auth::job_access::JobAccess;
use crate::http::ingest_body::IngestBody;
use crate::http::{paging, ApiError, AppError};
use crate::hub::JobNews;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use vigie_core::job::{human_duration, new_job_id, JobMessage, JobUpdate, Summary};
use vigie_core::secret::{random_hex, token_hash};
use vigie_core::{Item, ItemStatus, Job, JobOrigin, JobStatus, Timestamp};
use vigie_protocol::jobs::{self as wire, FieldError};
use vigie_store::{ItemFilter, JobFilter};

/// Items and feed lines in a job answer (the polling endpoint and a stream's snapshot).
pub const RECENT: u32 = 20;
/// Most rows one list call returns.
pub const MAX_LIMIT: u32 = 500;

/// A job as the API shows it: stored fields plus what is computed from them at `now`.
#[derive(Serialize, Clone, Debug)]
pub struct JobView {
    pub id: String,
    pub name: String,
    pub kind: Option<String>,
    pub application: Option<String>,
    pub flow: Option<String>,
    pub launched_by: Option<String>,
    pub status: JobStatus,
    pub total: Option<i64>,
    pub processed: i64,
    pub ok: i64,
    pub failed: i64,
    pub skipped: i64,
    pub remaining: Option<i64>,
    pub percent: Option<f64>,
    /// Items per second over the last 10–20 s (the whole run once finished).
    pub speed: f64,
    pub eta_seconds: Option<f64>,
    pub elapsed_seconds: f64,
    pub elapsed: String,
    pub message: Option<String>,
    pub meta: Option<Box<RawValue>>,
    pub stall_after_seconds: f64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub last_update: String,
    pub finished_at: Option<String>,
    pub stalled_since: Option<String>,
    pub stalled_seconds: f64,
    pub summary: Option<SummaryView>,
}

#[derive(Serialize, Clone, Debug)]
pub struct SummaryView {
    #[serde(flatten)]
    pub summary: Summary,
    pub line: String,
}

impl JobView {
    pub fn new(job: &Job, now: Timestamp) -> JobView {
        let stats = job.stats(now);
        let seconds = |ms: i64| ms as f64 / 1000.0;
        let time = |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339);
        JobView {
            id: job.id.clone(),
            name: job.name.clone(),
            kind: job.kind.clone(),
            application: job.application.clone(),
            flow: job.flow.clone(),
            launched_by: job.launched_by.clone(),
            status: job.status,
            total: job.total,
            processed: job.processed,
            ok: stats.ok,
            failed: job.failed,
            skipped: job.skipped,
            remaining: stats.remaining,
            percent: stats.percent.map(|p| (p * 10.0).round() / 10.0),
            speed: (stats.speed * 100.0).round() / 100.0,
            eta_seconds: stats.eta_ms.map(seconds),
            elapsed_seconds: seconds(stats.elapsed_ms),
            elapsed: human_duration(stats.elapsed_ms),
            message: job.message.clone(),
            meta: job
                .meta
                .as_deref()
                .and_then(|m| RawValue::from_string(m.to_string()).ok()),
            stall_after_seconds: seconds(job.stall_after_ms),
            created_at: job.created_at.to_rfc3339(),
            started_at: time(job.started_at),
            last_update: job.last_update.to_rfc3339(),
            finished_at: time(job.finished_at),
            stalled_since: time(job.stalled_since),
            stalled_seconds: seconds(job.stalled_ms),
            summary: job.summary.clone().map(|s| SummaryView {
                line: s.line(),
                summary: s,
            }),
        }
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct ItemView {
    pub seq: i64,
    pub job: String,
    pub id: Option<String>,
    pub status: ItemStatus,
    pub name: Option<String>,
    pub file: Option<String>,
    pub target: Option<String>,
    pub comment: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<f64>,
    pub at: String,
    pub fields: Option<Box<RawValue>>,
}

impl From<&Item> for ItemView {
    fn from(i: &Item) -> Self {
        ItemView {
            seq: i.seq,
            job: i.job_id.clone(),
            id: i.key.clone(),
            status: i.status,
            name: i.name.clone(),
            file: i.file.clone(),
            target: i.target.clone(),
            comment: i.comment.clone(),
            error: i.error.clone(),
            duration_ms: i.duration_ms,
            at: i.at.to_rfc3339(),
            fields: i
                .fields
                .as_deref()
                .and_then(|f| RawValue::from_string(f.to_string()).ok()),
        }
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct MessageView {
    pub id: i64,
    pub at: String,
    pub text: String,
}

impl From<&JobMessage> for MessageView {
    fn from(m: &JobMessage) -> Self {
        MessageView {
            id: m.id,
            at: m.at.to_rfc3339(),
            text: m.text.clone(),
        }
    }
}

/// A job with its latest items and feed lines. `event` tells a stream reader whether the lists
/// are the latest ones (`snapshot`) or only what just arrived (`update`).
#[derive(Serialize, Clone, Debug)]
pub struct JobDetail {
    pub event: &'static str,
    #[serde(flatten)]
    pub job: JobView,
    pub items: Vec<ItemView>,
    pub messages: Vec<MessageView>,
}

impl JobDetail {
    pub async fn snapshot(state: &AppState, job: &Job) -> Result<JobDetail, AppError> {
        let items = state
            .store
            .list_items(&ItemFilter {
                project: job.project,
                job: Some(job.id.clone()),
                limit: RECENT,
                ..Default::default()
            })
            .await?;
        let messages = state.store.job_messages(job, RECENT).await?;
        Ok(JobDetail {
            event: "snapshot",
            job: JobView::new(job, Timestamp::now()),
            items: items.items.iter().map(ItemView::from).collect(),
            messages: messages.iter().map(MessageView::from).collect(),
        })
    }

    /// What changed: the job, and only the items and lines that came with the change.
    pub fn update(job: &Job, items: &[Item], messages: &[JobMessage], now: Timestamp) -> JobDetail {
        JobDetail {
            event: "update",
            job: JobView::new(job, now),
            // Newest first, as in the snapshot; a big batch sends only its latest rows.
            items: items
                .iter()
                .rev()
                .take(RECENT as usize)
                .map(ItemView::from)
                .collect(),
            messages: messages.iter().map(MessageView::from).collect(),
        }
    }
}

/// Reads a JSON body, weighed first against the ingest budget (see
/// `crate::http::ingest_body`); an empty body is `null` (for heartbeat and finish).
async fn json_body(body: &mut IngestBody) -> Result<serde_json::Value, AppError> {
    if body.bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    body.reserve_elements(vigie_protocol::weight::json_elements(&body.bytes))
        .await?;
    serde_json::from_slice(&body.bytes).map_err(|e| AppError::Invalid {
        field: "body".into(),
        message: format!("not valid JSON: {e}"),
    })
}

/// The job `id` of the caller's project (404 naming the project when there is none).
pub async fn existing(state: &AppState, access: &JobAccess, id: &str) -> Result<Job, AppError> {
    access.check_job(id)?;
    state
        .store
        .job(access.project.id, id)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no job {id:?} in project {:?}",
                access.project.name
            ))
        })
}

#[derive(Serialize)]
pub struct Created {
    #[serde(flatten)]
    job: JobView,
    /// Lets a web page read this job (and only it) without an API token: `?token=`.
    read_token: String,
}

pub async fn create(
    State(state): State<AppState>,
    access: JobAccess,
    mut body: IngestBody,
) -> Result<Response, ApiError> {
    let body = json_body(&mut body).await?;
    let new = wire::new_job(access.project.id, &body)?;
    let now = Timestamp::now();
    let id = new.id.clone().unwrap_or_else(new_job_id);
    let job = Job::create(&new, id, now).map_err(vigie_store::StoreError::from)?;
    let read_token = random_hex(20);
    let job = state
        .store
        .create_job(&job, &token_hash(&read_token))
        .await?;
    state
        .hub
        .publish_job(JobNews::new(job.clone(), vec![], vec![]));
    let created = Created {
        job: JobView::new(&job, now),
        read_token,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    access: JobAccess,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = existing(&state, &access, &id).await?;
    let mut response = Json(JobDetail::snapshot(&state, &job).await?).into_response();
    access.allow_origin(&headers, &mut response);
    Ok(response)
}

/// Applies one update, publishes it, answers the job.
async fn apply(
    state: &AppState,
    access: &JobAccess,
    id: &str,
    update: JobUpdate,
) -> Result<Json<JobView>, ApiError> {
    access.check_job(id)?;
    let now = Timestamp::now();
    let change = state
        .store
        .update_job(access.project.id, id, &update, now)
        .await?;
    let view = JobView::new(&change.job, now);
    state
        .hub
        .publish_job(JobNews::new(change.job, vec![], change.messages));
    Ok(Json(view))
}

pub async fn start(
    State(state): State<AppState>,
    access: JobAccess,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    apply(&state, &access, &id, JobUpdate::Start).await
}

/// How the body of one kind of update reads (`wire::progress`, `wire::heartbeat`,
/// `wire::finish`).
pub type ReadUpdate = fn(&serde_json::Value) -> Result<JobUpdate, FieldError>;

/// `POST /api/v1/jobs/{id}/progress|heartbeat|finish`: the body read by `read`, then applied.
/// The routes bind `read`, one per path.
pub async fn update(
    State(state): State<AppState>,
    access: JobAccess,
    Path(id): Path<String>,
    mut body: IngestBody,
    read: ReadUpdate,
) -> Result<Json<JobView>, ApiError> {
    let update = read(&json_body(&mut body).await?)?;
    apply(&state, &access, &id, update).await
}

#[derive(Serialize)]
pub struct Rejected {
    index: Option<usize>,
    field: String,
    message: String,
}

#[derive(Serialize)]
pub struct ItemsAnswer {
    /// Items stored by this call.
    accepted: usize,
    /// Items already stored under the same id (a retried upload): not counted again.
    duplicates: usize,
    /// Items refused, by index in the upload, with the field at fault.
    rejected: Vec<Rejected>,
    job: JobView,
}

pub async fn add_items(
    State(state): State<AppState>,
    access: JobAccess,
    Path(id): Path<String>,
    mut body: IngestBody,
) -> Result<Json<ItemsAnswer>, ApiError> {
    access.check_job(&id)?;
    let (good, bad) = wire::items(&json_body(&mut body).await?)?;
    body.check_records(good.len() + bad.len(), "items")?;
    if let (true, Some(first)) = (good.is_empty(), bad.first()) {
        return Err(AppError::from(first.clone()).into());
    }
    let now = Timestamp::now();
    let added = state
        .store
        .add_items(access.project.id, &id, good, now)
        .await?;
    let answer = ItemsAnswer {
        accepted: added.items.len(),
        duplicates: added.duplicates,
        rejected: bad.iter().map(rejected).collect(),
        job: JobView::new(&added.job, now),
    };
    state
        .hub
        .publish_job(JobNews::new(added.job, added.items, added.messages));
    Ok(Json(answer))
}

fn rejected(e: &FieldError) -> Rejected {
    Rejected {
        index: wire::item_index(e),
        field: e.field.clone(),
        message: e.message.clone(),
    }
}

/// Query parameters of the list endpoints (all optional).
#[derive(Deserialize, Default, Debug, Clone)]
pub struct ListQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    /// `reported`, `celery`, `monitor` or `all` (the API's default; the Jobs page's and the
    /// CLI's is `reported`).
    pub origin: Option<String>,
    pub application: Option<String>,
    pub flow: Option<String>,
    pub launched_by: Option<String>,
    pub job: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// `true`: since midnight UTC.
    pub today: Option<String>,
    /// `true`: items in error only.
    pub errors: Option<String>,
    pub q: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn flag(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("1" | "true" | "yes" | "on"))
}

impl ListQuery {
    fn time(&self, field: &str, raw: &Option<String>) -> Result<Option<Timestamp>, AppError> {
        match nonempty(raw) {
            None => Ok(None),
            Some(text) => wire::parse_time(&text).map(Some).ok_or(AppError::Invalid {
                field: field.into(),
                message: format!("{text:?} is not an RFC 3339 time (2026-11-21T10:00:00Z)"),
            }),
        }
    }

    fn since(&self) -> Result<Option<Timestamp>, AppError> {
        let since = self.time("since", &self.since)?;
        if !flag(&self.today) {
            return Ok(since);
        }
        let now = Timestamp::now().millis();
        let midnight = Timestamp(now - now.rem_euclid(86_400_000));
        Ok(Some(since.map_or(midnight, |s| s.max(midnight))))
    }

    fn limit(&self) -> u32 {
        paging::limit(self.limit, 50, MAX_LIMIT)
    }

    /// The search box (`q`), quotes taken off, refused past
    /// [`vigie_core::validate::MAX_SEARCH_WORDS`] words.
    fn search(&self) -> Result<Option<String>, AppError> {
        let words = vigie_core::search_box::words(self.q.as_deref().unwrap_or(""));
        vigie_core::validate::search_words(vigie_core::search_box::word_count(&words)).map_err(
            |message| AppError::Invalid {
                field: "q".into(),
                message,
            },
        )?;
        Ok(Some(words.join(" ")).filter(|text| !text.is_empty()))
    }

    pub fn jobs(&self, access: &JobAccess) -> Result<JobFilter, AppError> {
        let status = match nonempty(&self.status) {
            None => None,
            Some(s) => Some(s.parse::<JobStatus>().map_err(|e| AppError::Invalid {
                field: "status".into(),
                message: e.to_string(),
            })?),
        };
        let origin = match nonempty(&self.origin) {
            None => None,
            Some(text) => JobOrigin::parse_filter(&text).map_err(|message| AppError::Invalid {
                field: "origin".into(),
                message,
            })?,
        };
        Ok(JobFilter {
            project: access.project.id,
            status,
            kind: nonempty(&self.kind),
            origin,
            application: nonempty(&self.application),
            launched_by: nonempty(&self.launched_by),
            since: self.since()?,
            until: self.time("until", &self.until)?,
            text: self.search()?,
            limit: self.limit(),
            offset: self.offset.unwrap_or(0),
        })
    }

    pub fn items(&self, access: &JobAccess) -> Result<ItemFilter, AppError> {
        let status = match (flag(&self.errors), nonempty(&self.status)) {
            (true, _) => Some(ItemStatus::Error),
            (false, None) => None,
            (false, Some(s)) => Some(s.parse::<ItemStatus>().map_err(|e| AppError::Invalid {
                field: "status".into(),
                message: e.to_string(),
            })?),
        };
        Ok(ItemFilter {
            project: access.project.id,
            job: nonempty(&self.job),
            status,
            application: nonempty(&self.application),
            flow: nonempty(&self.flow),
            since: self.since()?,
            until: self.time("until", &self.until)?,
            text: self.search()?,
            limit: self.limit(),
            offset: self.offset.unwrap_or(0),
            with_counts: true,
        })
    }
}

#[derive(Serialize, Debug, Default)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

pub async fn list_jobs_for(state: &AppState, filter: &JobFilter) -> Result<JobList, AppError> {
    let page = state.store.list_jobs(filter).await?;
    let now = Timestamp::now();
    Ok(JobList {
        jobs: page.jobs.iter().map(|j| JobView::new(j, now)).collect(),
        total: page.total,
        limit: filter.limit,
        offset: filter.offset,
    })
}

pub async fn list(
    State(state): State<AppState>,
    access: JobAccess,
    Query(query): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    access.require_project("list jobs")?;
    Ok(Json(list_jobs_for(&state, &query.jobs(&access)?).await?))
}

#[derive(Serialize, Default)]
pub struct ItemList {
    pub items: Vec<ItemView>,
    /// Matching items, every page together.
    pub total: i64,
    pub ok: i64,
    pub error: i64,
    pub skipped: i64,
    pub limit: u32,
    pub offset: u32,
}

pub async fn list_items(
    State(state): State<AppState>,
    access: JobAccess,
    Query(query): Query<ListQuery>,
) -> Result<Json<ItemList>, ApiError> {
    access.require_project("list items")?;
    let filter = query.items(&access)?;
    Ok(Json(item_list(&state, &filter).await?))
}

pub async fn item_list(state: &AppState, filter: &ItemFilter) -> Result<ItemList, AppError> {
    let page = state.store.list_items(filter).await?;
    Ok(ItemList {
        items: page.items.iter().map(ItemView::from).collect(),
        total: page.counts.total(),
        ok: page.counts.ok,
        error: page.counts.error,
        skipped: page.counts.skipped,
        limit: filter.limit,
        offset: filter.offset,
    })
}

pub async fn list_job_items(
    State(state): State<AppState>,
    access: JobAccess,
    Path(id): Path<String>,
    Query(mut query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = existing(&state, &access, &id).await?;
    query.job = Some(job.id);
    let mut response = Json(item_list(&state, &query.items(&access)?).await?).into_response();
    access.allow_origin(&headers, &mut response);
    Ok(response)
}
