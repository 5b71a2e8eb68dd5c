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
pub mod issues;
pub mod queues;
pub mod redis;
pub mod ui;

/// The Celery pages, the API and the Flower-compatible API.
pub fn routes() -> crate::http::Routes {
    use axum::routing::get;
    use axum::Router;
    crate::http::Routes {
        pages: Router::new()
            .route("/celery", get(ui::tasks))
            .route("/celery/tasks/{uuid}", get(ui::task))
            .route("/celery/workers", get(ui::workers))
            .route("/celery/periodic", get(ui::periodic))
            .route("/live/celery", get(ui::live)),
        api: api::routes(),
        ingest: Router::new(),
    }
}

pub use broker::Broker;
pub use consumer::{BrokerStatus, Brokers};
