//! Source maps: what `sentry-cli` and the bundler plugins upload, and how a minified
//! JavaScript stack trace becomes readable with it.
//!
//! ```text
//!   build ─ sentry-cli sourcemaps inject (a debug id in each file and its map)
//!         ─ sentry-cli sourcemaps upload ─▶ api: chunks, then assemble ─▶ a bundle per
//!           project (vigie_store::artifacts), its files by debug id and by URL
//!   browser ─ @sentry/browser event: frames (URL, line, column) + debug_meta.images
//!           ─▶ sentry ingest ─ maps::Resolver::for_body (the maps it needs, parsed, cached)
//!           ─▶ sentry::process ─ symbolicate (original file, line, function, context)
//!              ─ then grouped, on the resolved frames, and stored with the minified frames
//!                beside them (raw_stacktrace)
//! ```
//!
//! - [`api`]: the Sentry API subset the uploaders call (`/api/0/…`), and the bundles as JSON.
//! - [`maps`]: the maps an event needs, from a cache of parsed maps.
//! - [`ui`]: the Settings tab listing a project's bundles.
//!
//! Limits: a chunk is 8 MiB, a request 64 chunks and 32 MiB, a bundle 256 MiB (10,000 files,
//! 64 MiB each, counted while inflating), a project `sourcemaps.max_project_mib` (its oldest
//! bundles go first); bundles are kept `sourcemaps.retention`, chunks an hour.

pub mod api;
pub mod maps;
pub mod ui;

use crate::state::AppState;
use std::time::Duration;
use vigie_core::Timestamp;

/// What the source map routes share beside the `AppState`.
#[derive(Clone)]
pub struct Artifacts {
    /// Parsed maps, shared with Sentry ingest.
    pub maps: maps::Resolver,
    /// `sourcemaps.max_project_mib`, in bytes.
    pub max_project_bytes: u64,
}

impl Artifacts {
    pub fn new(config: &crate::config::SourcemapsConfig) -> Artifacts {
        Artifacts {
            maps: maps::Resolver::default(),
            max_project_bytes: config.max_project_mib.saturating_mul(1 << 20),
        }
    }
}

/// How long uploaded chunks wait for their bundle's assembly.
const CHUNK_LIFETIME: Duration = Duration::from_secs(3600);

/// The Sentry API subset of uploaders, and the bundles' JSON API.
pub fn routes<S>() -> crate::http::Routes<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: axum::extract::FromRef<S>,
    Artifacts: axum::extract::FromRef<S>,
{
    use crate::http::Table;
    use axum::extract::DefaultBodyLimit;
    use axum::routing::{delete, get, post};
    crate::http::Routes {
        pages: Table::new()
            .route("/settings/sourcemaps", get(ui::settings))
            .route("/settings/sourcemaps/{id}/delete", post(ui::delete)),
        api: Table::new()
            .route("/api/0/", get(api::auth_info))
            .route(
                "/api/0/organizations/{org}/artifactbundle/assemble/",
                post(api::assemble),
            )
            .route(
                "/api/0/organizations/{org}/releases/{version}/assemble/",
                post(api::assemble_release),
            )
            .route("/api/v1/sourcemaps", get(api::list))
            .route("/api/v1/sourcemaps/{id}", delete(api::delete)),
        // Chunks are larger than the API's JSON bodies: their route sets its own limit.
        ingest: Table::new()
            .route(
                "/api/0/organizations/{org}/chunk-upload/",
                get(api::chunk_options)
                    .post(api::upload_chunks)
                    .layer(DefaultBodyLimit::max(api::MAX_REQUEST_BYTES + (1 << 20))),
            )
            .route(
                "/api/0/projects/{org}/{project}/releases/{version}/files/",
                get(api::release_files)
                    .post(api::upload_release_file)
                    .layer(DefaultBodyLimit::max(
                        vigie_protocol::sentry::artifact_bundle::Limits::default().max_file_bytes
                            + (1 << 20),
                    )),
            ),
    }
}

/// Drops chunks no assembly took within an hour, and bundles older than
/// `sourcemaps.retention` (run hourly by `crate::schedule`).
pub async fn retention(state: &AppState) -> Result<String, vigie_store::StoreError> {
    let now = Timestamp::now().millis();
    let ago = |d: Duration| Timestamp(now - d.as_millis().min(i64::MAX as u128) as i64);
    let bundles_before = match state.config.sourcemap_retention().ok().flatten() {
        Some(keep) => ago(keep),
        None => Timestamp(i64::MIN),
    };
    let (chunks, bundles) = state
        .store
        .prune_artifacts(ago(CHUNK_LIFETIME), bundles_before)
        .await?;
    if chunks + bundles > 0 {
        tracing::info!(chunks, bundles, "old source map chunks and bundles dropped");
    }
    Ok(format!(
        "chunks dropped: {chunks}, bundles dropped: {bundles}"
    ))
}
