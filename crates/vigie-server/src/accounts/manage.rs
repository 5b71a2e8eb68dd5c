//! Managing projects, users and API tokens: the rules, written once and used by the UI, the
//! JSON API and the offline CLI (`vigie user add`, `vigie token create`, …).
//!
//! Each function validates its input, applies the change through the store and returns the
//! result, or a [`ManageError`] naming the rule that refused it; handlers turn that into an
//! HTTP answer (`From<ManageError> for AppError`), the CLI into a message. Callers that show
//! live pages publish the change on the hub afterwards.

use crate::auth::password::{self, HashError};
use crate::http::AppError;
use vigie_core::account::new_api_token;
use vigie_core::secret::{random_hex, token_hash};
use vigie_core::validate::InvalidName;
use vigie_core::{validate, ApiToken, Project, ProjectId, ProjectKey, Role, Scope, User};
use vigie_store::{Installation, Installed, NewApiToken, NewUser, Store, StoreError};

/// Why a change to projects, users or tokens was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// A name or password breaks its rule.
    #[error(transparent)]
    Invalid(#[from] InvalidName),
    #[error("{0}")]
    BadOrigins(String),
    #[error(
        "this setup link is no longer valid: an account exists already, or the link was mistyped"
    )]
    SetupLinkInvalid,
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("you cannot delete your own account; ask another admin")]
    DeletingSelf,
    #[error("this is the last admin: make another user admin first")]
    LastAdmin,
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ManageError> for AppError {
    fn from(err: ManageError) -> Self {
        match err {
            ManageError::Invalid(_) | ManageError::BadOrigins(_) => {
                AppError::BadRequest(err.to_string())
            }
            ManageError::SetupLinkInvalid => AppError::Forbidden(err.to_string()),
            ManageError::NoSuchUser(_) => AppError::NotFound(err.to_string()),
            ManageError::DeletingSelf | ManageError::LastAdmin => {
                AppError::Conflict(err.to_string())
            }
            ManageError::Hashing(_) => AppError::Internal(err.to_string()),
            ManageError::Store(err) => err.into(),
        }
    }
}

/// The meta key under which the one-time setup token waits for the first admin.
pub const SETUP_TOKEN_KEY: &str = "setup_token";
/// The meta key of the address the server last announced (see [`Start::base_url`]).
pub const BASE_URL_KEY: &str = "base_url";

/// The address the server last announced on this data, if it ever started.
pub async fn remembered_base_url(store: &dyn Store) -> Result<Option<String>, StoreError> {
    store.meta(BASE_URL_KEY).await
}
/// The project every installation starts with.
pub const DEFAULT_PROJECT: &str = "default";

/// What a starting server asks of [`bootstrap`] besides the default project and the setup
/// token. An offline command asks nothing more (`Start::default()`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Start<'a> {
    /// The address the server answers on, remembered for commands run offline on the same
    /// data (`vigie project list` prints DSNs with it).
    pub base_url: Option<&'a str>,
    /// Vigie's own project, made when missing, so the watchdog's monitors and the
    /// configuration file's alert rules can name it from the first start.
    pub own_project: Option<&'a str>,
}

/// Makes an installation usable: creates the `default` project when there is no project, and
/// the setup token while there is no user; then what `start` asks. Safe to run on every
/// start, by every instance.
///
/// All of it is one transaction: a fresh data directory's start waits for one commit here,
/// not four, and a start on a prepared one writes nothing.
pub async fn bootstrap(store: &dyn Store, start: Start<'_>) -> Result<Installed, ManageError> {
    let installation = Installation {
        first_project: (DEFAULT_PROJECT.into(), ProjectKey::generate()),
        own_project: start
            .own_project
            .map(|name| (name.to_string(), ProjectKey::generate())),
        setup_token: (SETUP_TOKEN_KEY.into(), random_hex(16)),
        settings: start
            .base_url
            .map(|url| (BASE_URL_KEY.to_string(), url.to_string()))
            .into_iter()
            .collect(),
    };
    Ok(store.prepare_installation(&installation).await?)
}

pub async fn create_project(store: &dyn Store, name: &str) -> Result<Project, ManageError> {
    let name = validate::project_name(name)?;
    Ok(store.create_project(&name, &ProjectKey::generate()).await?)
}

pub async fn rename_project(
    store: &dyn Store,
    id: ProjectId,
    name: &str,
) -> Result<Project, ManageError> {
    let name = validate::project_name(name)?;
    Ok(store.rename_project(id, &name).await?)
}

