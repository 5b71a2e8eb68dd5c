//! Live jobs: one Server-Sent Events stream per job, and one for the jobs list.
//!
//! ```text
//! GET /api/v1/live/jobs/{id}   snapshot, then an update per change (new items and lines only)
//! GET /api/v1/live/jobs        the list (same filters as GET /api/v1/jobs), refreshed on change
//! ```
//!
//! Asked with `Accept: application/json` instead, the same URLs answer one snapshot: that is
//! the polling fallback of `live.js` and `progress.js`. A job stream listens to that job's own
//! hub channel and sends the news as it was serialized once for every watcher; if it falls
//! behind it sends a fresh snapshot. Every few seconds it re-sends the job alone so elapsed
//! time, speed and ETA keep moving on a silent job.

use super::api::{existing, list_jobs_for, JobDetail, ListQuery};
use crate::auth::job_access::JobAccess;
use crate::http::{ApiError, AppError};
use crate::hub::{Change, JobNews};
use crate::state::AppState;
use crate::web::sse::wants_event_stream;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use vigie_core::{Job, Timestamp};
use vigie_store::JobFilter;

/// How often a quiet stream re-sends the job so times keep moving.
const TICK: Duration = Duration::from_secs(2);
/// The list stream gathers changes this long before re-reading the list.
const LIST_COALESCE: Duration = Duration::from_millis(300);
/// How often a quiet list stream refreshes anyway.
const LIST_REFRESH: Duration = Duration::from_secs(5);

fn json_event(value: &impl serde::Serialize) -> Event {
    Event::default().json_data(value).unwrap_or_default()
}

fn error_event(err: &AppError) -> Event {
    Event::default().event("error").data(err.to_string())
}

/// `GET /api/v1/live/jobs/{id}`.
pub async fn job(
    State(state): State<AppState>,
    access: JobAccess,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = existing(&state, &access, &id).await?;
    let mut response = if wants_event_stream(&headers) {
        Sse::new(job_stream(state, job))
            .keep_alive(KeepAlive::default())
            .into_response()
    } else {
        Json(JobDetail::snapshot(&state, &job).await?).into_response()
    };
    access.allow_origin(&headers, &mut response);
    Ok(response)
}

fn job_stream(state: AppState, job: Job) -> impl Stream<Item = Result<Event, Infallible>> {
    let news = state.hub.watch_job(job.pk);
    // (state, channel, latest known job, snapshot due)
    stream::unfold(
        (state, news, job, true),
        |(state, mut news, mut last, snapshot_due)| async move {
            if snapshot_due {
                let event = match JobDetail::snapshot(&state, &last).await {
                    Ok(detail) => json_event(&detail),
                    Err(err) => error_event(&err),
                };
                return Some((Ok(event), (state, news, last, false)));
            }
            let (event, resnapshot) = tokio::select! {
                _ = state.hub.shutting_down() => return None,
                received = news.recv() => match received {
                    Ok(n) => {
                        last = n.job.clone();
                        (Event::default().data(encoded(&n)), false)
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind: skip to the present with a fresh snapshot.
                        match state.store.job(last.project, &last.id).await {
                            Ok(Some(job)) => last = job,
                            Ok(None) => return None,
                            Err(err) => tracing::warn!(%err, "job stream could not reload"),
                        }
                        return Some((Ok(Event::default().comment("catching up")), (state, news, last, true)));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep(TICK) => {
                    (json_event(&JobDetail::update(&last, &[], &[], Timestamp::now())), false)
                }
            };
            Some((Ok(event), (state, news, last, resnapshot)))
        },
    )
}

/// The update as JSON, serialized once per change however many streams send it.
fn encoded(news: &JobNews) -> &str {
    news.wire(|n| {
        let detail = JobDetail::update(&n.job, &n.items, &n.messages, Timestamp::now());
        serde_json::to_string(&detail).unwrap_or_default()
    })
}

/// `GET /api/v1/live/jobs`: the jobs list, with the filters of `GET /api/v1/jobs`.
pub async fn list(
    State(state): State<AppState>,
    access: JobAccess,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    access.require_project("list jobs")?;
    let filter = query.jobs(&access)?;
    if !wants_event_stream(&headers) {
        return Ok(Json(list_jobs_for(&state, &filter).await?).into_response());
    }
    let changes = state.hub.subscribe();
    let stream = stream::unfold(
        (state, changes, filter, true),
        |(state, mut changes, filter, first)| async move {
            if !first && !wait_for_list_change(&state, &mut changes, &filter).await {
                return None;
            }
            let event = match list_jobs_for(&state, &filter).await {
                Ok(list) => json_event(&list),
                Err(err) => error_event(&err),
            };
            Some((Ok::<_, Infallible>(event), (state, changes, filter, false)))
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Waits until a job of the filtered project changed (then a little longer, so a burst of
/// progress costs one re-read), or the refresh interval passed. `false` on shutdown.
async fn wait_for_list_change(
    state: &AppState,
    changes: &mut tokio::sync::broadcast::Receiver<Change>,
    filter: &JobFilter,
) -> bool {
    let refresh = tokio::time::sleep(LIST_REFRESH);
    tokio::pin!(refresh);
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return false,
            _ = &mut refresh => return true,
            received = changes.recv() => match received {
                Ok(Change::Job(news)) if news.job.project == filter.project => break,
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return false,
            },
        }
    }
    tokio::select! {
        _ = state.hub.shutting_down() => false,
        _ = tokio::time::sleep(LIST_COALESCE) => {
            // Whatever arrived meanwhile is covered by the re-read.
            while changes.try_recv().is_ok() {}
            true
        }
    }
}
