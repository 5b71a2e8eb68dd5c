//! Releases through the part of Sentry's web API that `sentry-cli releases` and the bundler
//! plugins call, and as Vigie's own JSON.
//!
//! ```text
//!   POST /api/0/organizations/{org}/releases/                    new: {version, projects}
//!   GET  /api/0/organizations/{org}/releases/                    list (every project)
//!   GET  /api/0/projects/{org}/{project}/releases/               list (one project)
//!   POST /api/0/projects/{org}/{project}/releases/               new (sentry-cli 2.x)
//!   GET, PUT /api/0/projects/{org}/{project}/releases/{version}/ info, finalize (2.x)
//!   GET  /api/0/organizations/{org}/releases/{version}/          info (404: "Release not found")
//!   PUT  /api/0/organizations/{org}/releases/{version}/          finalize: {dateReleased}, url
//!   POST /api/0/organizations/{org}/releases/{version}/deploys/  deploys new: {environment, …}
//!   GET  /api/0/organizations/{org}/releases/{version}/deploys/  deploys list
//!   GET  /api/v1/releases                                        the Releases page as JSON
//! ```
//!
//! A Vigie release belongs to a project: the org-level paths act on the projects named in the
//! body, else on every project that declared the version. Commits (`set-commits`) are not
//! kept: asked to, the API says so (400) rather than pretend.

use super::{overview, ReleaseRow};
use crate::auth::job_access::{projects_named, ProjectReader};
use crate::auth::SentryCaller;
use crate::http::sentry_api::SentryApiError;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use vigie_core::{Project, Timestamp};
use vigie_store::releases::{Deploy, Release};

/// A release as sentry-cli reads it (`ReleaseInfo`).
fn release_info(
    release: &Release,
    projects: &[&Project],
    new_groups: i64,
    last_event: Option<Timestamp>,
) -> Value {
    json!({
        "version": release.version,
        "url": release.url,
        "dateCreated": release.created_at.to_rfc3339(),
        "dateReleased": release.released_at.map(Timestamp::to_rfc3339),
        "lastEvent": last_event.map(Timestamp::to_rfc3339),
        "newGroups": new_groups,
        "projects": projects.iter().map(|p| json!({"slug": p.name, "name": p.name})).collect::<Vec<_>>(),
        "lastCommit": null,
    })
}

fn deploy_info(deploy: &Deploy) -> Value {
    json!({
        "environment": deploy.environment,
        "name": deploy.name,
        "url": deploy.url,
        "dateStarted": deploy.started_at.map(Timestamp::to_rfc3339),
        "dateFinished": deploy.finished_at.to_rfc3339(),
    })
}

fn time(field: &str, text: Option<&str>) -> Result<Option<Timestamp>, AppError> {
    text.map(|t| {
        Timestamp::parse_rfc3339(t).ok_or_else(|| AppError::Invalid {
            field: field.into(),
            message: format!("{t:?} is not an RFC 3339 time"),
        })
    })
    .transpose()
}

/// `{"detail": "Release not found"}`, as sentry-cli expects it.
fn not_found() -> SentryApiError {
    AppError::NotFound("Release not found".into()).into()
}

#[derive(Deserialize)]
pub struct NewRelease {
    version: String,
    #[serde(default)]
    projects: Vec<String>,
    url: Option<String>,
    #[serde(rename = "dateReleased")]
    date_released: Option<String>,
}

/// `POST /api/0/organizations/{org}/releases/` (`sentry-cli releases new`).
#[tracing::instrument(name = "release_new", skip_all, fields(version = %body.version))]
pub async fn create(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path(_org): Path<String>,
    Json(body): Json<NewRelease>,
) -> Result<Response, SentryApiError> {
    create_release(&state, body).await
}

/// `POST /api/0/projects/{org}/{project}/releases/` (sentry-cli 2.x, one project).
pub async fn create_in_project(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, project)): Path<(String, String)>,
    Json(mut body): Json<NewRelease>,
) -> Result<Response, SentryApiError> {
    body.projects = vec![project];
    create_release(&state, body).await
}

async fn create_release(state: &AppState, body: NewRelease) -> Result<Response, SentryApiError> {
    let version = checked_version(&body.version)?;
    let projects = projects_named(state, &body.projects)
        .await?
        .map_err(AppError::BadRequest)?;
    let released = time("dateReleased", body.date_released.as_deref())?;
    let refs: Vec<&Project> = projects.iter().collect();
    let release = save_in(state, &refs, version, body.url, released).await?;
    Ok((
        StatusCode::CREATED,
        Json(release_info(&release, &refs, 0, None)),
    )
        .into_response())
}

