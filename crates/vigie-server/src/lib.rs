//! Vigie's server: one axum application serving the UI, the JSON API and the ingest
//! endpoints, on one port, plus the syslog listeners when configured.
//!
//! The path of a request:
//!
//! 1. [`http::security`] wraps everything: security headers on the way out, and any bare error
//!    turned into JSON (under `/api`) or a page.
//! 2. [`http::decompress`] refuses bodies over the size limit and inflates gzip, deflate, br and
//!    zstd bodies, stopping at the decompressed cap.
//! 3. [`metrics`] times the request under its route template.
//! 4. The route: [`ui`] pages pass the session/CSRF guard ([`auth::csrf`]) and take a
//!    [`auth::LoggedIn`] or [`auth::AdminUser`]; [`api`] handlers take an [`auth::ApiCaller`].
//! 5. Handlers apply changes through [`manage`] (rules shared with the CLI), which writes through
//!    the `vigie_store::Store`: the answer is sent after the commit.
//! 6. Changes are published on the [`hub`], and live pages ([`ui::live`]) refresh over SSE.
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
//! Features live in folders of their own — [`jobs`], [`logs`], [`monitors`], [`celery`],
//! [`alerts`] — each with its domain glue, `api.rs`, `ui.rs` (its pages) and one `routes()`
//! returning an [`http::Routes`], which [`app::router`] composes with the guards each part
//! needs. [`web`] is what every page shares; [`ui`] holds the pages not yet moved (dashboard,
//! issues and performance, reports, accounts and settings).
//!
//! [`serve::run`] wires it together, and shuts it down in an order that loses no write.

pub mod alerts;
pub mod api;
pub mod app;
pub mod auth;
pub mod celery;
pub mod config;
pub mod errors;
pub mod health;
pub mod http;
pub mod hub;
pub mod jobs;
pub mod logs;
pub mod manage;
pub mod memory;
pub mod metrics;
pub mod monitors;
pub mod reports;
pub mod serve;
pub mod state;
pub mod tasks;
pub mod ui;
pub mod web;

pub use config::{Config, Overrides, DEFAULT_TOML};
pub use serve::{open_store, run, ServeError, Started};
