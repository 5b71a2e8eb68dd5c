//! The whole HTTP application as one axum `Router`.
//!
//! Layers, outermost first: security headers and error shaping, CORS on the Sentry ingest
//! paths, draining bodies a handler left unread (so every sender gets its answer), metrics per
//! route. Then the routes: `/health`, `/metrics`, static assets, the UI
//! (behind the session + CSRF guard) and the JSON API. Anything else is a 404, as JSON under
//! `/api` and as a page elsewhere. Ingest routes (logs, Sentry, jobs, check-ins) read their
//! bodies themselves, after authenticating, through `http::ingest_body`.
//!
//! [`Server`] is what the handlers share: the `AppState` every feature reads, and beside it
//! the ingest pipelines of the features that own one (logs, Sentry). A feature's routes get
//! their state here, so the features never name this module nor each other's state.

use crate::auth::csrf;
use crate::http::ingest_body::IngestBudget;
use crate::http::{security, AppError, Routes, Table};
use crate::logs::files::FileRoutes;
use crate::logs::LogSink;
use crate::sentry::ErrorIngest;
use crate::sourcemaps::Artifacts;
use crate::state::AppState;
use crate::{api, dashboard, health, metrics};
use axum::extract::{DefaultBodyLimit, FromRef, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

/// Largest JSON body the management API accepts (ingest endpoints set their own limits).
const API_BODY_LIMIT: usize = 1 << 20;

/// What the handlers share: the state every feature reads, and the ingest pipelines.
#[derive(Clone)]
pub struct Server {
    pub state: AppState,
    /// Where every log ingest path hands its records.
    pub logs: LogSink,
    /// Sentry ingest: the event sink, quotas, cached projects and settings.
    pub errors: ErrorIngest,
    /// Uploaded source maps: the parsed-map cache Sentry ingest reads, and the upload cap.
    pub artifacts: Artifacts,
}

impl Server {
    /// Starts the ingest pipelines on `state`: the log sink (and the configured rotating files
    /// under `<data>/files/`) and the Sentry event sink.
    pub fn start(state: AppState) -> Result<Server, String> {
        let files = FileRoutes::start(&state.config.data.join("files"), &state.config.logs.files)?;
        let logs = LogSink::start(
            state.store.clone(),
            state.hub.clone(),
            state.metrics.clone(),
            files,
        );
        let artifacts = Artifacts::new(&state.config.sourcemaps);
        let errors = ErrorIngest::start(
            state.store.clone(),
            state.hub.clone(),
            state.metrics.clone(),
            &state.config.errors,
            logs.clone(),
            artifacts.maps.clone(),
        );
        Ok(Server {
            state,
            logs,
            errors,
            artifacts,
        })
    }
}

impl FromRef<Server> for AppState {
    fn from_ref(server: &Server) -> AppState {
        server.state.clone()
    }
}

impl FromRef<Server> for LogSink {
    fn from_ref(server: &Server) -> LogSink {
        server.logs.clone()
    }
}

impl FromRef<Server> for ErrorIngest {
    fn from_ref(server: &Server) -> ErrorIngest {
        server.errors.clone()
    }
}

impl FromRef<Server> for Artifacts {
    fn from_ref(server: &Server) -> Artifacts {
        server.artifacts.clone()
    }
}

impl FromRef<Server> for IngestBudget {
    fn from_ref(server: &Server) -> IngestBudget {
        server.state.ingest.clone()
    }
}

/// Everything the server routes, each feature's routes given their state, grouped by the
/// guard each part needs. The server's own routes (health, metrics, assets, check-in pings)
/// need none and sit with the ingest routes.
fn routes(server: Server) -> Routes<()> {
    let state = server.state.clone();
    let own = Routes {
        pages: dashboard::routes(),
        api: api::routes(),
        ingest: Table::new()
            .route("/health", get(health::health))
            .route("/metrics", get(health::metrics))
            .merge(crate::web::assets::routes())
            .merge(crate::monitors::ping::routes()),
    };
    own.merge(crate::jobs::routes())
        .merge(crate::monitors::routes())
        .merge(crate::celery::routes())
        .merge(crate::alerts::routes())
        .merge(crate::reports::routes())
        .merge(crate::releases::routes())
        .merge(crate::accounts::routes())
        .with_state(state)
        .merge(crate::logs::routes().with_state(server.clone()))
        .merge(crate::traces::routes().with_state(server.clone()))
        .merge(crate::otel_metrics::routes().with_state(server.clone()))
        .merge(crate::sourcemaps::routes().with_state(server.clone()))
        .merge(crate::sentry::routes().with_state(server))
}

/// Every path the server routes (axum cannot list a router's routes; this is the list it was
/// built from). Which methods each takes, the router itself says: the `Allow` header of a 405.
pub fn paths(server: Server) -> Vec<&'static str> {
    let routes = routes(server);
    [routes.pages, routes.api, routes.ingest]
        .iter()
        .flat_map(|table| table.paths().iter().copied())
        .collect()
}

pub fn router(server: Server) -> Router {
    let metrics = server.state.metrics.clone();
    let guard = from_fn_with_state(server.state.clone(), csrf::guard);
    let routes = routes(server);
    let ui = routes
        .pages
        .into_router()
        .layer(guard)
        .layer(DefaultBodyLimit::max(csrf::MAX_FORM_BYTES));
    let api = routes
        .api
        .into_router()
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    Router::new()
        .merge(ui)
        .merge(api)
        .merge(routes.ingest.into_router())
        .fallback(not_found)
        .layer(from_fn_with_state(metrics, metrics::track))
        .layer(from_fn(crate::http::unread_body::drain))
        .layer(from_fn(crate::sentry::ingest::cors))
        .layer(from_fn(security::harden))
}

async fn not_found(req: Request) -> Response {
    AppError::NotFound(format!("nothing at {}", req.uri().path())).respond_for(req.uri().path())
}
