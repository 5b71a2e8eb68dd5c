//! Cron and heartbeat monitors: check-ins become runs, each run is shown as a Job, and a
//! periodic check finds the runs that never came or never ended.
//!
//! ```text
//! check_in item in a Sentry envelope ─┐
//! /ping/<key>/<slug>[/start|/fail|/N] ┴─► Store::record_check_in ─► RunChange
//! every CHECK_EVERY: Store::check_monitors(now) ──────────────────► RunChange (missed,
//!                                                                    timed out)
//! RunChange ─► the run's Job (kind "monitor": created running, finished ok / failed)
//!           ─► hub Change::Monitors (the Monitors pages refresh)
//! ```
//!
//! The rules (schedules, margins, states) live in `vigie_core::monitor`, the storage in
//! `vigie_store::monitors`; [`ping`] serves the ping URLs, [`api`] the JSON API and [`ui`]
//! the pages ([`routes`]).

pub mod api;
pub mod ping;
pub mod ui;
pub mod watchdog;

/// The monitors' pages and API (pings are `ping::routes`, public).
pub fn routes() -> crate::http::Routes<crate::state::AppState> {
    use crate::http::Table;
    use axum::routing::{get, post};
    crate::http::Routes {
        pages: Table::new()
            .route("/monitors", get(ui::list))
            .route("/monitors/{slug}", get(ui::show))
            .route("/monitors/{slug}/schedule", post(ui::configure))
            .route("/monitors/{slug}/pause", post(ui::pause))
            .route("/monitors/{slug}/delete", post(ui::delete))
            .route("/live/monitors", get(project_pulse::<ui::MonitorsPulse>)),
        api: Table::new()
            .route("/api/v1/monitors", get(api::list))
            .route(
                "/api/v1/monitors/{slug}",
                get(api::show).put(api::update).delete(api::delete),
            )
            .route("/api/v1/monitors/{slug}/pause", post(api::pause))
            .route("/api/v1/monitors/{slug}/resume", post(api::resume)),
        ingest: Table::new(),
    }
}

use crate::hub::{Change, JobNews};
use crate::state::AppState;
use crate::web::sse::project_pulse;
use std::sync::Arc;
use std::time::Duration;
use vigie_core::job::{JobUpdate, NewJob};
use vigie_core::monitor::RunStatus;
use vigie_core::secret::{random_hex, token_hash};
use vigie_core::{Job, JobStatus, ProjectId, Timestamp};
use vigie_store::StoreError;
use vigie_store::{CheckInReport, RunChange};

/// How often the periodic check runs: a missed run is found (and alerted) at most this long
/// after its margin has passed. The check reads only the monitors already due (an index on
/// the next expected time), so running it often costs nothing.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Records a check-in and mirrors its run as a Job.
pub async fn record(
    state: &AppState,
    project: ProjectId,
    report: CheckInReport,
) -> Result<RunChange, StoreError> {
    let change = state.store.record_check_in(project, &report).await?;
    mirror(state, &change).await;
    state
        .hub
        .publish(Change::Monitors(project, Some(Arc::new(change.clone()))));
    Ok(change)
}

/// The periodic check: missed and timed-out runs, each mirrored and announced.
/// Its outcome is words for the task board (a test compares them), the error logged with its
/// cause here.
pub async fn check(state: &AppState) -> Result<String, vigie_store::StoreError> {
    match state.store.check_monitors(Timestamp::now()).await {
        Ok(changes) => {
            for change in &changes {
                tracing::warn!(
                    monitor = %change.monitor.slug,
                    run = change.run.status.as_str(),
                    "monitor run failed"
                );
                mirror(state, change).await;
                state.hub.publish(Change::Monitors(
                    change.monitor.project,
                    Some(Arc::new(change.clone())),
                ));
            }
            Ok(format!("runs missed or timed out: {}", changes.len()))
        }
        Err(err) => {
            tracing::warn!(%err, "monitor check failed");
            Err(err)
        }
    }
}

/// Creates or moves the Job a run is shown as. A failure here is logged, never lost
/// ingest: the run itself is stored.
async fn mirror(state: &AppState, change: &RunChange) {
    if let Err(err) = mirror_run(state, change).await {
        tracing::warn!(%err, monitor = %change.monitor.slug, "could not update the run's job");
    }
}

async fn mirror_run(state: &AppState, change: &RunChange) -> Result<(), StoreError> {
    let (monitor, run) = (&change.monitor, &change.run);
    let project = monitor.project;
    let now = Timestamp::now();
    let job_id = match &run.job_id {
        Some(id) => id.clone(),
        None => {
            let id = format!("monitor-{}-{}", monitor.id, run.id);
            let max_runtime_ms = vigie_core::monitor::max_runtime_ms(monitor.config.as_ref());
            let new = NewJob {
                project,
                id: Some(id.clone()),
                name: monitor.slug.clone(),
                kind: Some(vigie_core::JobOrigin::MONITOR_KIND.into()),
                application: None,
                flow: run.environment.clone(),
                launched_by: Some("schedule".into()),
                total: None,
                // The run times out at max_runtime; the job should not call it stalled first.
                stall_after_ms: Some(max_runtime_ms + 60_000),
                meta: None,
                start: true,
            };
            let job = Job::create(&new, id.clone(), run.started_at.min(now))?;
            // Nobody reads a monitor run through a read token: a random one nobody knows.
            let job = state
                .store
                .create_job(&job, &token_hash(&random_hex(20)))
                .await?;
            state.store.set_run_job(run.id, &id).await?;
            state.hub.publish_job(JobNews::new(job, vec![], vec![]));
            id
        }
    };
    let finish = |status, message: String| JobUpdate::Finish {
        status,
        messages: vec![message],
    };
    let update = match run.status {
        RunStatus::InProgress => return Ok(()),
        RunStatus::Ok => finish(JobStatus::Completed, "check-in: ok".into()),
        RunStatus::Error => finish(
            JobStatus::Failed,
            match &run.output {
                Some(out) if !out.trim().is_empty() => {
                    format!("check-in: error — {}", last_line(out))
                }
                _ => "check-in: error".into(),
            },
        ),
        RunStatus::Missed => finish(
            JobStatus::Failed,
            format!(
                "missed: no check-in within {} min of the expected time",
                monitor.config.as_ref().map_or(1, |c| c.checkin_margin_min)
            ),
        ),
        RunStatus::TimedOut => finish(
            JobStatus::Failed,
            format!(
                "timed out: still running after {} min",
                monitor.config.as_ref().map_or(30, |c| c.max_runtime_min)
            ),
        ),
    };
    let moved = state
        .store
        .update_job(project, &job_id, &update, now)
        .await?;
    state
        .hub
        .publish_job(JobNews::new(moved.job, vec![], moved.messages));
    Ok(())
}

/// The last non-empty line of a script's output: what a job message shows.
fn last_line(output: &str) -> &str {
    output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}
