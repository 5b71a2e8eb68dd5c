//! Who may use Vigie and where data goes: the server's own settings (`meta`), projects, users,
//! browser sessions and API tokens, written once for both backends (see [`crate::tx::Tx`]).
//!
//! Every method is one statement or one short transaction; the rules about who may do what
//! live in the server (`vigie_server::accounts`), not here.

use crate::engine::{Db, Engine};
use crate::sql::{Columns, Value};
use crate::tx::{Row, Tx};
use crate::{Result, StoreError};
use async_trait::async_trait;
use vigie_core::login_limiter::{self, Failures};
use vigie_core::project::origins_from_text;
use vigie_core::{ApiToken, Project, ProjectId, ProjectKey, Role, Scope, Timestamp, User};

/// A user and the stored password hash, for the login check only.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// A logged-in browser session, found by the hash of its cookie value.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: User,
    /// The token every state-changing form of this session must carry.
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

#[derive(Clone, Debug)]
pub struct NewSession {
    pub token_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewApiToken {
    pub name: String,
    pub scope: Scope,
    pub token_hash: String,
    pub prefix: String,
}

/// What a server makes sure of before it answers, in one transaction (see
/// [`AccountStore::prepare_installation`]).
#[derive(Clone, Debug)]
pub struct Installation {
    /// Made when there is no project at all: its name and key.
    pub first_project: (String, ProjectKey),
    /// Made when no project has this name (Vigie's own project, for its watchdog).
    pub own_project: Option<(String, ProjectKey)>,
    /// Kept in `meta` under its key while no user exists; a value already stored wins, so
    /// several instances starting at once agree on one.
    pub setup_token: (String, String),
    /// Set in `meta` under their keys, replacing what is there; a value already the same is
    /// not written again.
    pub settings: Vec<(String, String)>,
}

/// What [`AccountStore::prepare_installation`] found or made.
#[derive(Clone, Debug)]
pub struct Installed {
    /// Every project, by id.
    pub projects: Vec<Project>,
    /// The setup token, while no user exists.
    pub setup_token: Option<String>,
}

/// Settings, projects, users, sessions and API tokens.
#[async_trait]
pub trait AccountStore: Send + Sync {
    // --- settings kept by the server itself ---

