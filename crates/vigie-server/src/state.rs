//! The state every handler shares: the store, the configuration, and the live parts.

use crate::config::Config;
use crate::http::ingest_body::IngestBudget;
use crate::hub::{Doorbell, Hub, RulesChanged};
use crate::logs::files::FileRoutes;
use crate::logs::LogSink;
use crate::metrics::Metrics;
use crate::sentry::ErrorIngest;
use crate::tasks::TaskBoard;
use axum::http::HeaderMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_core::login_limiter::LoginLimiter;
use vigie_store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub hub: Hub,
    pub limiter: Arc<LoginLimiter>,
    pub started: Instant,
    /// Where people and SDKs reach this server (see `Config::base_url`).
    pub base_url: Arc<str>,
    pub session_lifetime: Duration,
    /// Where every log ingest path hands its records.
    pub logs: LogSink,
    /// Sentry ingest: the event sink, quotas, cached project settings.
    pub errors: ErrorIngest,
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
}

/// Ingest bodies (`http::ingest_body::IngestBody`) read within this budget.
impl axum::extract::FromRef<AppState> for IngestBudget {
    fn from_ref(state: &AppState) -> IngestBudget {
        state.ingest.clone()
    }
}

impl AppState {
    /// The state of a server on `store`; starts the log sink (and the configured rotating
    /// files under `<data>/files/`).
    pub fn new(
        store: Arc<dyn Store>,
        config: Config,
        hub: Hub,
        base_url: String,
        session_lifetime: Duration,
    ) -> Result<AppState, String> {
        let metrics = Arc::new(Metrics::default());
        let files = FileRoutes::start(&config.data.join("files"), &config.logs.files)?;
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
        Ok(AppState {
            ingest,
            logs: LogSink::start(store.clone(), hub.clone(), metrics.clone(), files),
            errors: ErrorIngest::start(store.clone(), hub.clone(), metrics.clone(), &config.errors),
            store,
            config: Arc::new(config),
            metrics,
            hub,
            limiter: Arc::new(LoginLimiter::default()),
            started: Instant::now(),
            base_url: base_url.into(),
            session_lifetime,
            tasks: TaskBoard::default(),
            doorbell: Doorbell::default(),
            rules_changed: RulesChanged::default(),
            brokers: crate::metrics::Brokers::default(),
            origin_refusals: Arc::default(),
        })
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
