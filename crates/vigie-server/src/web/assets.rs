//! Static assets compiled into the binary and served from `/static/`.
//!
//! Page templates link them as `/static/app.css?v=<version>`, where the version is a hash of
//! every asset's content: browsers cache an asset for a year and fetch it again exactly when
//! a new Vigie changes it.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The stylesheet, also inlined in exported pages (an incident report saved as HTML).
pub const APP_CSS: &str = include_str!("../../assets/app.css");

/// (file name, content type, content)
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", APP_CSS),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/live.js"),
    ),
    (
        "jobs.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/jobs.js"),
    ),
    (
        "refresh.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/refresh.js"),
    ),
    (
        "logs.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/logs.js"),
    ),
    (
        "progress.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/progress.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../assets/favicon.svg"),
    ),
];

/// A short hash of all assets, for cache-busting URLs.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        for (name, _, content) in ASSETS {
            hasher.update(name.as_bytes());
            hasher.update(content.as_bytes());
        }
        hex::encode(&hasher.finalize()[..6])
    })
}

pub async fn serve(Path(name): Path<String>) -> Response {
    let Some((_, content_type, content)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        *content,
    )
        .into_response()
}

/// The assets' route: it needs no session (the login page loads them too).
pub fn routes() -> crate::http::Table<crate::state::AppState> {
    crate::http::Table::new().route("/static/{name}", axum::routing::get(serve))
}
