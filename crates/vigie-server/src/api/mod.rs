//! The OpenAPI document of the JSON API (`/api/v1/openapi.json`), written by hand and kept in
//! step with the router both ways by the tests (every route documented, every documented
//! status answered). The handlers live in each feature's folder.
//!
//! Callers authenticate with `Authorization: Bearer <api token>` (or the UI's session cookie
//! plus `X-CSRF-Token`); reads need read scope, changes need admin scope. Bodies and answers
//! are JSON; errors are `{"error": {"code", "message"}}`.

mod openapi;

use crate::http::Table;
use crate::state::AppState;
use axum::routing::get;

pub fn routes() -> Table<AppState> {
    Table::new().route("/api/v1/openapi.json", get(openapi::document))
}
