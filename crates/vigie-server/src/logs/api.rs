//! Reading logs as JSON: search, counts, live tail, sources, downloads, clearing a source.
//!
//! ```text
//! GET    /api/v1/logs/search?q=&limit=&before=&after=   newest first, cursor paging
//! GET    /api/v1/logs/stats?q=&buckets=                  counts per level and over time
//! GET    /api/v1/logs/tail?q=&backlog=                   SSE: matching records as they arrive
//! GET    /api/v1/logs/sources                            each source: size, lines, first/last
//! GET    /api/v1/logs/sources/{id}                       one source
//! GET    /api/v1/logs/sources/{id}/lines?n=              a source's last n records
//! GET    /api/v1/logs/sources/{id}/download?q=&format=   streamed, oldest first, text or jsonl
//! DELETE /api/v1/logs/sources/{id}                       clear a source (admin)
//! GET    /api/v1/logs/download?q=&format=                any query, streamed the same way
//! ```
//!
//! Callers are people and scripts (API token or the UI's session) reading one project, named
//! by `?project=` (else the UI's current project, else the only one). Sources are named by
//! id: no request ever names a file path.

use super::view::RecordView;
use crate::auth::job_access::ProjectReader;
use crate::http::{paging, ApiError, AppError};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use vigie_core::time::now_ns;
use vigie_core::{Level, LogQuery, Project};
use vigie_store::logs::{self, Cursor, LogSource, LogStats};

/// Largest page of search results.
pub const MAX_LIMIT: usize = 1000;

/// Parses `q`, naming the field in the error so forms and CLIs can point at it.
pub fn parse_query(text: &str) -> Result<LogQuery, AppError> {
    LogQuery::parse(text, now_ns()).map_err(|e| AppError::Invalid {
        field: "q".into(),
        message: e.to_string(),
    })
}

#[derive(Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
    pub limit: Option<usize>,
    /// A cursor from a previous page: records older than it.
    pub before: Option<String>,
    /// Only records after this time (ns since the epoch): the polling tail.
    pub after: Option<i64>,
}

#[derive(Serialize)]
pub struct SearchAnswer<'a> {
    pub hits: Vec<RecordView<'a>>,
    /// Pass as `before` for the next (older) page.
    pub next: Option<String>,
    pub blocks_considered: usize,
    pub blocks_scanned: usize,
}

/// Runs a search as the API and the UI ask it.
pub async fn run_search(
    state: &AppState,
    project: &Project,
    params: &SearchParams,
) -> Result<logs::SearchPage, AppError> {
    let mut query = parse_query(&params.q)?;
    if let Some(after) = params.after {
        query.from = Some(query.from.map_or(after + 1, |f| f.max(after + 1)));
    }
    let before = params
        .before
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(str::parse::<Cursor>)
        .transpose()?;
    let limit = paging::limit(params.limit, 100, MAX_LIMIT);
    Ok(logs::search(state.store.as_ref(), project.id, &query, limit, before).await?)
}

/// `GET /api/v1/logs/search`.
pub async fn search(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<SearchParams>,
) -> Result<Response, ApiError> {
    let page = run_search(&state, &reader.project, &params).await?;
    Ok(Json(SearchAnswer {
        hits: page
            .hits
            .iter()
            .map(|h| RecordView::new(&h.record, Some(h.at)))
            .collect(),
        next: page.next.map(|c| c.to_string()),
        blocks_considered: page.blocks_considered,
        blocks_scanned: page.blocks_scanned,
    })
    .into_response())
}

#[derive(Deserialize, Default)]
pub struct StatsParams {
    #[serde(default)]
    pub q: String,
    pub buckets: Option<usize>,
}

#[derive(Serialize)]
pub struct StatsAnswer {
    pub total: u64,
    pub levels: std::collections::BTreeMap<&'static str, u64>,
    /// Start of the first bucket (RFC 3339) and each bucket's width in seconds.
    pub start: String,
    pub bucket_seconds: f64,
    pub buckets: Vec<u64>,
}

