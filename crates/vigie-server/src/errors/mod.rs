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
//! `api` serves issues, events and performance figures as JSON; `crate::ui::issues` and
//! `crate::ui::performance` show them.

pub mod api;
pub mod ingest;
pub mod process;
pub mod quota;
pub mod sink;

pub use sink::{ErrorSink, IssueNews};

use crate::config::ErrorsConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigie_core::{Project, ProjectId};
use vigie_store::{ErrorSettings, Store};

/// How long a project's error settings are trusted before being read again (a change made
/// on another instance sharing the database shows within this delay).
const SETTINGS_TTL: Duration = Duration::from_secs(10);

/// The live parts of error ingest, shared by every request.
#[derive(Clone)]
pub struct ErrorIngest {
    pub sink: ErrorSink,
    pub quotas: Arc<quota::Quotas>,
    pub max_attachment_bytes: usize,
    settings: Arc<Mutex<HashMap<ProjectId, (ErrorSettings, Instant)>>>,
    projects: Arc<Mutex<HashMap<ProjectId, (Project, Instant)>>>,
}

impl ErrorIngest {
    pub fn start(store: Arc<dyn Store>, hub: crate::hub::Hub, config: &ErrorsConfig) -> Self {
        ErrorIngest {
            sink: ErrorSink::start(store, hub),
            quotas: Arc::new(quota::Quotas::new(config.clone())),
            max_attachment_bytes: (config.max_attachment_mib as usize) << 20,
            settings: Arc::default(),
            projects: Arc::default(),
        }
    }

    /// A project's settings, from a short-lived cache.
    pub async fn settings(
        &self,
        store: &dyn Store,
        project: ProjectId,
    ) -> Result<ErrorSettings, vigie_store::StoreError> {
        if let Some((settings, at)) = self.lock().get(&project) {
            if at.elapsed() < SETTINGS_TTL {
                return Ok(settings.clone());
            }
        }
        let settings = store.error_settings(project).await?;
        self.lock()
            .insert(project, (settings.clone(), Instant::now()));
        Ok(settings)
    }

    /// A project by id, from a short-lived cache: SDKs send one request per event, and the
    /// project (with its key) rarely changes. A rotated key stops working here within
    /// [`SETTINGS_TTL`].
    pub async fn project(
        &self,
        store: &dyn Store,
        id: ProjectId,
    ) -> Result<Option<Project>, vigie_store::StoreError> {
        {
            let cache = self.projects.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((project, at)) = cache.get(&id) {
                if at.elapsed() < SETTINGS_TTL {
                    return Ok(Some(project.clone()));
                }
            }
        }
        let found = store.project(id).await?;
        let mut cache = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        match &found {
            Some(project) => {
                cache.insert(id, (project.clone(), Instant::now()));
            }
            None => {
                cache.remove(&id);
            }
        }
        Ok(found)
    }

    /// Forgets a project's cached settings (after they were changed here).
    pub fn forget(&self, project: ProjectId) {
        self.lock().remove(&project);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, (ErrorSettings, Instant)>> {
        self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }
}
