//! The state every handler shares: the store, the configuration, and the live parts.
//!
//! The ingest pipelines (the log sink, Sentry ingest) are not here: they belong to their
//! features, and `crate::app::Server` holds them beside this state. A handler that needs one
//! takes it as `State<LogSink>` (or `State<ErrorIngest>`), so no feature module has to name a
//! type that names it back.

use crate::config::Config;
use crate::http::ingest_body::IngestBudget;
use crate::hub::{Doorbell, Hub, RulesChanged};
use crate::metrics::Metrics;
use crate::tasks::TaskBoard;
use axum::http::HeaderMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_store::Store;

/// What every handler and background task shares; cloned per request, so one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub hub: Hub,
    pub started: Instant,
    /// Where people and SDKs reach this server (see `Config::base_url`).
    pub base_url: Arc<str>,
    pub session_lifetime: Duration,
    /// Vigie's own periodic tasks and how their last runs went (the System page).
    pub tasks: TaskBoard,
    /// Wakes the alert notifier when deliveries are queued.
    pub doorbell: Doorbell,
    /// Tells the alert engine to re-read the rules.
    pub rules_changed: RulesChanged,
    /// The Celery brokers read and how each is doing.
    pub brokers: crate::metrics::Brokers,
    /// Body limits and the memory all ingest requests may hold at once.
    pub ingest: IngestBudget,
    /// Web pages refused a job's progress for their origin, for the job page to tell.
    pub origin_refusals: Arc<crate::metrics::OriginRefusals>,
    /// This instance: its name among those sharing the database, and whether it leads.
    pub instance: crate::metrics::InstanceBoard,
    /// Every project, read again when one changes (see `crate::cache`).
    pub projects: crate::cache::ProjectList,
    /// API tokens, read again when one is revoked (see `crate::cache`).
    pub tokens: crate::cache::ApiTokens,
    /// Browser sessions, read again when a user changes or logs out (see `crate::cache`).
    pub sessions: crate::cache::Sessions,
}

/// Ingest bodies (`http::ingest_body::IngestBody`) read within this budget.
impl axum::extract::FromRef<AppState> for IngestBudget {
    fn from_ref(state: &AppState) -> IngestBudget {
        state.ingest.clone()
    }
}

impl AppState {
    /// The state of a server on `store`, started at `started` (for the uptime it shows).
    pub fn new(
        store: Arc<dyn Store>,
        config: Config,
        hub: Hub,
        base_url: String,
        session_lifetime: Duration,
        started: Instant,
    ) -> AppState {
        let ingest = IngestBudget::new(
            config.max_body_bytes(),
            config.max_decompressed_bytes(),
            config.limits.max_records_per_request as usize,
            config.ingest_budget_bytes(),
            {
                let store = store.clone();
                Arc::new(move || store.write_queue_depth())
            },
        );
        AppState(Arc::new(Shared {
            ingest,
            store,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            projects: crate::cache::ProjectList::new(hub.clone()),
            tokens: crate::cache::ApiTokens::new(hub.clone()),
            sessions: crate::cache::Sessions::new(hub.clone()),
            hub,
            started,
            base_url: base_url.into(),
            session_lifetime,
            tasks: TaskBoard::default(),
            doorbell: Doorbell::default(),
            rules_changed: RulesChanged::default(),
            brokers: crate::metrics::Brokers::default(),
            origin_refusals: Arc::default(),
            instance: crate::metrics::InstanceBoard::new(
                instance_id(),
                vigie_core::Timestamp::now(),
            ),
        }))
    }

    /// Cookies get `Secure` when the browser reached us over HTTPS: either the configured
    /// public address is https, or a TLS-terminating proxy says so.
    pub fn secure_cookies(&self, headers: &HeaderMap) -> bool {
        self.base_url.starts_with("https://")
            || headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
    }

    /// The DSN of a project, for `sentry_sdk.init(dsn=…)`.
    pub fn dsn(&self, project: &vigie_core::Project) -> String {
        project_dsn(&self.base_url, project)
    }
}

/// The DSN of `project` served at `base_url` (see `Config::base_url`).
pub fn project_dsn(base_url: &str, project: &vigie_core::Project) -> String {
    vigie_protocol::Dsn::for_project(base_url, project.public_key.as_str(), project.id.0)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// A name for this instance: host, process and a random part (a restarted process on the
/// same host is a new instance).
fn instance_id() -> String {
    let random = vigie_core::secret::random_hex(4);
    format!("{}-{}-{random}", host_name(), std::process::id())
}

/// This machine's name (`$HOSTNAME`, else `/etc/hostname`, else "vigie").
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vigie".into())
}
