//! What a feature serves, by the guard each part needs, in route tables that remember their
//! paths.
//!
//! axum does not list a router's routes, yet the server must be able to say what it serves:
//! the check that the OpenAPI document matches the router reads [`Table::paths`] and asks the
//! router itself which methods each path takes (the `Allow` header of a 405).

use axum::routing::MethodRouter;
use axum::Router;

/// A router that remembers the paths it was given.
pub struct Table<S> {
    router: Router<S>,
    paths: Vec<&'static str>,
}

impl<S: Clone + Send + Sync + 'static> Default for Table<S> {
    fn default() -> Self {
        Table {
            router: Router::new(),
            paths: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Table<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// As `Router::route`.
    pub fn route(mut self, path: &'static str, methods: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, methods);
        self.paths.push(path);
        self
    }

    pub fn merge(mut self, other: Table<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    /// This table with its state given (see `Router::with_state`).
    pub fn with_state<S2>(self, state: S) -> Table<S2> {
        Table {
            router: self.router.with_state(state),
            paths: self.paths,
        }
    }

    /// The paths routed, in the order they were given.
    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

/// What a feature serves, grouped by the guard each part needs; `crate::app::router` adds the
/// guards. `S` is the state the handlers take: the shared `AppState`, or for features with
/// a pipeline of their own, any state that hands out both (`crate::app::Server`).
pub struct Routes<S> {
    /// Pages and their forms: behind the session and CSRF guard, form-sized bodies.
    pub pages: Table<S>,
    /// The JSON API: bodies up to 1 MiB (`crate::app`).
    pub api: Table<S>,
    /// Called by applications with a project key: they read their bodies themselves, within
    /// the ingest limits (`http::ingest_body`).
    pub ingest: Table<S>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            pages: Table::new(),
            api: Table::new(),
            ingest: Table::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// These routes with their state given: routes of features with different states merge
    /// once each has its own.
    pub fn with_state<S2>(self, state: S) -> Routes<S2> {
        Routes {
            pages: self.pages.with_state(state.clone()),
            api: self.api.with_state(state.clone()),
            ingest: self.ingest.with_state(state),
        }
    }

    pub fn merge(self, other: Routes<S>) -> Routes<S> {
        Routes {
            pages: self.pages.merge(other.pages),
            api: self.api.merge(other.api),
            ingest: self.ingest.merge(other.ingest),
        }
    }
}
