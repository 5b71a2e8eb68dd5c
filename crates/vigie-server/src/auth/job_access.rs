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
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
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
        let allowed = self
            .project
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin));
        if let (true, Ok(value)) = (allowed, HeaderValue::from_str(origin)) {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

impl FromRequestParts<AppState> for JobAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
                .store
                .project(job.project)
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
                let project = state.store.project_by_key(&key).await?.ok_or_else(|| {
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

        ApiCaller::from_request_parts(parts, state).await?;
        let project = named_project(state, parts).await?;
        Ok(JobAccess {
            project,
            only_job: None,
        })
    }
}

/// `?project=<id or name>`, else the UI's current project, else the only project.
pub(crate) async fn named_project(state: &AppState, parts: &Parts) -> Result<Project, AppError> {
    let projects = state.store.list_projects().await?;
    let asked = parts.uri.query().and_then(|q| query_value(q, "project"));
    if let Some(asked) = asked {
        return projects
            .into_iter()
            .find(|p| p.id.0.to_string() == asked || p.name == asked)
            .ok_or_else(|| AppError::NotFound(format!("no project {asked:?}")));
    }
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

/// A person or script reading one project (logs, issues, performance), named by `?project=`
/// (see [`named_project`]); changes need admin access, as everywhere in the API.
pub struct ProjectReader {
    pub project: Project,
}

impl FromRequestParts<AppState> for ProjectReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        ApiCaller::from_request_parts(parts, state).await?;
        Ok(ProjectReader {
            project: named_project(state, parts).await?,
        })
    }
}