/// Declares (or updates) `version` in each of `projects` (at least one); answers the last.
async fn save_in(
    state: &AppState,
    projects: &[&Project],
    version: &str,
    url: Option<String>,
    released: Option<Timestamp>,
) -> Result<Release, AppError> {
    let mut saved = None;
    for project in projects {
        let release = state
            .store
            .save_release(project.id, version, url.clone(), released, Timestamp::now())
            .await?;
        saved = Some(release);
    }
    saved.ok_or_else(|| AppError::NotFound("Release not found".into()))
}

/// A version as Sentry accepts one: not empty, at most 200 characters, no slash-only or
/// dot-only names, no line breaks.
fn checked_version(version: &str) -> Result<&str, AppError> {
    let bad = version.trim().is_empty()
        || version.len() > 200
        || version == "."
        || version == ".."
        || version.contains(['\n', '\r', '\t', '/', '\\']);
    if bad {
        return Err(AppError::Invalid {
            field: "version".into(),
            message: format!("{version:?} is not a release version (1 to 200 characters, no slashes or line breaks)"),
        });
    }
    Ok(version)
}

/// The declared releases of `projects`, one entry per version (its projects listed).
async fn infos(state: &AppState, projects: &[Project]) -> Result<Vec<Value>, AppError> {
    let mut by_version: Vec<(Release, Vec<&Project>, i64, Option<Timestamp>)> = Vec::new();
    for project in projects {
        let figures = state.store.release_figures(project.id).await?;
        for release in state.store.releases(project.id).await? {
            let f = figures.iter().find(|f| f.version == release.version);
            let (new, last) = f.map_or((0, None), |f| (f.new_issues, f.last_event));
            match by_version
                .iter_mut()
                .find(|(r, ..)| r.version == release.version)
            {
                Some(entry) => {
                    entry.1.push(project);
                    entry.2 += new;
                    entry.3 = entry.3.max(last);
                }
                None => by_version.push((release, vec![project], new, last)),
            }
        }
    }
    by_version.sort_by_key(|entry| std::cmp::Reverse(entry.0.created_at));
    Ok(by_version
        .iter()
        .map(|(r, p, n, l)| release_info(r, p, *n, *l))
        .collect())
}

/// `GET /api/0/organizations/{org}/releases/` (`sentry-cli releases list`).
pub async fn list_all(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path(_org): Path<String>,
) -> Result<Json<Vec<Value>>, SentryApiError> {
    let projects = state.store.list_projects().await?;
    Ok(Json(infos(&state, &projects).await?))
}

/// `GET /api/0/projects/{org}/{project}/releases/` (`sentry-cli releases list -p …`).
pub async fn list_project(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, project)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, SentryApiError> {
    let projects = projects_named(&state, &[project])
        .await?
        .map_err(AppError::NotFound)?;
    Ok(Json(infos(&state, &projects).await?))
}

/// The projects an org-level call about `version` acts on: those named, else those that
/// declared it; `None` when no such project declared it.
pub(crate) async fn declaring(
    state: &AppState,
    version: &str,
    named: &[String],
) -> Result<Vec<(Project, Release)>, SentryApiError> {
    let projects = if named.is_empty() {
        state.store.list_projects().await?
    } else {
        projects_named(state, named)
            .await?
            .map_err(AppError::NotFound)?
    };
    let mut found = Vec::new();
    for project in projects {
        if let Some(release) = state.store.release(project.id, version).await? {
            found.push((project, release));
        }
    }
    if found.is_empty() {
        return Err(not_found());
    }
    Ok(found)
}

/// `GET /api/0/organizations/{org}/releases/{version}/` (`sentry-cli releases info`).
pub async fn show(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, version)): Path<(String, String)>,
) -> Result<Json<Value>, SentryApiError> {
    show_release(&state, &version, &[]).await
}

/// `GET /api/0/projects/{org}/{project}/releases/{version}/` (sentry-cli 2.x).
pub async fn show_in_project(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, project, version)): Path<(String, String, String)>,
) -> Result<Json<Value>, SentryApiError> {
    show_release(&state, &version, &[project]).await
}

