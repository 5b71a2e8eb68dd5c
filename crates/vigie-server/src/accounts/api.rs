//! The accounts API: who am I, projects, users and API tokens (the rest of `/api/v1/` is in
//! each feature's folder; all of it is described by the OpenAPI document, `crate::api`).
//!
//! Callers authenticate with `Authorization: Bearer <api token>` (or the UI's session cookie
//! plus `X-CSRF-Token`). Every handler takes an [`ApiCaller`], which enforces the rule for the
//! whole API: reads need read scope, changes need admin scope. Bodies and answers are JSON;
//! errors are `{"error": {"code", "message"}}`. The rules themselves live in `crate::manage`,
//! shared with the UI and the CLI.

use super::manage;
use super::patch::Patch;
use crate::auth::{ApiCaller, Caller};
use crate::http::Table;
use crate::http::{ApiError, AppError};
use crate::hub::Change;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use vigie_core::{ApiToken, Project, ProjectId, Role, Scope, User};

/// The accounts API's routes.
pub fn routes() -> Table<AppState> {
    Table::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/projects", get(list_projects).post(create_project))
        .route(
            "/api/v1/projects/{id}",
            get(get_project).patch(update_project),
        )
        .route("/api/v1/projects/{id}/rotate-key", post(rotate_key))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
}

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Serialize)]
pub struct ProjectView {
    id: i64,
    name: String,
    public_key: String,
    dsn: String,
    allowed_origins: Vec<String>,
    created_at: String,
}

impl ProjectView {
    fn new(state: &AppState, p: &Project) -> Self {
        ProjectView {
            id: p.id.0,
            name: p.name.clone(),
            public_key: p.public_key.to_string(),
            dsn: state.dsn(p),
            allowed_origins: p.allowed_origins.clone(),
            created_at: p.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize)]
pub struct UserView {
    id: i64,
    username: String,
    role: Role,
    created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            username: u.username.clone(),
            role: u.role,
            created_at: u.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize)]
pub struct TokenView {
    id: i64,
    name: String,
    scope: Scope,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    /// Only in the answer to the creation: the secret, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        TokenView {
            id: t.id,
            name: t.name.clone(),
            scope: t.scope,
            prefix: t.prefix.clone(),
            created_at: t.created_at.to_rfc3339(),
            last_used_at: t.last_used_at.map(|t| t.to_rfc3339()),
            token: None,
        }
    }
}

#[derive(Serialize)]
struct Me {
    kind: &'static str,
    name: String,
    access: &'static str,
}

async fn me(ApiCaller(caller): ApiCaller) -> Json<Me> {
    Json(match caller {
        Caller::Token(t) => Me {
            kind: "token",
            name: t.name,
            access: t.scope.as_str(),
        },
        Caller::User(u) => Me {
            kind: "user",
            name: u.username,
            access: u.role.as_str(),
        },
    })
}

async fn list_projects(State(state): State<AppState>, _: ApiCaller) -> ApiResult<Vec<ProjectView>> {
    let projects = state.store.list_projects().await?;
    Ok(Json(
        projects
            .iter()
            .map(|p| ProjectView::new(&state, p))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct ProjectBody {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectChange {
    name: Option<String>,
    allowed_origins: Option<Vec<String>>,
}

async fn create_project(
    State(state): State<AppState>,
    _: ApiCaller,
    Json(body): Json<ProjectBody>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    let project = manage::create_project(state.store.as_ref(), &body.name).await?;
    state.hub.publish(Change::Projects);
    Ok((
        StatusCode::CREATED,
        Json(ProjectView::new(&state, &project)),
    ))
}

async fn get_project(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<ProjectView> {
    let project = state
        .store
        .project(ProjectId(id))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no project with id {id}")))?;
    Ok(Json(ProjectView::new(&state, &project)))
}

async fn update_project(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
    Patch(body): Patch<ProjectChange>,
) -> ApiResult<ProjectView> {
    let (store, id) = (state.store.as_ref(), ProjectId(id));
    let mut project = None;
    if let Some(name) = &body.name {
        project = Some(manage::rename_project(store, id, name).await?);
    }
    if let Some(origins) = &body.allowed_origins {
        project = Some(manage::set_allowed_origins(store, id, &origins.join("\n")).await?);
    }
    let project = match project {
        Some(p) => p,
        None => store
            .project(id)
            .await?
            .ok_or_else(|| AppError::NotFound("project not found".into()))?,
    };
    state.hub.publish(Change::Projects);
    Ok(Json(ProjectView::new(&state, &project)))
}

async fn rotate_key(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<ProjectView> {
    let project = manage::rotate_project_key(state.store.as_ref(), ProjectId(id)).await?;
    state.hub.publish(Change::Projects);
    Ok(Json(ProjectView::new(&state, &project)))
}

async fn list_users(State(state): State<AppState>, _: ApiCaller) -> ApiResult<Vec<UserView>> {
    Ok(Json(
        state
            .store
            .list_users()
            .await?
            .iter()
            .map(UserView::from)
            .collect(),
    ))
}

#[derive(Deserialize)]
struct NewUserBody {
    username: String,
    password: String,
    #[serde(default = "default_role")]
    role: Role,
}

fn default_role() -> Role {
    Role::Viewer
}

async fn create_user(
    State(state): State<AppState>,
    _: ApiCaller,
    Json(body): Json<NewUserBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = manage::create_user(
        state.store.as_ref(),
        &body.username,
        &body.password,
        body.role,
    )
    .await?;
    state.hub.publish(Change::Users);
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

async fn get_user(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<UserView> {
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user with id {id}")))?;
    Ok(Json(UserView::from(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUserBody {
    role: Option<Role>,
    password: Option<String>,
}

async fn update_user(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
    Patch(body): Patch<UpdateUserBody>,
) -> ApiResult<UserView> {
    let store = state.store.as_ref();
    if let Some(password) = &body.password {
        manage::set_password(store, id, password).await?;
    }
    if let Some(role) = body.role {
        manage::set_role(store, id, role).await?;
        state.hub.publish(Change::Users);
    }
    let user = store
        .user(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user with id {id}")))?;
    Ok(Json(UserView::from(&user)))
}

async fn delete_user(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let actor = match caller {
        Caller::User(u) => Some(u.id),
        Caller::Token(_) => None,
    };
    manage::delete_user(state.store.as_ref(), actor, id).await?;
    state.hub.publish(Change::Users);
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(State(state): State<AppState>, _: ApiCaller) -> ApiResult<Vec<TokenView>> {
    Ok(Json(
        state
            .store
            .list_api_tokens()
            .await?
            .iter()
            .map(TokenView::from)
            .collect(),
    ))
}

#[derive(Deserialize)]
struct NewTokenBody {
    name: String,
    #[serde(default = "default_scope")]
    scope: Scope,
}

fn default_scope() -> Scope {
    Scope::Read
}

async fn create_token(
    State(state): State<AppState>,
    _: ApiCaller,
    Json(body): Json<NewTokenBody>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let (token, secret) =
        manage::create_token(state.store.as_ref(), &body.name, body.scope).await?;
    state.hub.publish(Change::Tokens);
    let mut view = TokenView::from(&token);
    view.token = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn revoke_token(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    manage::revoke_token(state.store.as_ref(), id).await?;
    state.hub.publish(Change::Tokens);
    Ok(StatusCode::NO_CONTENT)
}
