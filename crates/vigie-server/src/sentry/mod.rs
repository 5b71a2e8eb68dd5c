//! Errors and performance: the Sentry ingest endpoints, and what people read of them.
//!
//! The path of an envelope through the server:
//!
//! ```text
//! POST /api/<project>/envelope/   (body inflated by http::decompress, ≤ 100 MiB)
//!   ingest    project from the path (404), key from X-Sentry-Auth, ?sentry_key= or the
//!             envelope's DSN (401 / 403)
//!   process   items parsed; events scrubbed, then grouped and summarized; transactions
//!             summarized; sessions, client reports, check-ins, attachments, logs read
//!   quota     server / project quotas and spike protection: refused events become dropped
//!             counts, and the answer says 429 + Retry-After + X-Sentry-Rate-Limits
//!   sink      batches of many requests stored in one transaction (Store::write_errors);
//!             Sentry logs go to the log sink
//!   answer    {"id": …} once durable; 400 naming malformed items (the rest stored)
//! ```
//!
//! `api` serves issues, events and performance figures as JSON; [`ui`] shows them (the
//! Issues and Performance pages); [`routes`] lists all of it.

pub mod api;
pub mod ingest;
pub mod process;
pub mod quota;
pub mod sink;
pub mod ui;

/// Sentry ingest (envelope and store, with their CORS preflight: called by SDKs with the
/// project key), the issues, events and performance API, and their pages.
///
/// `S` is the server's state: handlers take the shared `AppState` and the [`ErrorIngest`]
/// from it.
pub fn routes<S>() -> crate::http::Routes<S>
where
    S: Clone + Send + Sync + 'static,
    crate::state::AppState: axum::extract::FromRef<S>,
    ErrorIngest: axum::extract::FromRef<S>,
{
    use crate::http::Table;
    use axum::routing::{get, post};
    crate::http::Routes {
        pages: Table::new()
            .route("/issues", get(ui::issues::list))
            .route("/feedback", get(ui::issues::feedback))
            .route("/issues/{id}", get(ui::issues::show))
            .route("/issues/{id}/status", post(ui::issues::set_status))
            .route(
                "/live/issues",
                get(project_pulse::<ui::issues::IssuesPulse>),
            )
            .route("/performance", get(ui::performance::list))
            .route(
                "/performance/transaction",
                get(ui::performance::transaction),
            ),
        api: Table::new()
            .route("/api/v1/issues", get(api::list))
            .route("/api/v1/issues/{id}", get(api::show))
            .route("/api/v1/issues/{id}/status", post(api::set_status))
            .route("/api/v1/issues/{id}/events", get(api::events))
            .route("/api/v1/events/{event_id}", get(api::event))
            .route("/api/v1/feedback", get(api::feedback))
            .route("/api/v1/attachments/{id}", get(api::attachment))
            .route("/api/v1/transactions", get(api::transactions))
            .route("/api/v1/transactions/detail", get(api::transaction_detail))
            .route(
                "/api/v1/error-settings",
                get(api::settings).put(api::update_settings),
            ),
        ingest: Table::new()
            .route(
                "/api/{project}/envelope/",
                post(ingest::envelope).options(ingest::preflight),
            )
            .route(
                "/api/{project}/store/",
                post(ingest::store).options(ingest::preflight),
            ),
    }
}

pub use crate::hub::{IssueNews, TransactionNews, TransactionSample};
pub use sink::ErrorSink;

use crate::cache::Cache;
use crate::config::ErrorsConfig;
use crate::http::AppError;
use crate::hub::Hub;
use crate::web::sse::project_pulse;
use serde::Deserialize;
use std::sync::Arc;
use vigie_core::{Project, ProjectId};
use vigie_store::{ErrorSettings, Store};

/// The live parts of error ingest, shared by every request.
#[derive(Clone)]
pub struct ErrorIngest {
    pub sink: ErrorSink,
    pub quotas: Arc<quota::Quotas>,
    pub max_attachment_bytes: usize,
    /// Where the log records of envelopes (Sentry logs) go.
    pub logs: crate::logs::LogSink,
    /// The source maps JavaScript events need, fetched before they are processed.
    pub maps: crate::sourcemaps::maps::Resolver,
    settings: Arc<Cache<ProjectId, ErrorSettings>>,
    projects: Arc<Cache<ProjectId, Project>>,
}

impl ErrorIngest {
    pub fn start(
        store: Arc<dyn Store>,
        hub: Hub,
        metrics: Arc<crate::metrics::Metrics>,
        config: &ErrorsConfig,
        logs: crate::logs::LogSink,
        maps: crate::sourcemaps::maps::Resolver,
    ) -> Self {
        ErrorIngest {
            logs,
            maps,
            sink: ErrorSink::start(store, hub.clone(), metrics),
            quotas: Arc::new(quota::Quotas::new(config.clone())),
            max_attachment_bytes: (config.max_attachment_mib as usize) << 20,
            settings: Arc::new(Cache::new(hub.clone())),
            projects: Arc::new(Cache::new(hub)),
        }
    }

