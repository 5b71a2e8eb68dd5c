//! What a feature serves, by the guard each part needs.

use crate::state::AppState;
use axum::Router;

/// What a feature serves, grouped by the guard each part needs; `crate::app::router` adds the
/// guards.
#[derive(Default)]
pub struct Routes {
    /// Pages and their forms: behind the session and CSRF guard, form-sized bodies.
    pub pages: Router<AppState>,
    /// The JSON API: bodies up to 1 MiB (`crate::app`).
    pub api: Router<AppState>,
    /// Called by applications with a project key: they read their bodies themselves, within
    /// the ingest limits (`http::ingest_body`).
    pub ingest: Router<AppState>,
}

impl Routes {
    pub fn merge(self, other: Routes) -> Routes {
        Routes {
            pages: self.pages.merge(other.pages),
            api: self.api.merge(other.api),
            ingest: self.ingest.merge(other.ingest),
        }
    }
}
