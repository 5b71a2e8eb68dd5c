//! Settings: projects (with their error settings), users and API tokens. Everyone logged in can look; admins can change.

use crate::accounts::manage;
use crate::auth::{AdminUser, LoggedIn};
use crate::http::Table;
use crate::http::{AppError, PageError};
use crate::hub::Change;
use crate::sentry::SettingsChange;
use crate::state::AppState;
use crate::web::{form_outcome, render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Form;
use serde::Deserialize;
use vigie_core::validate::MIN_PASSWORD_LEN;
use vigie_core::{ApiToken, Project, ProjectId, Role, Scope, User};
use vigie_store::ErrorSettings;

pub fn routes() -> Table<AppState> {
    Table::new()
        .route(
            "/settings",
            get(|| async { Redirect::to("/settings/projects") }),
        )
        .route("/settings/projects", get(projects).post(create_project))
        .route("/settings/projects/{id}/rename", post(rename_project))
        .route("/settings/projects/{id}/rotate-key", post(rotate_key))
        .route("/settings/projects/{id}/origins", post(set_origins))
        .route("/settings/projects/{id}/errors", post(set_error_settings))
        .route("/settings/users", get(users).post(add_user))
        .route("/settings/users/{id}/role", post(set_role))
        .route("/settings/users/{id}/delete", post(delete_user))
        .route("/settings/tokens", get(tokens).post(create_token))
        .route("/settings/tokens/{id}/revoke", post(revoke_token))
}

const PROJECTS: &str = "/settings/projects";
const USERS: &str = "/settings/users";
const TOKENS: &str = "/settings/tokens";

/// The answer to a settings form: when it worked, live pages hear of `change` and its tab shows
/// `success`; a user's mistake shows on the tab; anything else is an error page.
fn saved<T, E: Into<AppError>>(
    state: &AppState,
    request: &PageRequest<AdminUser>,
    change: Change,
    result: Result<T, E>,
    success: impl FnOnce(&T) -> String,
) -> Result<Response, PageError> {
    let result = result.map_err(Into::into);
    let tab = match change {
        Change::Users => USERS,
        Change::Tokens => TOKENS,
        _ => PROJECTS,
    };
    if result.is_ok() {
        state.hub.publish(change);
    }
    form_outcome(result, tab, request.secure_cookies(state), success)
}

pub struct ProjectRow {
    pub project: Project,
    pub dsn: String,
    pub errors: ErrorSettings,
}

impl ProjectRow {
    /// The project's events-per-minute limit as the form shows it (blank: none).
    pub fn events_per_minute(&self) -> String {
        self.errors
            .events_per_minute
            .map(|n| n.to_string())
            .unwrap_or_default()
    }

    /// The project's span retention in days as the form shows it (blank: the server's).
    pub fn span_retention_days(&self) -> String {
        self.errors
            .span_retention_days
            .map(|n| n.to_string())
            .unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "accounts/settings/projects.html")]
struct ProjectsPage {
    chrome: Chrome,
    tab: &'static str,
    rows: Vec<ProjectRow>,
}

async fn projects(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "settings").await?;
    let mut rows = Vec::with_capacity(chrome.projects.len());
    for p in &chrome.projects {
        rows.push(ProjectRow {
            dsn: state.dsn(p),
            errors: state.store.error_settings(p.id).await?,
            project: p.clone(),
        });
    }
    let page = ProjectsPage {
        chrome,
        tab: "projects",
        rows,
    };
    render(&page, &page.chrome)
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

async fn create_project(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Form(form): Form<NameForm>,
) -> Result<Response, PageError> {
    let result = manage::create_project(state.store.as_ref(), &form.name).await;
    saved(&state, &request, Change::Projects, result, |p| {
        format!("Project \"{}\" created. Its DSN is in the table.", p.name)
    })
}

async fn rename_project(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
    Form(form): Form<NameForm>,
) -> Result<Response, PageError> {
    let result = manage::rename_project(state.store.as_ref(), ProjectId(id), &form.name).await;
    saved(&state, &request, Change::Projects, result, |p| {
        format!("Project renamed to \"{}\".", p.name)
    })
}

#[derive(Deserialize)]
struct OriginsForm {
    origins: String,
}

async fn set_origins(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
    Form(form): Form<OriginsForm>,
) -> Result<Response, PageError> {
    let result =
        manage::set_allowed_origins(state.store.as_ref(), ProjectId(id), &form.origins).await;
    saved(&state, &request, Change::Projects, result, |p| {
        if p.allowed_origins.is_empty() {
            format!("No web page may read the jobs of \"{}\" now.", p.name)
        } else {
            format!(
                "Pages on {} may read the jobs of \"{}\" with a job's read token.",
                p.allowed_origins.join(", "),
                p.name
            )
        }
    })
}

/// The error settings form: text fields as typed, the checkbox present only when ticked.
#[derive(Deserialize)]
struct ErrorSettingsForm {
    apdex_ms: String,
    events_per_minute: String,
    keep_user_contact: Option<String>,
    span_exceptions: Option<String>,
    scrub_keys: String,
    /// Blank: the server's `errors.retention`.
    #[serde(default)]
    span_retention_days: String,
}

impl ErrorSettingsForm {
    fn change(&self) -> Result<SettingsChange, AppError> {
        let number = |field: &str, text: &str| {
            text.trim().parse::<i64>().map_err(|_| AppError::Invalid {
                field: field.into(),
                message: format!("\"{}\" is not a whole number", text.trim()),
            })
        };
        let events_per_minute = match self.events_per_minute.trim() {
            "" => 0,
            text => number("events_per_minute", text)?,
        };
        let span_retention_days = match self.span_retention_days.trim() {
            "" => 0,
            text => number("span_retention_days", text)?,
        };
        Ok(SettingsChange {
            span_retention_days: Some(span_retention_days),
            apdex_ms: Some(number("apdex_ms", &self.apdex_ms)?),
            events_per_minute: Some(events_per_minute),
            keep_user_contact: Some(self.keep_user_contact.is_some()),
            span_exceptions: Some(self.span_exceptions.is_some()),
            scrub_keys: Some(
                self.scrub_keys
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .map(str::to_string)
                    .collect(),
            ),
        })
    }
}

async fn set_error_settings(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
    Form(form): Form<ErrorSettingsForm>,
) -> Result<Response, PageError> {
    let project = ProjectId(id);
    let result = match form.change() {
        Ok(change) => {
            crate::sentry::change_settings(state.store.as_ref(), &state.hub, project, change).await
        }
        Err(err) => Err(err),
    };
    form_outcome(result, PROJECTS, request.secure_cookies(&state), |s| {
        format!(
            "Error settings saved: Apdex T {} ms, {}, user e-mail and IP {}, span exceptions {}, \
             spans kept {}.",
            s.apdex_ms,
            s.events_per_minute
                .map_or("no project limit".to_string(), |n| format!(
                    "at most {n} events/min"
                )),
            if s.keep_user_contact {
                "kept"
            } else {
                "removed"
            },
            if s.span_exceptions {
                "as issues"
            } else {
                "not as issues"
            },
            s.span_retention_days
                .map_or("as long as events".to_string(), |d| {
                    crate::web::format::count(d, "day", "days")
                })
        )
    })
}

async fn rotate_key(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let result = manage::rotate_project_key(state.store.as_ref(), ProjectId(id)).await;
    saved(&state, &request, Change::Projects, result, |p| {
        format!(
            "New key for \"{}\": update your SDKs with the new DSN; the old one no longer works.",
            p.name
        )
    })
}

#[derive(Template)]
#[template(path = "accounts/settings/users.html")]
struct UsersPage {
    chrome: Chrome,
    tab: &'static str,
    users: Vec<User>,
    min_password: usize,
}

async fn users(State(state): State<AppState>, request: PageRequest) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "settings").await?;
    let page = UsersPage {
        chrome,
        tab: "users",
        users: state.store.list_users().await?,
        min_password: MIN_PASSWORD_LEN,
    };
    render(&page, &page.chrome)
}

