//! The OpenAPI 3.1 document of the JSON API, written by hand (`openapi.json`) and served as is.
//! A test in `tests/api.rs` checks that every API route is described.

use axum::http::header;
use axum::response::IntoResponse;

pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