/// Sets the web origins allowed to read the project's jobs with a read token (CORS).
pub async fn set_allowed_origins(
    store: &dyn Store,
    id: ProjectId,
    text: &str,
) -> Result<Project, ManageError> {
    let origins = vigie_core::project::parse_origins(text).map_err(ManageError::BadOrigins)?;
    Ok(store.set_allowed_origins(id, &origins).await?)
}

/// Gives a project a new public key. The old DSN stops working at once.
pub async fn rotate_project_key(store: &dyn Store, id: ProjectId) -> Result<Project, ManageError> {
    Ok(store.set_project_key(id, &ProjectKey::generate()).await?)
}

pub async fn create_user(
    store: &dyn Store,
    username: &str,
    password: &str,
    role: Role,
) -> Result<User, ManageError> {
    let new = new_user(username, password, role).await?;
    Ok(store.create_user(&new).await?)
}

/// The first-run setup: the first admin, accepted only with the setup token and only once.
pub async fn create_first_admin(
    store: &dyn Store,
    setup_token: &str,
    username: &str,
    password: &str,
) -> Result<User, ManageError> {
    if !setup_token_is_valid(store, setup_token).await? {
        return Err(ManageError::SetupLinkInvalid);
    }
    let new = new_user(username, password, Role::Admin).await?;
    Ok(store.create_first_user(&new, SETUP_TOKEN_KEY).await?)
}

/// Whether `token` is the setup token still waiting for the first admin.
pub async fn setup_token_is_valid(store: &dyn Store, token: &str) -> Result<bool, ManageError> {
    let expected = store.meta(SETUP_TOKEN_KEY).await?;
    Ok(expected
        .as_deref()
        .is_some_and(|e| vigie_core::secret::constant_time_eq(e, token)))
}

async fn new_user(username: &str, password: &str, role: Role) -> Result<NewUser, ManageError> {
    let username = validate::username(username)?;
    validate::password(password)?;
    Ok(NewUser {
        username,
        password_hash: password::hash(password.to_string()).await?,
        role,
    })
}

/// Sets a user's password (and ends their sessions).
pub async fn set_password(
    store: &dyn Store,
    user_id: i64,
    password: &str,
) -> Result<(), ManageError> {
    validate::password(password)?;
    let hash = password::hash(password.to_string()).await?;
    Ok(store.set_password(user_id, &hash).await?)
}

pub async fn user_by_name(store: &dyn Store, username: &str) -> Result<User, ManageError> {
    let username = validate::username(username)?;
    store
        .credentials(&username)
        .await?
        .map(|c| c.user)
        .ok_or(ManageError::NoSuchUser(username))
}

/// Changes a user's role, refusing to demote the last admin (nobody could manage Vigie then).
pub async fn set_role(store: &dyn Store, user_id: i64, role: Role) -> Result<User, ManageError> {
    if role != Role::Admin {
        ensure_another_admin(store, user_id).await?;
    }
    Ok(store.set_role(user_id, role).await?)
}

/// Deletes a user, refusing to delete oneself or the last admin.
pub async fn delete_user(
    store: &dyn Store,
    actor: Option<i64>,
    user_id: i64,
) -> Result<(), ManageError> {
    if actor == Some(user_id) {
        return Err(ManageError::DeletingSelf);
    }
    ensure_another_admin(store, user_id).await?;
    Ok(store.delete_user(user_id).await?)
}

async fn ensure_another_admin(store: &dyn Store, user_id: i64) -> Result<(), ManageError> {
    let users = store.list_users().await?;
    let target_is_admin = users
        .iter()
        .any(|u| u.id == user_id && u.role == Role::Admin);
    let admins = users.iter().filter(|u| u.role == Role::Admin).count();
    if target_is_admin && admins == 1 {
        return Err(ManageError::LastAdmin);
    }
    Ok(())
}

/// Creates an API token. The secret is returned here once and stored only as a hash.
pub async fn create_token(
    store: &dyn Store,
    name: &str,
    scope: Scope,
) -> Result<(ApiToken, String), ManageError> {
    let name = validate::token_name(name)?;
    let (secret, prefix) = new_api_token();
    let token = store
        .create_api_token(&NewApiToken {
            name,
            scope,
            token_hash: token_hash(&secret),
            prefix,
        })
        .await?;
    Ok((token, secret))
}

pub async fn revoke_token(store: &dyn Store, id: i64) -> Result<(), ManageError> {
    Ok(store.revoke_api_token(id).await?)
}
