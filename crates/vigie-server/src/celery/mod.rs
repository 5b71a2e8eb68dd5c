//! Celery: Vigie reads the events Celery workers and clients publish on the broker, and keeps
//! every task and worker.
//!
//! - [`broker`] names the configured brokers and what Celery calls things on them;
//!   [`redis`] speaks to a Redis broker (the `celeryev` channels, the result backend's task
//!   states, one-off commands), [`amqp`] to RabbitMQ (the `celeryev` topic exchange).
//! - [`consumer`] reads each configured broker (reconnecting with backoff) and stores what it
//!   reads in batches: messages are decoded by `vigie_protocol::celery`, states merged by
//!   `vigie_core::celery`, rows written by `vigie_store::celery`.
//!   Each task is also a Job of kind `celery`, moved in the same transaction
//!   (`vigie_core::celery::Task::job_updates`).
//! - [`issues`] turns a failed task into an error event, grouped into issues like errors.
//! - [`api`] (with the Flower-compatible API) and [`ui`] (the pages) serve what is stored;
//!   [`routes`] lists them.
//! - [`queues`] reads how many messages wait in each queue.
//! - [`api`] answers for tasks and workers, in Vigie's API and in Flower's.

pub mod amqp;
pub mod api;
pub mod broker;
pub mod consumer;
pub mod control;
pub mod control_api;
pub mod control_ui;
pub mod flower_send;
pub mod inspected;
pub mod issues;
pub mod queues;
pub mod redis;
pub mod send;
pub mod types;
pub mod ui;

use crate::state::AppState;
use crate::web::sse::project_pulse;
use std::time::Duration;
use vigie_core::Timestamp;

/// The Celery pages, the API and the Flower-compatible API.
pub fn routes() -> crate::http::Routes<crate::state::AppState> {
    use crate::http::Table;
    use axum::routing::get;
    crate::http::Routes {
        pages: Table::new()
            .route("/celery", get(ui::tasks))
            .route("/celery/tasks/{uuid}", get(ui::task))
            .route("/celery/workers", get(ui::workers))
            .route("/celery/periodic", get(ui::periodic))
            .route("/celery/types", get(types::page))
            .route("/celery/act", axum::routing::post(control_ui::act))
            .route(
                "/celery/workers/{worker}/shutdown",
                get(control_ui::confirm_shutdown),
            )
            .route(
                "/celery/queues/{queue}/purge",
                get(control_ui::confirm_purge),
            )
            .route("/live/celery", get(project_pulse::<ui::CeleryPulse>)),
        api: api::routes()
            .merge(control_api::routes())
            .route("/api/v1/celery/types", get(types::api)),
        ingest: Table::new(),
    }
}

pub use crate::metrics::{BrokerStatus, Brokers};
pub use broker::Broker;

/// Drops Celery tasks older than `celery.retention` (with their events and Jobs) and
/// forgets workers silent for `celery.forget_workers_after`.
pub async fn retention(state: &AppState) -> Result<String, crate::tasks::TaskError> {
    let config = &state.config.celery;
    let now = Timestamp::now().millis();
    let cut = |keep: Option<Duration>| {
        keep.map(|d| Timestamp(now - d.as_millis().min(i64::MAX as u128) as i64))
    };
    let tasks_before = cut(config.retention()?);
    let workers_before = cut(config.forget_workers_after()?);
    if tasks_before.is_none() && workers_before.is_none() {
        return Ok("kept forever (celery.retention and forget_workers_after empty)".into());
    }
    let mut dropped = 0;
    loop {
        match state.store.prune_celery(tasks_before, workers_before).await {
            Ok(0) => break,
            Ok(rows) => dropped += rows,
            Err(err) => {
                tracing::warn!(%err, "celery retention failed");
                return Err(err.into());
            }
        }
    }
    if dropped > 0 {
        tracing::info!(
            rows = dropped,
            "old celery tasks and workers dropped by retention"
        );
    }
    Ok(format!("rows dropped: {dropped}"))
}
