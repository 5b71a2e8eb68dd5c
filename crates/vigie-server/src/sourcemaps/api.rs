//! The part of Sentry's web API that `sentry-cli sourcemaps upload` and the bundler plugins
//! call, answered with the JSON shapes they parse; and the bundles as Vigie's own JSON.
//!
//! ```text
//!   GET  /api/0/                                              who the token is (sentry-cli info)
//!   GET  /api/0/organizations/{org}/chunk-upload/             how to upload: chunk size, SHA-1,
//!                                                             gzip, artifact bundles
//!   POST /api/0/organizations/{org}/artifactbundle/assemble/  {checksum, chunks, projects,
//!        version, dist} ─▶ not_found + missingChunks, until every chunk is held; then the
//!        chunks in order ─ SHA-1 checked ─ bundle read (limits) ─ stored per project ─▶ ok
//!   POST /api/0/organizations/{org}/chunk-upload/             multipart: a part per chunk, named
//!        by its SHA-1, gzip'd or not ─ inflated (≤ chunk size) ─ SHA-1 checked ─ kept
//!
//!   older sentry-cli (release files, before artifact bundles):
//!   POST /api/0/organizations/{org}/releases/{version}/assemble/  the same state machine, a
//!        release bundle for the projects that declared the release
//!   GET, POST /api/0/projects/{org}/{project}/releases/{version}/files/  list; one file per
//!        multipart request ─ typed by name, headers, content ─ a bundle of one file
//! ```
//!
//! The organization is any slug (Vigie has none); projects are named by Vigie's name or id.
//! The token is a Vigie API token with admin scope (`SENTRY_AUTH_TOKEN`). Errors are
//! `{"detail": "…"}`, which sentry-cli prints; an assembly that fails answers
//! `{"state": "error", "detail": "…"}`, which it prints as "Failed to process uploaded files".

use super::Artifacts;
use crate::auth::job_access::projects_named;
use crate::auth::{ApiCaller, SentryCaller};
use crate::http::sentry_api::SentryApiError;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Read;
use vigie_core::{Project, Timestamp};
use vigie_protocol::sentry::artifact_bundle;
use vigie_store::artifacts::{NewArtifactFile, NewBundle, ReleaseFile};

/// One chunk, inflated.
pub const CHUNK_BYTES: usize = 8 << 20;
/// Chunks one upload request may carry.
pub const CHUNKS_PER_REQUEST: usize = 64;
/// One upload request.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;
/// One bundle, as uploaded (what its chunks add up to).
pub const MAX_BUNDLE_BYTES: usize = 256 << 20;

/// `GET /api/0/`: what `sentry-cli info` prints.
pub async fn auth_info(SentryCaller(ApiCaller(who)): SentryCaller) -> Json<Value> {
    let (user, scopes) = match who {
        crate::auth::Caller::Token(token) => (
            Value::Null,
            if token.scope.allows(vigie_core::Access::Admin) {
                vec![
                    "org:read",
                    "project:read",
                    "project:releases",
                    "project:write",
                ]
            } else {
                vec!["org:read", "project:read"]
            },
        ),
        crate::auth::Caller::User(user) => (
            json!({"id": user.id.to_string(), "email": user.username, "username": user.username}),
            vec![
                "org:read",
                "project:read",
                "project:releases",
                "project:write",
            ],
        ),
    };
    Json(json!({ "user": user, "auth": { "scopes": scopes } }))
}

