//! Who may touch a project's jobs, and which project a jobs request is about.
//!
//! Three kinds of callers use the jobs API:
//!
//! 1. **The job's own process**, with the project key (the same key as in the DSN) as
//!    `Authorization: Bearer <key>`, `X-Sentry-Auth` or `?sentry_key=`. The key *writes* that
//!    project's jobs and only them; it never reads (browser SDKs put it in web pages, so
//!    anyone can have it). A create answers the job's read token for reading it back.
//! 2. **People and scripts**, with an API token or the UI's session (the normal API rule:
//!    reads need read access, changes admin access). They name the project with
//!    `?project=<id>`; without it, the UI's current project, or the only project there is.
//! 3. **A team's own web page** showing a progress bar, with the job's read token as
//!    `?token=`: read-only, for that one job.

use super::ApiCaller;
use crate::http::{cookies, ApiError, AppError};
use crate::state::AppState;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use vigie_core::account::API_TOKEN_PREFIX;
use vigie_core::secret::token_hash;
use vigie_core::{Job, Project};
use vigie_protocol::{find_project_key, query_value, KeySources};

pub struct JobAccess {
    pub project: Project,
    /// Set when the caller holds a job's read token: the only job it may see.
    pub only_job: Option<Job>,
}

impl JobAccess {
    /// Refuses a read-token caller asking about another job.
    pub fn check_job(&self, id: &str) -> Result<(), AppError> {
        match &self.only_job {
            Some(job) if job.id != id => Err(AppError::Forbidden(
                "this read token is for another job".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses a read-token caller: lists span the project, the token reads one job.
    pub fn require_project(&self, what: &str) -> Result<(), AppError> {
        match self.only_job {
            Some(_) => Err(AppError::Forbidden(format!(
                "a job's read token cannot {what}"
            ))),
            None => Ok(()),
        }
    }

    /// Lets the project's allowed origins read the answer from a browser (CORS).
    pub fn allow_origin(&self, request: &HeaderMap, response: &mut Response) {
        let Some(origin) = request.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return;
        };
        if let (true, Ok(value)) = (self.allows(origin), HeaderValue::from_str(origin)) {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for JobAccess
where
    AppState: FromRef<S>,
{
    type Rejection = Response;

    /// As [`JobAccess::identify`]; then a read token used from a web page whose origin the
    /// project does not allow is refused in words that page can read (see `crate::metrics::OriginRefusals`).
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let state = &AppState::from_ref(state);
        let access = JobAccess::identify(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let origin = parts
            .headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        match (&access.only_job, origin) {
            (Some(job), Some(origin)) if !access.allows(origin) => {
                state.origin_refusals.record(job, origin);
                Err(refuse_origin(origin, &access.project))
            }
            _ => Ok(access),
        }
    }
}

/// 403 naming the origin and what to do, with CORS headers for that origin so the page's
/// script (`progress.js`) can read why — a browser otherwise hides a refusal as "Failed to
/// fetch". It tells a page only that it is not allowed, nothing of the job.
fn refuse_origin(origin: &str, project: &Project) -> Response {
    let message = format!(
        "this page's origin {origin} is not allowed to read project {:?}'s jobs: add it to \
         the project's allowed origins in Vigie (Settings → Projects)",
        project.name
    );
    let body = serde_json::json!({"error": {"code": "origin_not_allowed", "message": message}});
    let mut response = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

impl JobAccess {
    fn allows(&self, origin: &str) -> bool {
        self.project
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }

    async fn identify(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let reading = matches!(parts.method, Method::GET | Method::HEAD);
        let query = parts.uri.query();

        if let Some(token) = query.and_then(|q| query_value(q, "token")) {
            if !reading {
                return Err(AppError::Forbidden("a job's read token only reads".into()).into());
            }
            let job = state
                .store
                .job_by_read_token(&token_hash(&token))
                .await?
                .ok_or(AppError::Unauthorized)?;
            let project = state
                .projects
                .find(&*state.store, |p| p.id == job.project)
                .await?
                .ok_or(AppError::Unauthorized)?;
            return Ok(JobAccess {
                project,
                only_job: Some(job),
            });
        }

        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let api_token = header(header::AUTHORIZATION)
            .and_then(vigie_protocol::bearer_token)
            .is_some_and(|t| t.starts_with(API_TOKEN_PREFIX));
        if !api_token {
            let key = find_project_key(KeySources {
                x_sentry_auth: header(header::HeaderName::from_static("x-sentry-auth")),
                authorization: header(header::AUTHORIZATION),
                query,
            });
            if let Some(key) = key {
                if reading {
                    return Err(AppError::Forbidden(
                        "a project key only sends data; to read jobs use an API token, the \
                         web UI, or the job's read token (?token=, answered when it was created)"
                            .into(),
                    )
                    .into());
                }
                let project = state.projects.with_key(&*state.store, &key).await?;
                let project = project.ok_or_else(|| {
                    AppError::Forbidden(
                        "unknown project key: copy it from Settings → Projects".into(),
                    )
                })?;
                return Ok(JobAccess {
                    project,
                    only_job: None,
                });
            }
        }

        <ApiCaller as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        let project = named_project(state, parts).await?;
        Ok(JobAccess {
            project,
            only_job: None,
        })
    }
}

/// `?project=<id or name>`, else the UI's current project, else the only project.
pub(crate) async fn named_project(state: &AppState, parts: &Parts) -> Result<Project, AppError> {
    let asked = parts.uri.query().and_then(|q| query_value(q, "project"));
    if let Some(asked) = asked {
        let named = |p: &Project| p.id.0.to_string() == asked || p.name == asked;
        return state
            .projects
            .find(state.store.as_ref(), named)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no project {asked:?}")));
    }
    let projects = state.projects.get(state.store.as_ref()).await?;
    let current = cookies::get(&parts.headers, cookies::PROJECT).and_then(|v| v.parse().ok());
    if let Some(p) = current.and_then(|id: i64| projects.iter().find(|p| p.id.0 == id)) {
        return Ok(p.clone());
    }
    // Vigie's own project (its self-monitors, see `monitors::watchdog`) does not make a
    // one-project server need `?project=`.
    let own = state.config.watchdog.project.trim();
    let theirs: Vec<&Project> = projects.iter().filter(|p| p.name != own).collect();
    let all: Vec<&Project> = projects.iter().collect();
    match (theirs.as_slice(), all.as_slice()) {
        ([only], _) | ([], [only]) => Ok((*only).clone()),
        _ => Err(AppError::Invalid {
            field: "project".into(),
            message: format!(
                "this server has {} projects: name one with ?project=<id>",
                projects.len()
            ),
        }),
    }
}

/// The projects a `sentry-cli` call names (by name or id), or why one cannot be found (said
/// to the CLI, which prints it).
pub(crate) async fn projects_named(
    state: &AppState,
    names: &[String],
) -> Result<Result<Vec<Project>, String>, AppError> {
    if names.is_empty() {
        return Ok(Err(
            "name the project (--project, or SENTRY_PROJECT): Vigie's project name or id".into(),
        ));
    }
    let all = state.store.list_projects().await?;
    let mut found = Vec::new();
    for name in names {
        match all
            .iter()
            .find(|p| &p.name == name || p.id.0.to_string() == *name)
        {
            Some(p) if !found.iter().any(|f: &Project| f.id == p.id) => found.push(p.clone()),
            Some(_) => {}
            None => return Ok(Err(format!("Vigie has no project named {name:?}"))),
        }
    }
    Ok(Ok(found))
}

/// A person or script reading one project (logs, issues, performance), named by `?project=`
/// (see [`named_project`]); changes need admin access, as everywhere in the API.
pub struct ProjectReader {
    pub project: Project,
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectReader
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = &AppState::from_ref(state);
        <ApiCaller as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        Ok(ProjectReader {
            project: named_project(state, parts).await?,
        })
    }
}