    /// A project's error settings, from the short-lived cache (see `crate::cache`).
    pub async fn settings(
        &self,
        store: &dyn Store,
        project: ProjectId,
    ) -> Result<ErrorSettings, vigie_store::StoreError> {
        let read = async { store.error_settings(project).await.map(Some) };
        let settings = self.settings.read_through(&project, read).await?;
        Ok(settings.unwrap_or_default())
    }

    /// A project by id, from the short-lived cache.
    pub async fn project(
        &self,
        store: &dyn Store,
        id: ProjectId,
    ) -> Result<Option<Project>, vigie_store::StoreError> {
        self.projects.read_through(&id, store.project(id)).await
    }
}

/// Applies `change` to the project's error settings and stores them; answers the settings
/// now in force, and tells the hub (so ingest reads them at once). The API and the Settings
/// page both change settings through here.
pub async fn change_settings(
    store: &dyn Store,
    hub: &Hub,
    project: ProjectId,
    change: SettingsChange,
) -> Result<ErrorSettings, AppError> {
    let mut settings = store.error_settings(project).await?;
    if let Some(ms) = change.apdex_ms {
        settings.apdex_ms = ms;
    }
    if change.events_per_minute.is_some() {
        settings.events_per_minute = change.events_per_minute.filter(|n| *n != 0);
    }
    if let Some(keep) = change.keep_user_contact {
        settings.keep_user_contact = keep;
    }
    if let Some(on) = change.span_exceptions {
        settings.span_exceptions = on;
    }
    if change.span_retention_days.is_some() {
        settings.span_retention_days = change.span_retention_days.filter(|d| *d != 0);
    }
    if let Some(keys) = change.scrub_keys {
        if keys.iter().any(|k| k.contains(',')) {
            return Err(AppError::Invalid {
                field: "scrub_keys".into(),
                message: "a key word cannot contain a comma".into(),
            });
        }
        settings.scrub_keys = keys
            .iter()
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
    }
    store.set_error_settings(project, &settings).await?;
    hub.publish(crate::hub::Change::Projects);
    Ok(settings)
}

/// A change to a project's error settings: the fields given are set, the others kept.
#[derive(Debug, Default, Deserialize)]
pub struct SettingsChange {
    pub apdex_ms: Option<i64>,
    /// `0` or `null` removes the project limit.
    pub events_per_minute: Option<i64>,
    pub keep_user_contact: Option<bool>,
    /// Whether OpenTelemetry span exceptions become error events.
    pub span_exceptions: Option<bool>,
    /// Days the project's spans are kept; `0` or `null`: the server's `errors.retention`.
    pub span_retention_days: Option<i64>,
    pub scrub_keys: Option<Vec<String>>,
}

/// Drops events, performance data (spans too) and monitor runs older than `errors.retention`,
/// and each project's spans older than its own span retention when it has one (run hourly by
/// `crate::schedule`).
pub async fn retention(state: &crate::state::AppState) -> Result<String, vigie_store::StoreError> {
    use vigie_core::Timestamp;
    let now = Timestamp::now().millis();
    let ago =
        |keep: std::time::Duration| Timestamp(now - keep.as_millis().min(i64::MAX as u128) as i64);
    let before = state.config.error_retention().ok().flatten().map(ago);
    let pruned = async {
        let rows = match before {
            Some(before) => state.store.prune_errors(before).await?,
            None => 0,
        };
        let mut spans = 0;
        for project in state.store.list_projects().await? {
            let own = state
                .store
                .error_settings(project.id)
                .await?
                .span_retention_days;
            let days = |d: i64| std::time::Duration::from_secs(d.max(1) as u64 * 86_400);
            if let Some(before) = own.map(|d| ago(days(d))).or(before) {
                spans += state.store.prune_spans(project.id, before).await?;
            }
        }
        Ok((rows, spans))
    };
    match pruned.await {
        Ok((rows, spans)) => {
            if rows + spans > 0 {
                tracing::info!(rows, spans, "old events and spans dropped by retention");
            }
            let forever = if before.is_none() {
                " (events kept forever: errors.retention = 0)"
            } else {
                ""
            };
            Ok(format!(
                "rows dropped: {rows}, spans dropped: {spans}{forever}"
            ))
        }
        Err(err) => {
            tracing::warn!(%err, "event retention failed");
            Err(err)
        }
    }
}
