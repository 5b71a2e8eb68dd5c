//! The state every handler shares: the store, the configuration, and the live parts.

use crate::auth::limiter::LoginLimiter;
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use axum::http::HeaderMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
}

impl AppState {
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