/// `GET /api/0/organizations/{org}/chunk-upload/`.
pub async fn chunk_options(_who: SentryCaller, Path(org): Path<String>) -> Json<Value> {
    Json(json!({
        // Relative: sentry-cli puts it after SENTRY_URL and sends the token with it.
        "url": format!("/api/0/organizations/{}/chunk-upload/", encode(&org)),
        "chunkSize": CHUNK_BYTES,
        "chunksPerRequest": CHUNKS_PER_REQUEST,
        "maxRequestSize": MAX_REQUEST_BYTES,
        "maxFileSize": MAX_BUNDLE_BYTES,
        "maxWait": 60,
        "concurrency": 4,
        "hashAlgorithm": "sha1",
        "compression": ["gzip"],
        // What sentry-cli 2.x reads: `release_files` turns chunked uploads on for source maps,
        // the two others choose artifact bundles within them (3.x always uses bundles).
        "accept": ["release_files", "artifact_bundles", "artifact_bundles_v2"],
    }))
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn is_sha1(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `POST /api/0/organizations/{org}/chunk-upload/`: chunks, each checked against its name.
#[tracing::instrument(name = "chunk_upload", skip_all)]
pub async fn upload_chunks(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path(_org): Path<String>,
    mut form: Multipart,
) -> Result<Response, SentryApiError> {
    let mut chunks = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(format!("the upload is not readable multipart: {e}")))?
    {
        if chunks.len() == CHUNKS_PER_REQUEST {
            return Err(AppError::BadRequest(format!(
                "more than {CHUNKS_PER_REQUEST} chunks in one request"
            ))
            .into());
        }
        let gzip = match field.name() {
            Some("file_gzip") => true,
            Some("file") => false,
            other => {
                return Err(AppError::BadRequest(format!(
                    "unexpected part {other:?}: chunks are sent as \"file\" or \"file_gzip\""
                ))
                .into())
            }
        };
        let checksum = field
            .file_name()
            .map(str::to_ascii_lowercase)
            .filter(|name| is_sha1(name))
            .ok_or_else(|| AppError::BadRequest("a chunk must be named by its SHA-1".into()))?;
        let sent = field
            .bytes()
            .await
            .map_err(|e| AppError::BadRequest(format!("chunk {checksum}: {e}")))?;
        let data = if gzip {
            inflate_chunk(&sent)
                .map_err(|why| AppError::BadRequest(format!("chunk {checksum}: {why}")))?
        } else {
            sent.to_vec()
        };
        if data.len() > CHUNK_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "chunk {checksum} is larger than {CHUNK_BYTES} bytes"
            ))
            .into());
        }
        let actual = sha1_smol::Sha1::from(&data).digest().to_string();
        if actual != checksum {
            return Err(AppError::BadRequest(format!(
                "chunk {checksum}: its content's SHA-1 is {actual}"
            ))
            .into());
        }
        chunks.push((checksum, data));
    }
    state.store.put_chunks(chunks, Timestamp::now()).await?;
    Ok(StatusCode::OK.into_response())
}

/// A gzip'd chunk, inflated to at most one byte past [`CHUNK_BYTES`] (a bomb stops there).
fn inflate_chunk(sent: &[u8]) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(sent)
        .take(CHUNK_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("not gzip: {e}"))?;
    Ok(data)
}

#[derive(Debug, Deserialize)]
pub struct AssembleRequest {
    checksum: String,
    #[serde(default)]
    chunks: Vec<String>,
    #[serde(default)]
    projects: Vec<String>,
    version: Option<String>,
    dist: Option<String>,
}

fn assembled(state: &str, missing: Vec<String>, detail: Option<String>) -> Json<Value> {
    Json(json!({ "state": state, "missingChunks": missing, "detail": detail }))
}

/// `POST /api/0/organizations/{org}/artifactbundle/assemble/`.
#[tracing::instrument(name = "artifact_assemble", skip_all, fields(checksum = %body.checksum))]
pub async fn assemble(
    State(state): State<AppState>,
    State(artifacts): State<Artifacts>,
    _who: SentryCaller,
    Path(_org): Path<String>,
    Json(body): Json<AssembleRequest>,
) -> Result<Json<Value>, SentryApiError> {
    let assembly = Assembly::checked(&body)?;
    let projects = match projects_named(&state, &body.projects).await? {
        Ok(projects) => projects,
        Err(why) => return Ok(assembled("error", Vec::new(), Some(why))),
    };
    assemble_into(&state, &artifacts, assembly, projects).await
}

