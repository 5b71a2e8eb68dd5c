//! The wire formats Vigie speaks, turned into `vigie-core` types.
//!
//! Every parser here is a pure function over bytes or strings: no I/O, no allocation beyond its
//! result, and a fuzz target in `fuzz/` for each. Ingest handlers in `vigie-server` call these
//! and hand the results to the store.
//!
//! - [`celery`]: Celery's event messages (kombu envelopes, `task.multi` batches) and the Redis
//!   result backend's task states.
//! - [`auth`]: where a client puts its project key (Sentry's `X-Sentry-Auth`, the `sentry_key`
//!   query parameter, `Authorization`), and the DSN that tells it where to send.
//! - [`jobs`]: the jobs API's JSON bodies, with errors that name the field.
//! - [`logs`]: JSON lines, OTLP, Loki push, syslog, and the log files `vigie import` reads.
//! - [`otlp`]: what OTLP's signals share, and OTLP/HTTP traces.
//! - [`sentry`]: envelopes and events, as the unchanged Sentry SDKs send them.
//! - [`weight`]: what a body will cost to parse, counted before it is parsed.

pub mod auth;
pub mod celery;
pub mod jobs;
pub mod logs;
pub mod otlp;
pub mod sentry;
pub mod weight;

pub use auth::{
    basic_credentials, bearer_token, find_project_key, query_value, Dsn, DsnError, KeySources,
};