    async fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` under `key` unless a value is there already; returns the value in force.
    /// Lets several instances agree on one generated value (e.g. the setup token).
    async fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String>;
    async fn meta_delete(&self, key: &str) -> Result<()>;
    /// Makes what a starting server needs, in one transaction: one commit on a fresh
    /// database, none when everything is there already. Instances starting at once on one
    /// PostgreSQL agree: a project another one made meanwhile is taken as it is, not made
    /// again.
    async fn prepare_installation(&self, installation: &Installation) -> Result<Installed>;

    // --- projects ---

    async fn create_project(&self, name: &str, key: &ProjectKey) -> Result<Project>;
    async fn list_projects(&self) -> Result<Vec<Project>>;
    async fn project(&self, id: ProjectId) -> Result<Option<Project>>;
    async fn project_by_key(&self, key: &str) -> Result<Option<Project>>;
    async fn rename_project(&self, id: ProjectId, name: &str) -> Result<Project>;
    async fn set_project_key(&self, id: ProjectId, key: &ProjectKey) -> Result<Project>;
    /// The web origins allowed to read this project's jobs from a browser (CORS).
    async fn set_allowed_origins(&self, id: ProjectId, origins: &[String]) -> Result<Project>;

    // --- users ---

    async fn create_user(&self, user: &NewUser) -> Result<User>;
    /// Creates `user` only if no user exists yet, atomically, and forgets the meta key
    /// `forget_meta` in the same transaction: the first-run setup, which must work exactly once.
    async fn create_first_user(&self, user: &NewUser, forget_meta: &str) -> Result<User>;
    async fn count_users(&self) -> Result<u64>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn user(&self, id: i64) -> Result<Option<User>>;
    async fn credentials(&self, username: &str) -> Result<Option<Credentials>>;
    /// Sets the password and ends the user's sessions, so a changed password locks out whoever
    /// knew the old one.
    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()>;
    async fn set_role(&self, user_id: i64, role: Role) -> Result<User>;
    async fn delete_user(&self, user_id: i64) -> Result<()>;

    // --- sessions ---

    async fn create_session(&self, session: &NewSession) -> Result<()>;
    /// The unexpired session with this token hash.
    async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    // --- API tokens ---

    async fn create_api_token(&self, token: &NewApiToken) -> Result<ApiToken>;
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>>;
    async fn touch_api_token(&self, id: i64, now: Timestamp) -> Result<()>;
    /// Revokes (deletes) a token; `NotFound` if there was none.
    async fn revoke_api_token(&self, id: i64) -> Result<()>;

    // --- login throttling (vigie_core::login_limiter) ---

    /// The failures counted under each of `keys` that has any.
    async fn login_failures(&self, keys: &[String]) -> Result<Vec<(String, Failures)>>;
    /// Counts one more failure under each of `keys` at `now`, in one transaction.
    async fn record_login_failure(&self, keys: &[String], now: Timestamp) -> Result<()>;
    /// Forgets the failures of `keys` (after a success).
    async fn clear_login_failures(&self, keys: &[String]) -> Result<()>;
    /// Forgets failures last counted before `before`; answers how many keys.
    async fn forget_login_failures(&self, before: Timestamp) -> Result<u64>;
}

async fn failures_of(tx: &mut dyn Tx, key: &str, lock: &str) -> Result<Option<Failures>> {
    let sql =
        format!("SELECT count, last_at, blocked_until FROM login_failures WHERE key = $1{lock}");
    tx.first(&sql, &[key.into()])
        .await?
        .map(|row| {
            Ok(Failures {
                count: row.req_int(0)? as u32,
                last: Timestamp(row.req_int(1)?),
                blocked_until: Timestamp(row.req_int(2)?),
            })
        })
        .transpose()
}

const PROJECT_COLS: &str = "id, name, public_key, created_at, allowed_origins";
const USER_COLS: &str = "id, username, role, created_at";
const TOKEN_COLS: &str = "id, name, scope, prefix, created_at, last_used_at";

fn project_from(row: &Row) -> Result<Project> {
    Ok(Project {
        id: ProjectId(row.req_int(0)?),
        name: row.req_text(1)?,
        public_key: ProjectKey::parse(&row.req_text(2)?)
            .ok_or_else(|| StoreError::database("malformed stored project key"))?,
        created_at: Timestamp(row.req_int(3)?),
        allowed_origins: origins_from_text(&row.req_text(4)?),
    })
}

fn user_from(row: &Row) -> Result<User> {
    Ok(User {
        id: row.req_int(0)?,
        username: row.req_text(1)?,
        role: row.parsed::<Role>(2)?,
        created_at: Timestamp(row.req_int(3)?),
    })
}

fn token_from(row: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.req_int(0)?,
        name: row.req_text(1)?,
        scope: row.parsed::<Scope>(2)?,
        prefix: row.req_text(3)?,
        created_at: Timestamp(row.req_int(4)?),
        last_used_at: row.int(5)?.map(Timestamp),
    })
}

async fn project_by_id(tx: &mut dyn Tx, id: ProjectId) -> Result<Option<Project>> {
    let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE id = $1");
    tx.first_as(&sql, &[id.0.into()], project_from).await
}

/// Runs an `UPDATE projects … WHERE id = $N` and answers the project as it now is; the
/// change goes on the feed, so every instance drops what it cached of the project.
async fn update_project(
    tx: &mut dyn Tx,
    id: ProjectId,
    sql: &str,
    values: &[Value],
) -> Result<Project> {
    crate::sql::found(tx.execute(sql, values).await?, "project")?;
    crate::feed::record(tx, id, &crate::feed::FeedChange::Project, Timestamp::now()).await?;
    project_by_id(tx, id)
        .await?
        .ok_or(StoreError::NotFound("project"))
}

async fn user_by_id(tx: &mut dyn Tx, id: i64) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
    tx.first_as(&sql, &[id.into()], user_from).await
}

async fn insert_user(tx: &mut dyn Tx, user: &NewUser) -> Result<User> {
    let sql = format!(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4)
         RETURNING {USER_COLS}"
    );
    let values = [
        user.username.as_str().into(),
        user.password_hash.as_str().into(),
        user.role.as_str().into(),
        Timestamp::now().millis().into(),
    ];
    match tx.one(&sql, &values).await {
        Ok(row) => user_from(&row),
        Err(err) => {
            Err(err.or_conflict(|| format!("a user named {:?} already exists", user.username)))
        }
    }
}

fn project_name_taken(name: &str) -> impl FnOnce() -> String + '_ {
    move || format!("a project named {name:?} already exists")
}

async fn insert_project(tx: &mut dyn Tx, name: &str, key: &ProjectKey) -> Result<Project> {
    let sql = format!(
        "INSERT INTO projects (name, public_key, created_at) VALUES ($1, $2, $3)
         RETURNING {PROJECT_COLS}"
    );
    let values = [
        name.into(),
        key.as_str().into(),
        Timestamp::now().millis().into(),
    ];
    match tx.one(&sql, &values).await {
        Ok(row) => project_from(&row),
        Err(err) => Err(err.or_conflict(project_name_taken(name))),
    }
}

async fn all_projects(tx: &mut dyn Tx) -> Result<Vec<Project>> {
    let sql = format!("SELECT {PROJECT_COLS} FROM projects ORDER BY id");
    tx.all(&sql, &[], project_from).await
}

async fn user_count(tx: &mut dyn Tx) -> Result<u64> {
    let n = tx
        .one("SELECT count(*) FROM users", &[])
        .await?
        .req_int(0)?;
    Ok(n as u64)
}

async fn meta_value(tx: &mut dyn Tx, key: &str) -> Result<Option<String>> {
    tx.first("SELECT value FROM meta WHERE key = $1", &[key.into()])
        .await?
        .map(|r| r.req_text(0))
        .transpose()
}

/// Stores `value` under `key` unless a value is there; answers the value in force.
async fn meta_keep_first(tx: &mut dyn Tx, key: &str, value: &str) -> Result<String> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[key.into(), value.into()],
    )
    .await?;
    meta_value(tx, key)
        .await?
        .ok_or(StoreError::NotFound("meta value"))
}

/// Makes the project unless one has its name already (made by an instance starting at the
/// same moment: on PostgreSQL the insert waits for that instance's commit, then does nothing).
async fn insert_project_unless_named(tx: &mut dyn Tx, name: &str, key: &ProjectKey) -> Result<()> {
    let values = [
        name.into(),
        key.as_str().into(),
        Timestamp::now().millis().into(),
    ];
    tx.execute(
        "INSERT INTO projects (name, public_key, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
        &values,
    )
    .await?;
    Ok(())
}

async fn install(tx: &mut dyn Tx, installation: &Installation) -> Result<Installed> {
    let found = all_projects(tx).await?;
    let mut missing = Vec::new();
    if found.is_empty() {
        missing.push(&installation.first_project);
    }
    if let Some(own) = &installation.own_project {
        if !found.iter().any(|p| p.name == own.0) {
            missing.push(own);
        }
    }
    for (name, key) in &missing {
        insert_project_unless_named(tx, name, key).await?;
    }
    // Read again after making any: the rows another instance made meanwhile are in it too.
    let projects = if missing.is_empty() {
        found
    } else {
        all_projects(tx).await?
    };
    let setup_token = if user_count(tx).await? == 0 {
        let (key, value) = &installation.setup_token;
        Some(meta_keep_first(tx, key, value).await?)
    } else {
        None
    };
    for (key, value) in &installation.settings {
        if meta_value(tx, key).await?.as_ref() != Some(value) {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[key.as_str().into(), value.as_str().into()],
            )
            .await?;
        }
    }
    Ok(Installed {
        projects,
        setup_token,
    })
}

#[async_trait]
impl<E: Engine> AccountStore for Db<E> {
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.read("meta", move |tx| {
            Box::pin(async move { meta_value(tx, &key).await })
        })
        .await
    }

    async fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write("meta_get_or_insert", move |tx| {
            Box::pin(async move { meta_keep_first(tx, &key, &value).await })
        })
        .await
    }

    async fn meta_delete(&self, key: &str) -> Result<()> {
        let key: Value = key.into();
        self.write("meta_delete", move |tx| {
            Box::pin(async move {
                tx.execute("DELETE FROM meta WHERE key = $1", &[key])
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn prepare_installation(&self, installation: &Installation) -> Result<Installed> {
        let installation = installation.clone();
        self.write("prepare_installation", move |tx| {
            Box::pin(async move { install(tx, &installation).await })
        })
        .await
    }

    async fn create_project(&self, name: &str, key: &ProjectKey) -> Result<Project> {
        let (name, key) = (name.to_string(), key.clone());
        self.write("create_project", move |tx| {
            Box::pin(async move { insert_project(tx, &name, &key).await })
        })
        .await
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        self.read("list_projects", |tx| Box::pin(all_projects(tx)))
            .await
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        self.read("project", move |tx| Box::pin(project_by_id(tx, id)))
            .await
    }

    async fn project_by_key(&self, key: &str) -> Result<Option<Project>> {
        let key: Value = key.to_ascii_lowercase().as_str().into();
        self.read("project_by_key", move |tx| {
            Box::pin(async move {
                let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE public_key = $1");
                tx.first_as(&sql, &[key], project_from).await
            })
        })
        .await
    }

    async fn rename_project(&self, id: ProjectId, name: &str) -> Result<Project> {
        let name = name.to_string();
        self.write("rename_project", move |tx| {
            Box::pin(async move {
                let sql = "UPDATE projects SET name = $1 WHERE id = $2";
                update_project(tx, id, sql, &[name.as_str().into(), id.0.into()])
                    .await
                    .map_err(|err| err.or_conflict(project_name_taken(&name)))
            })
        })
        .await
    }

    async fn set_project_key(&self, id: ProjectId, key: &ProjectKey) -> Result<Project> {
        let values = [key.as_str().into(), id.0.into()];
        self.write("set_project_key", move |tx| {
            Box::pin(async move {
                let sql = "UPDATE projects SET public_key = $1 WHERE id = $2";
                update_project(tx, id, sql, &values)
                    .await
                    .map_err(|err| err.or_conflict(|| "that key is already in use".into()))
            })
        })
        .await
    }

    async fn set_allowed_origins(&self, id: ProjectId, origins: &[String]) -> Result<Project> {
        let values = [origins.join("\n").as_str().into(), id.0.into()];
        self.write("set_allowed_origins", move |tx| {
            Box::pin(async move {
                let sql = "UPDATE projects SET allowed_origins = $1 WHERE id = $2";
                update_project(tx, id, sql, &values).await
            })
        })
        .await
    }

    async fn create_user(&self, user: &NewUser) -> Result<User> {
        let user = user.clone();
        self.write("create_user", move |tx| {
            Box::pin(async move { insert_user(tx, &user).await })
        })
        .await
    }

    async fn create_first_user(&self, user: &NewUser, forget_meta: &str) -> Result<User> {
        let (user, forget_meta) = (user.clone(), Value::from(forget_meta));
        self.write("create_first_user", move |tx| {
            Box::pin(async move {
                // Serialises concurrent first-run setups across instances (PostgreSQL): the
                // second one waits here, then sees the first one's user and refuses. SQLite's
                // single writer already runs them one after the other.
                if let Some(lock) = tx.lock_table("users") {
                    tx.execute(&lock, &[]).await?;
                }
                if user_count(tx).await? > 0 {
                    return Err(StoreError::Conflict(
                        "setup is already done: an account exists".into(),
                    ));
                }
                let created = insert_user(tx, &user).await?;
                tx.execute("DELETE FROM meta WHERE key = $1", &[forget_meta])
                    .await?;
                Ok(created)
            })
        })
        .await
    }

    async fn count_users(&self) -> Result<u64> {
        self.read("count_users", |tx| Box::pin(user_count(tx)))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.read("list_users", |tx| {
            Box::pin(async move {
                let sql = format!("SELECT {USER_COLS} FROM users ORDER BY username");
                tx.all(&sql, &[], user_from).await
            })
        })
        .await
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        self.read("user", move |tx| Box::pin(user_by_id(tx, id)))
            .await
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let username: Value = username.into();
        self.read("credentials", move |tx| {
            Box::pin(async move {
                let sql =
                    format!("SELECT {USER_COLS}, password_hash FROM users WHERE username = $1");
                let Some(row) = tx.first(&sql, &[username]).await? else {
                    return Ok(None);
                };
                Ok(Some(Credentials {
                    user: user_from(&row)?,
                    password_hash: row.req_text(4)?,
                }))
            })
        })
        .await
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        let hash: Value = password_hash.into();
        self.write("set_password", move |tx| {
            Box::pin(async move {
                let sql = "UPDATE users SET password_hash = $1 WHERE id = $2";
                crate::sql::found(tx.execute(sql, &[hash, user_id.into()]).await?, "user")?;
                tx.execute("DELETE FROM sessions WHERE user_id = $1", &[user_id.into()])
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn set_role(&self, user_id: i64, role: Role) -> Result<User> {
        self.write("set_role", move |tx| {
            Box::pin(async move {
                let sql = "UPDATE users SET role = $1 WHERE id = $2";
                let values = [role.as_str().into(), user_id.into()];
                crate::sql::found(tx.execute(sql, &values).await?, "user")?;
                user_by_id(tx, user_id)
                    .await?
                    .ok_or(StoreError::NotFound("user"))
            })
        })
        .await
    }

    async fn delete_user(&self, user_id: i64) -> Result<()> {
        self.write("delete_user", move |tx| {
            Box::pin(async move {
                let sql = "DELETE FROM users WHERE id = $1";
                crate::sql::found(tx.execute(sql, &[user_id.into()]).await?, "user")
            })
        })
        .await
    }

    async fn create_session(&self, session: &NewSession) -> Result<()> {
        let values = [
            session.token_hash.as_str().into(),
            session.user_id.into(),
            session.csrf_token.as_str().into(),
            Timestamp::now().millis().into(),
            session.expires_at.millis().into(),
        ];
        self.write("create_session", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &values,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>> {
        let values = [token_hash.into(), now.millis().into()];
        self.read("session", move |tx| {
            Box::pin(async move {
                let sql = "SELECT u.id, u.username, u.role, u.created_at, s.csrf_token,
                                  s.expires_at
                           FROM sessions s JOIN users u ON u.id = s.user_id
                           WHERE s.token_hash = $1 AND s.expires_at > $2";
                let Some(row) = tx.first(sql, &values).await? else {
                    return Ok(None);
                };
                Ok(Some(Session {
                    user: user_from(&row)?,
                    csrf_token: row.req_text(4)?,
                    expires_at: Timestamp(row.req_int(5)?),
                }))
            })
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let token_hash: Value = token_hash.into();
        self.write("delete_session", move |tx| {
            Box::pin(async move {
                tx.execute("DELETE FROM sessions WHERE token_hash = $1", &[token_hash])
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn login_failures(&self, keys: &[String]) -> Result<Vec<(String, Failures)>> {
        let keys = keys.to_vec();
        self.read("login_failures", move |tx| {
            Box::pin(async move {
                let mut found = Vec::new();
                for key in keys {
                    if let Some(f) = failures_of(tx, &key, "").await? {
                        found.push((key, f));
                    }
                }
                Ok(found)
            })
        })
        .await
    }

    async fn record_login_failure(&self, keys: &[String], now: Timestamp) -> Result<()> {
        let keys = keys.to_vec();
        self.write("record_login_failure", move |tx| {
            Box::pin(async move {
                let lock = tx.lock_rows();
                for key in keys {
                    if !lock.is_empty() {
                        // Where failures are recorded at once (instances on one PostgreSQL), a
                        // key seen for the first time is stored empty first, so a concurrent
                        // failure waits for this one and adds to it instead of overwriting it.
                        // Empty (never failed, long ago) counts as no failure.
                        tx.execute(
                            "INSERT INTO login_failures (key, count, last_at, blocked_until) \
                             VALUES ($1, 0, 0, 0) ON CONFLICT (key) DO NOTHING",
                            &[key.as_str().into()],
                        )
                        .await?;
                    }
                    let next = login_limiter::failed(failures_of(tx, &key, lock).await?, now);
                    tx.execute(
                        "INSERT INTO login_failures (key, count, last_at, blocked_until) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
                         count = excluded.count, last_at = excluded.last_at, \
                         blocked_until = excluded.blocked_until",
                        &[
                            key.as_str().into(),
                            i64::from(next.count).into(),
                            next.last.millis().into(),
                            next.blocked_until.millis().into(),
                        ],
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn clear_login_failures(&self, keys: &[String]) -> Result<()> {
        let keys = keys.to_vec();
        self.write("clear_login_failures", move |tx| {
            Box::pin(async move {
                for key in keys {
                    tx.execute(
                        "DELETE FROM login_failures WHERE key = $1",
                        &[key.as_str().into()],
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn forget_login_failures(&self, before: Timestamp) -> Result<u64> {
        self.write("forget_login_failures", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM login_failures WHERE last_at < $1",
                    &[before.millis().into()],
                )
                .await
            })
        })
        .await
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        self.write("delete_expired_sessions", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM sessions WHERE expires_at <= $1",
                    &[now.millis().into()],
                )
                .await
            })
        })
        .await
    }

    async fn create_api_token(&self, token: &NewApiToken) -> Result<ApiToken> {
        let values = [
            token.name.as_str().into(),
            token.scope.as_str().into(),
            token.token_hash.as_str().into(),
            token.prefix.as_str().into(),
            Timestamp::now().millis().into(),
        ];
        self.write("create_api_token", move |tx| {
            Box::pin(async move {
                let sql = format!(
                    "INSERT INTO api_tokens (name, scope, token_hash, prefix, created_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {TOKEN_COLS}"
                );
                token_from(&tx.one(&sql, &values).await?)
            })
        })
        .await
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.read("list_api_tokens", |tx| {
            Box::pin(async move {
                let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY id");
                tx.all(&sql, &[], token_from).await
            })
        })
        .await
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let token_hash: Value = token_hash.into();
        self.read("api_token_by_hash", move |tx| {
            Box::pin(async move {
                let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = $1");
                tx.first_as(&sql, &[token_hash], token_from).await
            })
        })
        .await
    }

    async fn touch_api_token(&self, id: i64, now: Timestamp) -> Result<()> {
        self.write("touch_api_token", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2",
                    &[now.millis().into(), id.into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn revoke_api_token(&self, id: i64) -> Result<()> {
        self.write("revoke_api_token", move |tx| {
            Box::pin(async move {
                let sql = "DELETE FROM api_tokens WHERE id = $1";
                crate::sql::found(tx.execute(sql, &[id.into()]).await?, "API token")
            })
        })
        .await
    }
}