/// `POST /api/0/organizations/{org}/releases/{version}/assemble/`: the release bundle of
/// older sentry-cli (`releases files … upload-sourcemaps` with chunks), for the projects
/// named, else those that declared the release.
#[tracing::instrument(name = "release_assemble", skip_all, fields(%version))]
pub async fn assemble_release(
    State(state): State<AppState>,
    State(artifacts): State<Artifacts>,
    _who: SentryCaller,
    Path((_org, version)): Path<(String, String)>,
    Json(body): Json<AssembleRequest>,
) -> Result<Json<Value>, SentryApiError> {
    let mut assembly = Assembly::checked(&body)?;
    let projects = if body.projects.is_empty() {
        crate::releases::api::declaring(&state, &version, &[])
            .await?
            .into_iter()
            .map(|(project, _)| project)
            .collect()
    } else {
        match projects_named(&state, &body.projects).await? {
            Ok(projects) => projects,
            Err(why) => return Ok(assembled("error", Vec::new(), Some(why))),
        }
    };
    assembly.version = Some(version);
    assemble_into(&state, &artifacts, assembly, projects).await
}

/// An assembly request, its checksums checked and lowercased.
struct Assembly {
    checksum: String,
    chunks: Vec<String>,
    version: Option<String>,
    dist: Option<String>,
}

impl Assembly {
    fn checked(body: &AssembleRequest) -> Result<Assembly, AppError> {
        let checksum = body.checksum.to_ascii_lowercase();
        let chunks: Vec<String> = body.chunks.iter().map(|c| c.to_ascii_lowercase()).collect();
        if !is_sha1(&checksum) || !chunks.iter().all(|c| is_sha1(c)) {
            return Err(AppError::Invalid {
                field: "checksum".into(),
                message: "the checksum and every chunk are 40 hexadecimal digits (SHA-1)".into(),
            });
        }
        Ok(Assembly {
            checksum,
            chunks,
            version: body.version.clone().filter(|v| !v.is_empty()),
            dist: body.dist.clone().filter(|d| !d.is_empty()),
        })
    }
}