#[derive(Deserialize)]
struct UserForm {
    username: String,
    password: String,
    role: String,
}

fn parse_role(raw: &str) -> Result<Role, AppError> {
    raw.parse()
        .map_err(|e| AppError::BadRequest(format!("{e}")))
}

async fn add_user(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Form(form): Form<UserForm>,
) -> Result<Response, PageError> {
    let result = async {
        let role = parse_role(&form.role)?;
        let store = state.store.as_ref();
        Ok::<_, AppError>(manage::create_user(store, &form.username, &form.password, role).await?)
    }
    .await;
    saved(&state, &request, Change::Users, result, |u| {
        format!("User \"{}\" added as {}.", u.username, u.role)
    })
}

#[derive(Deserialize)]
struct RoleForm {
    role: String,
}

async fn set_role(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    let result = async {
        let role = parse_role(&form.role)?;
        Ok::<_, AppError>(manage::set_role(state.store.as_ref(), id, role).await?)
    }
    .await;
    saved(&state, &request, Change::Users, result, |u| {
        format!("\"{}\" is now {}.", u.username, u.role)
    })
}

async fn delete_user(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let me = request.who.0.user.id;
    let result = manage::delete_user(state.store.as_ref(), Some(me), id).await;
    saved(&state, &request, Change::Users, result, |_| {
        "User deleted.".to_string()
    })
}

/// A token just created, shown once.
pub struct CreatedToken {
    pub name: String,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "accounts/settings/tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tab: &'static str,
    tokens: Vec<ApiToken>,
    created: Option<CreatedToken>,
}

async fn tokens_page<Who: AsRef<LoggedIn>>(
    state: &AppState,
    request: &PageRequest<Who>,
    created: Option<CreatedToken>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(state, "settings").await?;
    let page = TokensPage {
        chrome,
        tab: "tokens",
        tokens: state.store.list_api_tokens().await?,
        created,
    };
    render(&page, &page.chrome)
}

async fn tokens(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    tokens_page(&state, &request, None).await
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
    scope: String,
}

/// Creates a token and shows it on the answer itself (not after a redirect): the secret must
/// never sit in a cookie or a URL.
async fn create_token(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    let scope: Result<Scope, AppError> = form
        .scope
        .parse()
        .map_err(|e| AppError::BadRequest(format!("{e}")));
    let result = match scope {
        Ok(scope) => manage::create_token(state.store.as_ref(), &form.name, scope)
            .await
            .map_err(AppError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok((token, secret)) => {
            state.hub.publish(Change::Tokens);
            let created = CreatedToken {
                name: token.name,
                secret,
            };
            tokens_page(&state, &request, Some(created)).await
        }
        Err(err) => form_outcome(
            Err::<(), _>(err),
            TOKENS,
            request.secure_cookies(&state),
            |_| String::new(),
        ),
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let result = manage::revoke_token(state.store.as_ref(), id).await;
    saved(&state, &request, Change::Tokens, result, |_| {
        "Token revoked.".to_string()
    })
}
