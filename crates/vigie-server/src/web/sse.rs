//! What every live page's stream shares: asked with `Accept: text/event-stream` a live URL
//! answers Server-Sent Events, else one JSON snapshot (the polling fallback of
//! `assets/live.js`); a page's pulse is sent again after each hub change that concerns it.

use crate::auth::ApiCaller;
use crate::http::{ApiError, AppError};
use crate::hub::Change;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use vigie_core::ProjectId;

/// Whether a live URL is asked for as Server-Sent Events (else it answers one JSON snapshot).
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// `?project=` of a pulse URL.
#[derive(serde::Deserialize)]
pub struct ProjectParam {
    pub project: i64,
}

/// A page that refreshes itself: what its pulse says, and which hub changes concern it. Every
/// such page is served by one handler, `get(project_pulse::<ItsPulse>)`.
pub trait ProjectPulse: Serialize + Sized + Send + 'static {
    /// Whether `change` may change what the page shows of `project`.
    fn concerns(change: &Change, project: ProjectId) -> bool;

    /// How often the pulse is read again without a change, for pages whose data arrives
    /// without one (metrics); `None`: only after changes.
    const EVERY: Option<Duration> = None;

    /// The pulse now; the page re-reads itself when it differs from the last one.
    fn read(
        state: &AppState,
        project: ProjectId,
    ) -> impl Future<Output = Result<Self, AppError>> + Send;
}

/// `GET /live/<page>?project=`: the page's pulse now and after each change that concerns it.
pub async fn project_pulse<P: ProjectPulse>(
    State(state): State<AppState>,
    _caller: ApiCaller,
    headers: HeaderMap,
    Query(params): Query<ProjectParam>,
) -> Result<Response, ApiError> {
    let project = ProjectId(params.project);
    pulse_stream(
        state,
        &headers,
        move |change| P::concerns(change, project),
        move |state| async move { P::read(&state, project).await },
        P::EVERY,
    )
    .await
}

/// A page's pulse: `pulse` now, then again after each hub change that `concerns` the page (at
/// most one a second, so a burst of events is one refresh). Without `Accept:
/// text/event-stream` it answers the pulse once as JSON (the polling fallback). The page
/// compares pulses and re-reads itself when one differs (`assets/refresh.js`).
async fn pulse_stream<T, F, Fut, C>(
    state: AppState,
    headers: &HeaderMap,
    concerns: C,
    pulse: F,
    every: Option<Duration>,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Fn(AppState) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, AppError>> + Send,
    C: Fn(&Change) -> bool + Send + Sync + 'static,
{
    if !wants_event_stream(headers) {
        return Ok(Json(pulse(state).await?).into_response());
    }
    let changes = state.hub.subscribe();
    let stream = futures_util::stream::unfold(
        (state, changes, true, pulse, concerns),
        move |(state, mut changes, first, pulse, concerns)| async move {
            if !first {
                // Far in the future when the page waits for changes only.
                let timer = tokio::time::sleep(every.unwrap_or(Duration::MAX));
                tokio::pin!(timer);
                loop {
                    tokio::select! {
                        _ = state.hub.shutting_down() => return None,
                        _ = &mut timer => break,
                        change = changes.recv() => match change {
                            Ok(change) if concerns(&change) => break,
                            Ok(_) => continue,
                            // Missed changes may have concerned the page: refresh.
                            Err(RecvError::Lagged(_)) => break,
                            Err(RecvError::Closed) => return None,
                        },
                    }
                }
                // Let a burst settle: one refresh per second at most.
                tokio::time::sleep(Duration::from_secs(1)).await;
                changes = changes.resubscribe();
            }
            let event = match pulse(state.clone()).await {
                Ok(p) => Event::default().json_data(&p).unwrap_or_default(),
                Err(err) => Event::default().event("error").data(err.to_string()),
            };
            Some((
                Ok::<_, Infallible>(event),
                (state, changes, false, pulse, concerns),
            ))
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