/// The assembly state machine: `not_found` with the chunks still missing, then the bundle
/// read from its chunks and stored in each project (`ok`), or `error` with why.
async fn assemble_into(
    state: &AppState,
    artifacts: &Artifacts,
    body: Assembly,
    projects: Vec<Project>,
) -> Result<Json<Value>, SentryApiError> {
    let Assembly {
        checksum,
        chunks,
        version,
        dist,
    } = body;
    if chunks.len() * CHUNK_BYTES > MAX_BUNDLE_BYTES + CHUNK_BYTES {
        return Ok(assembled(
            "error",
            Vec::new(),
            Some(format!("a bundle is at most {MAX_BUNDLE_BYTES} bytes")),
        ));
    }
    let mut all_stored = true;
    for project in &projects {
        all_stored &= state.store.bundle_stored(project.id, &checksum).await?;
    }
    if all_stored {
        state.metrics.artifact_bundle("already_stored");
        return Ok(assembled("ok", Vec::new(), None));
    }
    let missing = state.store.missing_chunks(chunks.clone()).await?;
    if !missing.is_empty() {
        return Ok(assembled("not_found", missing, None));
    }
    let parts = match state.store.read_chunks(chunks.clone()).await {
        Ok(parts) => parts,
        // Taken by a concurrent assembly of the same bundle: the next poll says ok.
        Err(vigie_store::StoreError::NotFound(_)) => {
            return Ok(assembled("assembling", Vec::new(), None))
        }
        Err(err) => return Err(err.into()),
    };
    let read = tokio::task::spawn_blocking(move || {
        let bytes = parts.concat();
        let actual = sha1_smol::Sha1::from(&bytes).digest().to_string();
        if actual != checksum {
            return Err(format!(
                "the chunks make a file whose SHA-1 is {actual}, not {checksum}"
            ));
        }
        artifact_bundle::read(&bytes, &artifact_bundle::Limits::default())
            .map(|bundle| (checksum, bundle))
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| AppError::Internal(format!("reading an artifact bundle: {e}")))?;
    let (checksum, bundle) = match read {
        Ok(read) => read,
        Err(why) => {
            tracing::warn!(%why, "an artifact bundle was refused");
            state.metrics.artifact_bundle("refused");
            return Ok(assembled("error", Vec::new(), Some(why)));
        }
    };
    let stored = store_bundle(
        state,
        artifacts,
        &projects,
        ToStore {
            checksum,
            chunks,
            release: version.or(bundle.release),
            dist: dist.or(bundle.dist),
            files: bundle.files,
        },
    )
    .await?;
    Ok(match stored {
        Stored::Saved(_) => assembled("ok", Vec::new(), None),
        Stored::Refused(why) => assembled("error", Vec::new(), Some(why)),
    })
}

/// A bundle read, to be stored in each of its projects.
struct ToStore {
    checksum: String,
    /// The chunks it was made of (dropped once it is stored).
    chunks: Vec<String>,
    release: Option<String>,
    dist: Option<String>,
    files: Vec<artifact_bundle::BundleFile>,
}

enum Stored {
    /// The id of the last project's copy.
    Saved(i64),
    /// Over the project's cap: why.
    Refused(String),
}

/// Stores a bundle in every project (counted in `/metrics`); the projects' oldest bundles go
/// when one would pass its cap.
async fn store_bundle(
    state: &AppState,
    artifacts: &Artifacts,
    projects: &[Project],
    bundle: ToStore,
) -> Result<Stored, SentryApiError> {
    let files: Vec<NewArtifactFile> = bundle
        .files
        .into_iter()
        .map(|f| NewArtifactFile {
            kind: f.kind.as_str().to_string(),
            url: f.url,
            debug_id: f.debug_id,
            sourcemap: f.sourcemap,
            data: f.data,
        })
        .collect();
    let mut last = 0;
    for (i, project) in projects.iter().enumerate() {
        let new = NewBundle {
            project: project.id,
            checksum: bundle.checksum.clone(),
            release: bundle.release.clone(),
            dist: bundle.dist.clone(),
            files: files.clone(),
            // The chunks go with the last project's copy.
            chunks: if i + 1 == projects.len() {
                bundle.chunks.clone()
            } else {
                Vec::new()
            },
        };
        match state
            .store
            .save_bundle(new, artifacts.max_project_bytes, Timestamp::now())
            .await
        {
            Ok(saved) => {
                if saved.evicted > 0 {
                    tracing::info!(
                        project = %project.name,
                        evicted = saved.evicted,
                        "older artifact bundles dropped to stay within sourcemaps.max_project_mib"
                    );
                }
                artifacts.maps.bundle_stored(project.id);
                last = saved.id;
            }
            Err(vigie_store::StoreError::Invalid { message, .. }) => {
                state.metrics.artifact_bundle("refused");
                return Ok(Stored::Refused(message));
            }
            Err(err) => return Err(err.into()),
        }
    }
    state.metrics.artifact_bundle("stored");
    tracing::info!(files = files.len(), release = ?bundle.release, "artifact bundle stored");
    Ok(Stored::Saved(last))
}

/// One file of a release in the JSON sentry-cli reads (`Artifact`).
fn release_file_info(file: &ReleaseFile) -> Value {
    let mut headers = serde_json::Map::new();
    if let Some(map) = &file.sourcemap {
        headers.insert("Sourcemap".into(), json!(map));
    }
    json!({
        "id": file.id.to_string(),
        "name": file.name,
        "dist": file.dist,
        "headers": headers,
        "size": file.size,
        "sha1": file.sha1,
        "dateCreated": file.created_at.to_rfc3339(),
    })
}

/// Most files `GET …/files/` lists.
const LISTED_FILES: u32 = 10_000;

/// `GET /api/0/projects/{org}/{project}/releases/{version}/files/` (`releases files list`):
/// 404 when the project neither declared the release nor holds files of it.
pub async fn release_files(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, project, version)): Path<(String, String, String)>,
) -> Result<Json<Vec<Value>>, SentryApiError> {
    let project = one_project(&state, project).await?;
    let files = state
        .store
        .release_files(project.id, version.clone(), LISTED_FILES)
        .await?;
    if files.is_empty() && state.store.release(project.id, &version).await?.is_none() {
        return Err(AppError::NotFound("Release not found".into()).into());
    }
    Ok(Json(files.iter().map(release_file_info).collect()))
}

async fn one_project(state: &AppState, name: String) -> Result<Project, SentryApiError> {
    let mut found = projects_named(state, &[name])
        .await?
        .map_err(AppError::NotFound)?;
    Ok(found.remove(0))
}

