//! Vigie's server: one axum application serving the UI, the JSON API and the ingest
//! endpoints, on one port, plus the syslog listeners when configured.
//!
//! The path of a request, from HTTP to disk (a job's progress report, say):
//!
//! ```text
//!  POST /api/v1/jobs/{id}/progress
//!   │ http::security (headers, error shaping) ─ metrics::track (a `request` span, the count)
//!   │ http::unread_body (every sender gets its answer)
//!   ▼
//!  jobs::api::update ──── auth::job_access::JobAccess (the project key) ── IngestBody (caps,
//!   │                     inflating, the memory budget; http::ingest_body)
//!   │ vigie_protocol::jobs parses ─ vigie_core::job applies the rule
//!   ▼
//!  vigie_store::JobStore::update_job ── Db::write (a `store` span) ── SQLite: the writer
//!   │  thread's group commit · PostgreSQL: one transaction, the row locked
//!   ▼ answered after the commit
//!  hub::Hub::publish_job ── jobs::live (SSE) ── the job page, progress.js, the alert engine
//! ```
//!
//! 1. [`http::security`] wraps everything: security headers on the way out, and any bare error
//!    turned into JSON (under `/api`) or a page.
//! 2. [`metrics`] times the request under its route template, inside a `request` span;
//!    [`http::unread_body`] drains a body a handler answered without reading.
//! 3. The route, from a feature's `routes()` ([`http::Routes`]): pages pass the session/CSRF
//!    guard ([`auth::csrf`]) and take a [`auth::LoggedIn`] or [`auth::AdminUser`]; API handlers
//!    take an [`auth::ApiCaller`]; ingest handlers authenticate the project key, then read
//!    their body through [`http::ingest_body`] (size caps, inflating, the memory budget).
//! 4. Handlers apply changes through the feature's rules (accounts: [`accounts::manage`],
//!    shared with the CLI), which write through the `vigie_store::Store`: the answer is sent
//!    after the commit. Errors stay typed (`StoreError`, `ManageError`, `SubmitError`…) until
//!    the handler turns them into an HTTP answer ([`http::AppError`]).
//! 5. Changes are published on the [`hub`], and live pages refresh over SSE ([`web::sse`]).
//!
//! Many small writes share one transaction through the queues of [`batch`]: logs go through
//! [`logs::LogSink`] (parsed by `vigie_protocol::logs`, stored as compressed blocks, then fed
//! to live tails and rotating files), Sentry envelopes through [`sentry::ErrorSink`], Celery
//! events through the consumer's writer ([`celery::consumer`]).
//!
//! Alerts listen to the hub: [`alerts`] turns each change into happenings for event rules,
//! feeds threshold windows ([`alerts::thresholds`]) judged every second, and hands messages
//! to a notifier that delivers them with retries. [`schedule`] runs Vigie's periodic tasks
//! (each body in its feature) and records them on the [`tasks`] board; [`monitors::watchdog`]
//! checks those tasks in as monitors.
//!
//! Each feature is a folder — [`jobs`], [`logs`], [`sentry`] (errors and performance),
//! [`traces`], [`otel_metrics`], [`monitors`], [`celery`], [`alerts`], [`reports`],
//! [`accounts`], [`dashboard`] — holding its
//! domain glue, its API, its pages (templates in `templates/<feature>/`) and one `routes()`
//! returning an [`http::Routes`], which [`app::router`] composes with the guards each part
//! needs. [`web`] is what every page shares; [`api`] is the OpenAPI document.
//!
//! [`serve::run`] wires it together, and shuts it down in an order that loses no write.

pub mod accounts;
pub mod alerts;
pub mod api;
pub mod app;
pub mod auth;
pub mod batch;
pub mod cache;
pub mod celery;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod health;
pub mod http;
pub mod hub;
pub mod jobs;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod monitors;
pub mod otel_metrics;
pub mod releases;
pub mod reports;
pub mod schedule;
pub mod sentry;
pub mod serve;
pub mod sourcemaps;
pub mod state;
pub mod tasks;
pub mod traces;
pub mod web;

pub use config::{Config, Overrides, DEFAULT_TOML};
pub use serve::{open_store, run, ServeError, Started};