impl StatsAnswer {
    pub fn new(stats: &LogStats) -> StatsAnswer {
        StatsAnswer {
            total: stats.total,
            levels: Level::ALL
                .iter()
                .map(|l| (l.as_str(), stats.per_level[*l as usize]))
                .collect(),
            start: super::view::rfc3339_ns(stats.start),
            bucket_seconds: stats.bucket as f64 / 1e9,
            buckets: stats.buckets.clone(),
        }
    }
}

pub async fn run_stats(
    state: &AppState,
    project: &Project,
    q: &str,
    buckets: usize,
) -> Result<LogStats, AppError> {
    let query = parse_query(q)?;
    Ok(logs::stats(state.store.as_ref(), project.id, &query, buckets).await?)
}

/// `GET /api/v1/logs/stats`.
pub async fn stats(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<StatsParams>,
) -> Result<Json<StatsAnswer>, ApiError> {
    let stats = run_stats(
        &state,
        &reader.project,
        &params.q,
        params.buckets.unwrap_or(60),
    )
    .await?;
    Ok(Json(StatsAnswer::new(&stats)))
}

#[derive(Deserialize, Default)]
pub struct TailParams {
    #[serde(default)]
    pub q: String,
    /// Records to send first: the newest matches already stored (oldest of them first).
    pub backlog: Option<usize>,
}