/// `POST /api/0/projects/{org}/{project}/releases/{version}/files/`: one file, as older
/// sentry-cli uploads them without chunks (multipart: `file`, `name`, `dist`, `header`s).
/// Stored as a bundle of one file; the same name again in the release (and dist) is 409,
/// which sentry-cli reports as already uploaded.
#[tracing::instrument(name = "release_file_upload", skip_all, fields(%version))]
pub async fn upload_release_file(
    State(state): State<AppState>,
    State(artifacts): State<Artifacts>,
    _who: SentryCaller,
    Path((_org, project, version)): Path<(String, String, String)>,
    mut form: Multipart,
) -> Result<Response, SentryApiError> {
    let project = one_project(&state, project).await?;
    let max_bytes = artifact_bundle::Limits::default().max_file_bytes;
    let too_large =
        || AppError::PayloadTooLarge(format!("a release file is at most {max_bytes} bytes"));
    let unreadable = |e: axum::extract::multipart::MultipartError| -> SentryApiError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            AppError::BadRequest(format!("the upload is not readable multipart: {e}"))
        }
        .into()
    };
    let (mut file, mut name, mut dist, mut headers) = (None, None, None, Vec::new());
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or("") {
            "file" => {
                let file_name = field.file_name().map(str::to_string);
                file = Some((file_name, field.bytes().await.map_err(unreadable)?));
            }
            "name" => name = Some(field.text().await.map_err(unreadable)?),
            "dist" => dist = Some(field.text().await.map_err(unreadable)?),
            "header" => {
                let text = field.text().await.map_err(unreadable)?;
                let (key, value) = text.split_once(':').ok_or_else(|| {
                    AppError::BadRequest(format!("header {text:?} is not \"Name: value\""))
                })?;
                headers.push((key.trim().to_string(), value.trim().to_string()));
            }
            other => {
                return Err(AppError::BadRequest(format!(
                "unexpected part {other:?}: a release file is sent as file, name, dist and header"
            ))
                .into())
            }
        }
    }
    let Some((file_name, data)) = file else {
        return Err(AppError::BadRequest("no file part in the upload".into()).into());
    };
    if data.len() > max_bytes {
        return Err(too_large().into());
    }
    let name = name
        .or(file_name)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| AppError::BadRequest("the file has no name".into()))?;
    let dist = dist.filter(|d| !d.is_empty());
    // Named by release, dist and name: the same file name again is the same "bundle".
    let checksum = sha1_smol::Sha1::from(format!(
        "release-file\u{0}{version}\u{0}{}\u{0}{name}",
        dist.as_deref().unwrap_or("")
    ))
    .digest()
    .to_string();
    if state.store.bundle_stored(project.id, &checksum).await? {
        return Err(AppError::Conflict(
            "A file matching this name already exists for the given release".into(),
        )
        .into());
    }
    let size = data.len();
    let sha1 = sha1_smol::Sha1::from(&data).digest().to_string();
    let file = artifact_bundle::release_file(&name, &headers, data.to_vec());
    let sourcemap = file.sourcemap.clone();
    let stored = store_bundle(
        &state,
        &artifacts,
        std::slice::from_ref(&project),
        ToStore {
            checksum,
            chunks: Vec::new(),
            release: Some(version),
            dist: dist.clone(),
            files: vec![file],
        },
    )
    .await?;
    let id = match stored {
        Stored::Saved(id) => id,
        Stored::Refused(why) => return Err(AppError::PayloadTooLarge(why).into()),
    };
    let info = release_file_info(&ReleaseFile {
        id,
        bundle_id: id,
        name,
        dist,
        kind: String::new(),
        sourcemap,
        size: size as i64,
        sha1,
        created_at: Timestamp::now(),
    });
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// `GET /api/v1/sourcemaps`: the project's bundles, newest first.
pub async fn list(
    State(state): State<AppState>,
    reader: crate::auth::job_access::ProjectReader,
) -> Result<Json<Value>, ApiError> {
    let bundles = state.store.artifact_bundles(reader.project.id).await?;
    Ok(Json(json!({ "bundles": bundles })))
}

/// `DELETE /api/v1/sourcemaps/{id}` (admin).
pub async fn delete(
    State(state): State<AppState>,
    _admin: ApiCaller,
    reader: crate::auth::job_access::ProjectReader,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if state
        .store
        .delete_artifact_bundle(reader.project.id, id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound(format!("no source map bundle {id} in this project")).into())
    }
}
