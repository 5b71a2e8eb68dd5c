//! Vigie's domain: the types every other crate speaks, and the pure logic on them.
//!
//! Nothing here does I/O. Wire formats turn into these types in `vigie-protocol`, they are
//! persisted through `vigie-store`, and `vigie-server` shows them. Keeping this crate pure keeps
//! it fast to test and safe to fuzz.
//!
//! - [`account`]: users, roles, API tokens and the access each one grants.
//! - [`alert`]: alert rules, channels, and the message as each channel shows it.
//! - [`endpoint`]: the names of HTTP endpoints, the request method in front of the route.
//! - [`event`]: error events, and how they group into issues.
//! - [`incident`]: incident reports: a merged timeline and the diagnosis rules read from it.
//! - [`issue`]: issues (groups of events) and their life cycle.
//! - [`json`]: reaching into a JSON document by its keys, allocating nothing.
//! - [`job`]: jobs, their items (trace rows), and the rules by which a job moves.
//! - [`log`]: log records, levels, and the words search finds in them.
//! - [`logquery`]: the log search language, parsed for block pruning and record matching.
//! - [`metric`]: application metrics: data points, the minute each series is kept as, figures.
//! - [`monitor`]: cron and heartbeat monitors: runs, states, missed and timed-out runs.
//! - [`project`]: projects and their public ingest keys.
//! - [`schedule`]: crontab (time-zone aware) and interval schedules.
//! - [`scrub`]: PII scrubbing of events before they are stored.
//! - [`sketch`]: mergeable duration sketches (percentiles) and Apdex.
//! - [`span`]: spans, the timed operations traces are made of, whichever SDK sent them.
//! - [`secret`]: random tokens, their stored hashes, and a `Debug`-redacting wrapper.
//! - [`time`]: the millisecond timestamp stored everywhere, and how it reads to a person.
//! - [`validate`]: the rules names must follow, with errors a user can act on.
//! - [`varint`]: the compact integers of the binary encodings (sketches, log blocks).

/// A built-in regex, compiled once on first use: `static_regex!(r"\d+")` is a `&'static Regex`.
macro_rules! static_regex {
    ($pattern:expr) => {{
        static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        RE.get_or_init(|| regex::Regex::new($pattern).expect("a valid built-in regex"))
    }};
}

pub mod account;
pub mod alert;
pub mod celery;
pub mod endpoint;
pub mod event;
pub mod incident;
pub mod issue;
pub mod job;
pub mod json;
pub mod log;
pub mod login_limiter;
pub mod logquery;
pub mod metric;
pub mod monitor;
pub mod numbers;
pub mod project;
pub mod query_set;
pub mod schedule;
pub mod scrub;
pub mod search_box;
pub mod secret;
pub mod sketch;
pub mod span;
pub mod time;
pub mod trace_keep;
pub mod tracequery;
pub mod validate;
pub mod varint;

pub use account::{Access, ApiToken, Role, Scope, User};
pub use job::{Item, ItemStatus, Job, JobOrigin, JobStatus, NewItem, NewJob};
pub use log::{Level, LogRecord, Text};
pub use logquery::LogQuery;
pub use project::{Project, ProjectId, ProjectKey};
pub use secret::Secret;
pub use time::Timestamp;
