//! The whole HTTP application as one axum `Router`.
//!
//! Layers, outermost first: security headers and error shaping, CORS on the Sentry ingest
//! paths, draining bodies a handler left unread (so every sender gets its answer), metrics per
//! route. Then the routes: `/health`, `/metrics`, static assets, the UI
//! (behind the session + CSRF guard) and the JSON API. Anything else is a 404, as JSON under
//! `/api` and as a page elsewhere. Ingest routes (logs, Sentry, jobs, check-ins) read their
//! bodies themselves, after authenticating, through `http::ingest_body`.

use crate::auth::csrf;
use crate::http::{security, AppError};
use crate::state::AppState;
use crate::{api, dashboard, health, metrics};
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

/// Largest JSON body the management API accepts (ingest endpoints set their own limits).
const API_BODY_LIMIT: usize = 1 << 20;

pub fn router(state: AppState) -> Router {
    let features = crate::jobs::routes()
        .merge(crate::logs::routes())
        .merge(crate::monitors::routes())
        .merge(crate::celery::routes())
        .merge(crate::alerts::routes())
        .merge(crate::sentry::routes())
        .merge(crate::reports::routes())
        .merge(crate::accounts::routes());
    let ui = dashboard::routes()
        .merge(features.pages)
        .layer(from_fn_with_state(state.clone(), csrf::guard))
        .layer(DefaultBodyLimit::max(csrf::MAX_FORM_BYTES));
    let api = api::routes()
        .merge(features.api)
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    let ingest = features.ingest;
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .merge(crate::web::assets::routes())
        .merge(ui)
        .merge(api)
        .merge(ingest)
        .merge(crate::monitors::ping::routes())
        .fallback(not_found)
        .layer(from_fn_with_state(state.metrics.clone(), metrics::track))
        .with_state(state)
        .layer(from_fn(crate::http::unread_body::drain))
        .layer(from_fn(crate::sentry::ingest::cors))
        .layer(from_fn(security::harden))
}

async fn not_found(req: Request) -> Response {
    AppError::NotFound(format!("nothing at {}", req.uri().path())).respond_for(req.uri().path())
}
