//! Vigie's server: one axum application serving the UI, the JSON API and the ingest
//! endpoints, on one port, plus the syslog listeners when configured.
//!
//! The path of a request:
//!
//! 1. [`http::security`] wraps everything: security headers on the way out, and any bare error
//!    turned into JSON (under `/api`) or a page.
//! 2. [`metrics`] times the request under its route template; [`http::unread_body`] drains a
//!    body a handler answered without reading.
//! 3. The route, from a feature's `routes()` ([`http::Routes`]): pages pass the session/CSRF
//!    guard ([`auth::csrf`]) and take a [`auth::LoggedIn`] or [`auth::AdminUser`]; API handlers
//!    take an [`auth::ApiCaller`]; ingest handlers authenticate the project key, then read
//!    their body through [`http::ingest_body`] (size caps, inflating, the memory budget).
//! 4. Handlers apply changes through the feature's rules (accounts: [`accounts::manage`],
//!    shared with the CLI), which write through the `vigie_store::Store`: the answer is sent
//!    after the commit.
//! 5. Changes are published on the [`hub`], and live pages refresh over SSE ([`web::sse`]).
//!
//! Logs take their own path through [`logs`]: ingest handlers parse with
//! `vigie_protocol::logs`, hand records to the [`logs::LogSink`], which stores them as
//! compressed blocks and then feeds live tails and rotating files.
//!
//! Alerts listen to the hub: [`alerts`] turns each change into happenings for event rules,
//! feeds threshold windows ([`alerts::thresholds`]) judged every second, and hands messages
//! to a notifier that delivers them with retries. [`monitors`] check schedules every two
//! seconds; [`monitors::watchdog`] checks Vigie's own periodic tasks in as monitors.
//!
//! Each feature is a folder — [`jobs`], [`logs`], [`sentry`] (errors and performance),
//! [`monitors`], [`celery`], [`alerts`], [`reports`], [`accounts`], [`dashboard`] — holding its
//! domain glue, its API, its pages and one `routes()` returning an [`http::Routes`], which
//! [`app::router`] composes with the guards each part needs. [`web`] is what every page
//! shares; [`api`] is the OpenAPI document.
//!
//! [`serve::run`] wires it together, and shuts it down in an order that loses no write.

pub mod accounts;
pub mod alerts;
pub mod api;
pub mod app;
pub mod auth;
pub mod batch;
pub mod celery;
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
pub mod reports;
pub mod schedule;
pub mod sentry;
pub mod serve;
pub mod state;
pub mod tasks;
pub mod web;

pub use config::{Config, Overrides, DEFAULT_TOML};
pub use serve::{open_store, run, ServeError, Started};
