//! Logs in the server: how records arrive, where they go, and how people read them.
//!
//! ```text
//! POST /api/v1/logs (JSON lines) ─┐
//! POST /v1/logs (OTLP)            ├─▶ ingest ─▶ sink ─▶ block engine (durable) ─▶ 2xx
//! POST /loki/api/v1/push          │              │
//! syslog UDP/TCP listener ────────┘              ├─▶ hub ─▶ live tails (SSE)
//!                                                └─▶ rotating files under <data>/files/
//! ```
//!
//! - [`sink`]: gathers concurrent ingest batches into one durable append, then fans out.
//! - [`ingest`]: the HTTP ingest endpoints, one per protocol.
//! - [`syslog`]: the UDP and TCP listeners (off unless configured).
//! - [`files`]: the configured rotating files.
//! - [`api`]: search, counts, live tail and sources as JSON (the UI and the CLI use them).
//! - [`view`]: a record as the API and the UI show it.

pub mod api;
pub mod files;
pub mod ingest;
pub mod sink;
pub mod syslog;
pub mod view;

pub use sink::LogSink;
