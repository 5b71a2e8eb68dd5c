//! What a feature serves, by the guard each part needs.

use axum::Router;

/// What a feature serves, grouped by the guard each part needs; `crate::app::router` adds the
/// guards. `S` is the state the handlers take (the server's `AppState`).
pub struct Routes<S> {
    /// Pages and their forms: behind the session and CSRF guard, form-sized bodies.
    pub pages: Router<S>,
    /// The JSON API: bodies up to 1 MiB (`crate::app`).
    pub api: Router<S>,
    /// Called by applications with a project key: they read their bodies themselves, within
    /// the ingest limits (`http::ingest_body`).
    pub ingest: Router<S>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            pages: Router::new(),
            api: Router::new(),
            ingest: Router::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn merge(self, other: Routes<S>) -> Routes<S> {
        Routes {
            pages: self.pages.merge(other.pages),
            api: self.api.merge(other.api),
            ingest: self.ingest.merge(other.ingest),
        }
    }
}