/// `GET /api/v1/logs/tail`: an SSE stream of matching records as they are stored, each event
/// a JSON array. Asked without `Accept: text/event-stream`, answers the backlog as JSON.
pub async fn tail(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<TailParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = parse_query(&params.q)?;
    let backlog = params.backlog.unwrap_or(0).min(MAX_LIMIT);
    // Subscribe before reading the backlog, so nothing stored in between is missed.
    let news = state.hub.watch_logs();
    let mut first = Vec::new();
    if backlog > 0 {
        let page = logs::search(
            state.store.as_ref(),
            reader.project.id,
            &query,
            backlog,
            None,
        )
        .await?;
        first = page.hits.into_iter().rev().map(|h| h.record).collect();
    }
    if !crate::web::sse::wants_event_stream(&headers) {
        let views: Vec<_> = first.iter().map(|r| RecordView::new(r, None)).collect();
        return Ok(Json(views).into_response());
    }
    let opening = serde_json::to_string(
        &first
            .iter()
            .map(|r| RecordView::new(r, None))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    Ok(
        Sse::new(tail_stream(state, reader.project, query, news, opening))
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

fn tail_stream(
    state: AppState,
    project: Project,
    query: LogQuery,
    news: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::hub::LogNews>>,
    opening: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (state, news, Some(opening)),
        move |(state, mut news, opening)| {
            let query = query.clone();
            async move {
                if let Some(opening) = opening {
                    return Some((Ok(Event::default().data(opening)), (state, news, None)));
                }
                loop {
                    let received = tokio::select! {
                        _ = state.hub.shutting_down() => return None,
                        received = news.recv() => received,
                    };
                    match received {
                        Ok(n) if n.project == project.id => {
                            let matching: Vec<_> = n
                                .records
                                .iter()
                                .filter(|r| query.matches(r))
                                .map(|r| RecordView::new(r, None))
                                .collect();
                            if matching.is_empty() {
                                continue;
                            }
                            let data = serde_json::to_string(&matching).unwrap_or_default();
                            return Some((Ok(Event::default().data(data)), (state, news, None)));
                        }
                        Ok(_) => continue,
                        Err(RecvError::Lagged(skipped)) => {
                            let event = Event::default()
                                .event("lagged")
                                .data(format!("{skipped} batches skipped: the tail fell behind"));
                            return Some((Ok(event), (state, news, None)));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        },
    )
}

#[derive(Serialize)]
pub struct SourceView {
    pub id: i64,
    pub name: String,
    pub lines: u64,
    pub blocks: u64,
    /// Bytes the lines took as text, and bytes stored (compressed).
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

impl SourceView {
    pub fn new(s: &LogSource) -> SourceView {
        SourceView {
            id: s.id,
            name: s.name.clone(),
            lines: s.records,
            blocks: s.blocks,
            raw_bytes: s.raw_bytes,
            stored_bytes: s.stored_bytes,
            first_seen: s.first_time.map(super::view::rfc3339_ns),
            last_seen: s.last_time.map(super::view::rfc3339_ns),
        }
    }
}

/// `GET /api/v1/logs/sources`.
pub async fn sources(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<Vec<SourceView>>, ApiError> {
    let sources = state.store.log_sources(reader.project.id).await?;
    Ok(Json(sources.iter().map(SourceView::new).collect()))
}

/// `GET /api/v1/logs/sources/{id}`.
pub async fn source(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
) -> Result<Json<SourceView>, ApiError> {
    let source = source_of(&state, &reader.project, id).await?;
    Ok(Json(SourceView::new(&source)))
}

/// The source `id` of the project, or 404.
pub async fn source_of(
    state: &AppState,
    project: &Project,
    id: i64,
) -> Result<LogSource, AppError> {
    state
        .store
        .log_sources(project.id)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| AppError::NotFound(format!("no log source {id} in this project")))
}

#[derive(Deserialize)]
pub struct LinesParams {
    pub n: Option<usize>,
}

/// `GET /api/v1/logs/sources/{id}/lines?n=100`: the last `n` records, oldest first.
pub async fn source_lines(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
    Query(params): Query<LinesParams>,
) -> Result<Response, ApiError> {
    let source = source_of(&state, &reader.project, id).await?;
    let query = LogQuery::default().only_source(&source.name);
    let n = paging::limit(params.n, 100, MAX_LIMIT);
    let page = logs::search(state.store.as_ref(), reader.project.id, &query, n, None).await?;
    let views: Vec<_> = page
        .hits
        .iter()
        .rev()
        .map(|h| RecordView::new(&h.record, Some(h.at)))
        .collect();
    Ok(Json(views).into_response())
}

#[derive(Deserialize, Default)]
pub struct DownloadParams {
    #[serde(default)]
    pub q: String,
    /// `text` (default, like a log file) or `jsonl`.
    pub format: Option<String>,
}

/// `GET /api/v1/logs/sources/{id}/download`: the source's records (narrowed by `q`, e.g.
/// `from:… to:…`), oldest first, streamed.
pub async fn source_download(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
    Query(params): Query<DownloadParams>,
) -> Result<Response, ApiError> {
    let source = source_of(&state, &reader.project, id).await?;
    let query = parse_query(&params.q)?.only_source(&source.name);
    download_response(
        state,
        reader.project,
        query,
        &source.name,
        params.format.as_deref(),
    )
}

/// `GET /api/v1/logs/download?q=`: any query's matches, streamed oldest first.
pub async fn download(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<DownloadParams>,
) -> Result<Response, ApiError> {
    let query = parse_query(&params.q)?;
    download_response(
        state,
        reader.project,
        query,
        "logs",
        params.format.as_deref(),
    )
}

fn download_response(
    state: AppState,
    project: Project,
    query: LogQuery,
    name: &str,
    format: Option<&str>,
) -> Result<Response, ApiError> {
    let json = match format.unwrap_or("text") {
        "text" => false,
        "jsonl" | "json" => true,
        other => {
            return Err(AppError::Invalid {
                field: "format".into(),
                message: format!("{other:?}: use text or jsonl"),
            }
            .into())
        }
    };
    let scan = logs::OldestFirst::new(project.id, query);
    let body = stream::unfold((state, scan), move |(state, mut scan)| async move {
        match scan.next_batch(state.store.as_ref()).await {
            Ok(Some(records)) => {
                let mut chunk = String::new();
                for r in &records {
                    if json {
                        chunk.push_str(
                            &serde_json::to_string(&RecordView::new(r, None)).unwrap_or_default(),
                        );
                    } else {
                        chunk.push_str(&r.text_line());
                    }
                    chunk.push('\n');
                }
                Some((Ok::<_, std::io::Error>(chunk), (state, scan)))
            }
            Ok(None) => None,
            Err(err) => Some((Err(std::io::Error::other(err.to_string())), (state, scan))),
        }
    });
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let (ext, content_type) = if json {
        ("jsonl", "application/x-ndjson")
    } else {
        ("log", "text/plain; charset=utf-8")
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}.{ext}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// `DELETE /api/v1/logs/sources/{id}` (admin): removes the source and all its records.
pub async fn clear_source(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    source_of(&state, &reader.project, id).await?;
    state.store.delete_log_source(reader.project.id, id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
