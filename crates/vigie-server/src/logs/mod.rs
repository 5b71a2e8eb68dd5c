//! Logs in the server: how records arrive, where they go, and how people read them.
//!
//! ```text
//! POST /api/v1/logs (JSON lines) ─┐
//! POST /v1/logs (OTLP)            ├─▶ ingest ─▶ sink ─▶ block engine (durable) ─▶ 2xx
//! POST /loki/api/v1/push          │              │
//! syslog UDP/TCP listener ────────┤              ├─▶ hub ─▶ live tails (SSE)
//! followed files ─────────────────┘              └─▶ rotating files under <data>/files/
//!   ([[logs.follow]]: each file's position is stored in the commit of its records)
//! ```
//!
//! - [`sink`]: gathers concurrent ingest batches into one durable append, then fans out.
//! - [`ingest`]: the HTTP ingest endpoints, one per protocol.
//! - [`syslog`]: the UDP and TCP listeners (off unless configured).
//! - [`follow`]: log files read as they grow, through rotations and restarts (off unless
//!   configured; `vigie import --follow` uses it too).
//! - [`files`]: the configured rotating files.
//! - [`api`]: search, counts, live tail and sources as JSON (the UI and the CLI use them).
//! - [`view`]: a record as the API and the UI show it.
//! - [`ui`]: the Logs pages (search, live tail, sources); [`routes`] lists them all.

pub mod api;
pub mod files;
pub mod follow;
pub mod ingest;
pub mod sink;
pub mod syslog;
pub mod ui;
pub mod upkeep;
pub mod view;

/// Reading logs (the API and the pages), and log ingest (JSON lines, OTLP, Loki push: called by applications and shippers with the project key, bodies read within the ingest limits).
///
/// `S` is the server's state: handlers take the shared `AppState` and the [`LogSink`] from it.
pub fn routes<S>() -> crate::http::Routes<S>
where
    S: Clone + Send + Sync + 'static,
    crate::state::AppState: axum::extract::FromRef<S>,
    LogSink: axum::extract::FromRef<S>,
    crate::http::ingest_body::IngestBudget: axum::extract::FromRef<S>,
{
    use crate::http::Table;
    use axum::routing::{get, post};
    crate::http::Routes {
        pages: Table::new()
            .route("/logs", get(ui::search))
            .route("/logs/sources", get(ui::sources))
            .route("/logs/sources/{id}", get(ui::source))
            .route("/logs/sources/{id}/clear", post(ui::clear)),
        api: Table::new()
            .route("/api/v1/logs/search", get(api::search))
            .route("/api/v1/logs/stats", get(api::stats))
            .route("/api/v1/logs/tail", get(api::tail))
            .route("/api/v1/logs/download", get(api::download))
            .route("/api/v1/logs/sources", get(api::sources))
            .route(
                "/api/v1/logs/sources/{id}",
                get(api::source).delete(api::clear_source),
            )
            .route("/api/v1/logs/sources/{id}/lines", get(api::source_lines))
            .route(
                "/api/v1/logs/sources/{id}/download",
                get(api::source_download),
            ),
        ingest: Table::new()
            .route("/api/v1/logs", post(ingest::json_lines))
            .route("/v1/logs", post(ingest::otlp))
            .route("/loki/api/v1/push", post(ingest::loki)),
    }
}

pub use sink::LogSink;