async fn show_release(
    state: &AppState,
    version: &str,
    named: &[String],
) -> Result<Json<Value>, SentryApiError> {
    let found = declaring(state, version, named).await?;
    let projects: Vec<&Project> = found.iter().map(|(p, _)| p).collect();
    Ok(Json(release_info(&found[0].1, &projects, 0, None)))
}

#[derive(Deserialize)]
pub struct UpdatedRelease {
    #[serde(default)]
    projects: Vec<String>,
    url: Option<String>,
    #[serde(rename = "dateReleased")]
    date_released: Option<String>,
    refs: Option<Value>,
    commits: Option<Value>,
}

/// `PUT /api/0/organizations/{org}/releases/{version}/` (`sentry-cli releases finalize`).
pub async fn update(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, version)): Path<(String, String)>,
    Json(body): Json<UpdatedRelease>,
) -> Result<Json<Value>, SentryApiError> {
    update_release(&state, &version, body).await
}

/// `PUT /api/0/projects/{org}/{project}/releases/{version}/` (sentry-cli 2.x finalize).
pub async fn update_in_project(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, project, version)): Path<(String, String, String)>,
    Json(mut body): Json<UpdatedRelease>,
) -> Result<Json<Value>, SentryApiError> {
    body.projects = vec![project];
    update_release(&state, &version, body).await
}

async fn update_release(
    state: &AppState,
    version: &str,
    body: UpdatedRelease,
) -> Result<Json<Value>, SentryApiError> {
    if body.refs.is_some() || body.commits.is_some() {
        return Err(AppError::BadRequest(
            "Vigie does not keep a release's commits (set-commits): nothing was changed".into(),
        )
        .into());
    }
    let released = time("dateReleased", body.date_released.as_deref())?;
    let found = declaring(state, version, &body.projects).await?;
    let projects: Vec<&Project> = found.iter().map(|(p, _)| p).collect();
    let release = save_in(state, &projects, version, body.url, released).await?;
    Ok(Json(release_info(&release, &projects, 0, None)))
}

#[derive(Deserialize)]
pub struct NewDeploy {
    environment: String,
    name: Option<String>,
    url: Option<String>,
    #[serde(rename = "dateStarted")]
    date_started: Option<String>,
    #[serde(rename = "dateFinished")]
    date_finished: Option<String>,
    #[serde(default)]
    projects: Option<Vec<String>>,
}

/// `POST /api/0/organizations/{org}/releases/{version}/deploys/` (`sentry-cli deploys new`).
#[tracing::instrument(name = "deploy_new", skip_all, fields(version = %version))]
pub async fn create_deploy(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, version)): Path<(String, String)>,
    Json(body): Json<NewDeploy>,
) -> Result<Response, SentryApiError> {
    if body.environment.trim().is_empty() || body.environment.len() > 64 {
        return Err(AppError::Invalid {
            field: "environment".into(),
            message: "a deploy names its environment (1 to 64 characters)".into(),
        }
        .into());
    }
    let deploy = Deploy {
        environment: body.environment,
        name: body.name.filter(|n| !n.is_empty()),
        url: body.url.filter(|u| !u.is_empty()),
        started_at: time("dateStarted", body.date_started.as_deref())?,
        finished_at: time("dateFinished", body.date_finished.as_deref())?
            .unwrap_or_else(Timestamp::now),
    };
    let found = declaring(&state, &version, &body.projects.unwrap_or_default()).await?;
    for (project, _) in &found {
        state
            .store
            .add_deploy(project.id, &version, deploy.clone())
            .await?;
    }
    Ok((StatusCode::CREATED, Json(deploy_info(&deploy))).into_response())
}

/// `GET /api/0/organizations/{org}/releases/{version}/deploys/` (`sentry-cli deploys list`).
pub async fn list_deploys(
    State(state): State<AppState>,
    _who: SentryCaller,
    Path((_org, version)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, SentryApiError> {
    let found = declaring(&state, &version, &[]).await?;
    let mut deploys: Vec<&Deploy> = found.iter().flat_map(|(_, r)| &r.deploys).collect();
    deploys.sort_by_key(|d| std::cmp::Reverse(d.finished_at));
    deploys.dedup_by(|a, b| a == b);
    Ok(Json(deploys.into_iter().map(deploy_info).collect()))
}

/// `GET /api/v1/releases`: the project's releases as the Releases page shows them.
pub async fn releases(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<Vec<ReleaseRow>>, ApiError> {
    Ok(Json(overview(&state, reader.project.id).await?))
}
