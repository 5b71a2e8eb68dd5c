//! The embedded backend: one SQLite file in WAL mode, one writer thread, a pool of readers.
//!
//! Writes go through [`writer::Writer`] (group commit, acknowledged after commit); reads go
//! through [`readers::Readers`]. Every method below is one closure handed to one of the two.

mod checkpoint;
mod jobs;
mod logs;
mod readers;
mod tx;
mod writer;

use crate::alerts::{self, Channel, Delivery, Firing, NewDelivery, NewRule, Rule};
use crate::celery::{self, CeleryApplied, CeleryNews, TaskEvent, TaskFilter, WorkerPeriod};
use crate::errors;
use crate::migrations::{self, Migration};
use crate::monitors::{self, CheckInReport, Monitor, MonitorRun, RunChange};
use crate::tx::run_now;
use crate::{
    Backend, BlockFilter, BlockMeta, Credentials, ErrorBatch, ErrorSettings, ErrorsWritten,
    EventFilter, EventMeta, IssueFilter, IssuePage, ItemFilter, ItemPage, ItemsAdded, JobChange,
    JobFilter, JobPage, LogSource, NewApiToken, NewLogBlock, NewSession, NewUser, Result, Session,
    Store, StoreError,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use tx::SqliteTx;
use vigie_core::alert::Target;
use vigie_core::issue::{Issue, StatusChange};
use vigie_core::job::{JobMessage, JobUpdate};
use vigie_core::monitor::MonitorConfig;
use vigie_core::project::origins_from_text;
use vigie_core::{
    ApiToken, Job, NewItem, Project, ProjectId, ProjectKey, Role, Scope, Timestamp, User,
};

/// Read-only connections kept for parallel reads. Two cores here, small servers in production:
/// four covers concurrent page loads without holding much memory.
const READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    writer: writer::Writer,
    readers: readers::Readers,
    checkpointer: checkpoint::Checkpointer,
}

impl SqliteStore {
    /// Opens the database at `path`, creating its directory, the file and the schema as needed.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking({
            let path = path.clone();
            move || open_writer(&path)
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
        Ok(SqliteStore {
            writer: writer::Writer::start(conn)?,
            readers: readers::Readers::new(&path, READERS),
            checkpointer: checkpoint::Checkpointer::start(&path)?,
            path,
        })
    }

    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.readers.read(work).await
    }
}

fn open_error(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Open {
        target: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn open_writer(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| open_error(path, e))?;
    }
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    conn.execute_batch(
        // WAL: readers never block the writer and the writer never blocks readers.
        "PRAGMA journal_mode = WAL;
         -- FULL: a commit is on disk before it is acknowledged, as Vigie promises its clients.
         -- Group commit makes this affordable: one fsync covers a whole batch of writes.
         PRAGMA synchronous = FULL;
         -- Sessions of a deleted user go with it; SQLite enforces references only when asked.
         PRAGMA foreign_keys = ON;
         -- Offline admin commands (`vigie user add`) may hold the lock briefly: wait, don't fail.
         PRAGMA busy_timeout = 5000;
         -- 8 MiB of page cache for the writer: enough for index pages, small for the idle RSS.
         PRAGMA cache_size = -8000;
         -- Checkpoints run on their own thread (see checkpoint.rs), never inside a commit.
         PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(|e| open_error(path, e))?;
    migrate(&conn, migrations::SQLITE)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(path, e))?;
    conn.execute_batch(
        // Readers wait out a checkpoint rather than fail.
        "PRAGMA busy_timeout = 5000;
         -- 2 MiB each: reads here are small and indexed; memory stays low with four readers.
         PRAGMA cache_size = -2000;",
    )?;
    Ok(conn)
}

fn migrate(conn: &Connection, list: &[Migration]) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let current: u32 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let known = list.last().map_or(0, |m| m.version);
    if current > known {
        return Err(migrations::too_new(current, known));
    }
    for m in list.iter().filter(|m| m.version > current) {
        let apply = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            conn.execute_batch(m.sql)?;
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, Timestamp::now().millis()],
            )?;
            conn.execute_batch("COMMIT")
        };
        if let Err(e) = apply() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Migrate {
                version: m.version,
                reason: e.to_string(),
            });
        }
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied sqlite migration"
        );
    }
    Ok(())
}

/// Turns a UNIQUE violation into a `Conflict` with `message`, other errors into `Database`.
fn unique(message: impl FnOnce() -> String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |err| match err.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(message()),
        _ => err.into(),
    }
}

fn parse_col<T: std::str::FromStr>(row: &Row, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let raw: String = row.get(idx)?;
    raw.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

const PROJECT_COLS: &str = "id, name, public_key, created_at, allowed_origins";
fn project_row(row: &Row) -> rusqlite::Result<Project> {
    let key: String = row.get(2)?;
    Ok(Project {
        id: ProjectId(row.get(0)?),
        name: row.get(1)?,
        public_key: ProjectKey::parse(&key).ok_or(rusqlite::Error::InvalidColumnType(
            2,
            "public_key".into(),
            rusqlite::types::Type::Text,
        ))?,
        created_at: Timestamp(row.get(3)?),
        allowed_origins: origins_from_text(&row.get::<_, String>(4)?),
    })
}

const USER_COLS: &str = "id, username, role, created_at";
fn user_row(row: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        role: parse_col(row, 2)?,
        created_at: Timestamp(row.get(3)?),
    })
}

const TOKEN_COLS: &str = "id, name, scope, prefix, created_at, last_used_at";
fn token_row(row: &Row) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: row.get(0)?,
        name: row.get(1)?,
        scope: parse_col::<Scope>(row, 2)?,
        prefix: row.get(3)?,
        created_at: Timestamp(row.get(4)?),
        last_used_at: row.get::<_, Option<i64>>(5)?.map(Timestamp),
    })
}

fn project_by_id(conn: &Connection, id: ProjectId) -> Result<Project> {
    conn.query_row(
        &format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ?1"),
        [id.0],
        project_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("project"))
}

fn user_by_id(conn: &Connection, id: i64) -> Result<Option<User>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
            [id],
            user_row,
        )
        .optional()?)
}

fn insert_user(conn: &Connection, user: &NewUser) -> Result<User> {
    conn.query_row(
        &format!(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)
             RETURNING {USER_COLS}"
        ),
        params![
            user.username,
            user.password_hash,
            user.role.as_str(),
            Timestamp::now().millis()
        ],
        user_row,
    )
    .map_err(unique(|| {
        format!("a user named {:?} already exists", user.username)
    }))
}

fn exactly_one(changed: usize, what: &'static str) -> Result<()> {
    if changed == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn database_size(&self) -> Result<u64> {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Ok(size(&self.path) + size(&wal))
    }

    fn write_queue_depth(&self) -> usize {
        self.writer.queue_depth()
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close();
        self.checkpointer.stop();
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.read(move |c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    async fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )?;
            Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
        })
        .await
    }

    async fn meta_delete(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.write(move |c| {
            c.execute("DELETE FROM meta WHERE key = ?1", [key])?;
            Ok(())
        })
        .await
    }

    async fn create_project(&self, name: &str, key: &ProjectKey) -> Result<Project> {
        let (name, key) = (name.to_string(), key.clone());
        self.write(move |c| {
            c.query_row(
                &format!(
                    "INSERT INTO projects (name, public_key, created_at) VALUES (?1, ?2, ?3)
                     RETURNING {PROJECT_COLS}"
                ),
                params![name, key.as_str(), Timestamp::now().millis()],
                project_row,
            )
            .map_err(unique(|| {
                format!("a project named {name:?} already exists")
            }))
        })
        .await
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        self.read(|c| {
            let mut stmt =
                c.prepare(&format!("SELECT {PROJECT_COLS} FROM projects ORDER BY id"))?;
            let rows = stmt.query_map([], project_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        self.read(move |c| match project_by_id(c, id) {
            Err(StoreError::NotFound(_)) => Ok(None),
            other => other.map(Some),
        })
        .await
    }

    async fn project_by_key(&self, key: &str) -> Result<Option<Project>> {
        let key = key.to_ascii_lowercase();
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {PROJECT_COLS} FROM projects WHERE public_key = ?1"),
                [key],
                project_row,
            )
            .optional()?)
        })
        .await
    }

    async fn rename_project(&self, id: ProjectId, name: &str) -> Result<Project> {
        let name = name.to_string();
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE projects SET name = ?1 WHERE id = ?2",
                    params![name, id.0],
                )
                .map_err(unique(|| {
                    format!("a project named {name:?} already exists")
                }))?;
            exactly_one(changed, "project")?;
            project_by_id(c, id)
        })
        .await
    }

    async fn set_project_key(&self, id: ProjectId, key: &ProjectKey) -> Result<Project> {
        let key = key.clone();
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE projects SET public_key = ?1 WHERE id = ?2",
                    params![key.as_str(), id.0],
                )
                .map_err(unique(|| "that key is already in use".to_string()))?;
            exactly_one(changed, "project")?;
            project_by_id(c, id)
        })
        .await
    }

    async fn set_allowed_origins(&self, id: ProjectId, origins: &[String]) -> Result<Project> {
        let origins = origins.join("\n");
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE projects SET allowed_origins = ?1 WHERE id = ?2",
                params![origins, id.0],
            )?;
            exactly_one(changed, "project")?;
            project_by_id(c, id)
        })
        .await
    }

    async fn create_user(&self, user: &NewUser) -> Result<User> {
        let user = user.clone();
        self.write(move |c| insert_user(c, &user)).await
    }

    async fn create_first_user(&self, user: &NewUser, forget_meta: &str) -> Result<User> {
        let (user, forget_meta) = (user.clone(), forget_meta.to_string());
        // The writer is the only writer, so check-then-insert inside one operation is atomic.
        self.write(move |c| {
            let users: i64 = c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
            if users > 0 {
                return Err(StoreError::Conflict(
                    "setup is already done: an account exists".into(),
                ));
            }
            let created = insert_user(c, &user)?;
            c.execute("DELETE FROM meta WHERE key = ?1", [forget_meta])?;
            Ok(created)
        })
        .await
    }

    async fn count_users(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut stmt =
                c.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY username"))?;
            let rows = stmt.query_map([], user_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        self.read(move |c| user_by_id(c, id)).await
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let username = username.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS}, password_hash FROM users WHERE username = ?1"),
                [username],
                |row| {
                    Ok(Credentials {
                        user: user_row(row)?,
                        password_hash: row.get(4)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        let hash = password_hash.to_string();
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![hash, user_id],
            )?;
            exactly_one(changed, "user")?;
            c.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            Ok(())
        })
        .await
    }

    async fn set_role(&self, user_id: i64, role: Role) -> Result<User> {
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE users SET role = ?1 WHERE id = ?2",
                params![role.as_str(), user_id],
            )?;
            exactly_one(changed, "user")?;
            user_by_id(c, user_id)?.ok_or(StoreError::NotFound("user"))
        })
        .await
    }

    async fn delete_user(&self, user_id: i64) -> Result<()> {
        self.write(move |c| {
            let changed = c.execute("DELETE FROM users WHERE id = ?1", [user_id])?;
            exactly_one(changed, "user")
        })
        .await
    }

    async fn create_session(&self, session: &NewSession) -> Result<()> {
        let s = session.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    s.token_hash,
                    s.user_id,
                    s.csrf_token,
                    Timestamp::now().millis(),
                    s.expires_at.millis()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>> {
        let token_hash = token_hash.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT u.id, u.username, u.role, u.created_at, s.csrf_token, s.expires_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                params![token_hash, now.millis()],
                |row| {
                    Ok(Session {
                        user: user_row(row)?,
                        csrf_token: row.get(4)?,
                        expires_at: Timestamp(row.get(5)?),
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let token_hash = token_hash.to_string();
        self.write(move |c| {
            c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        self.write(move |c| {
            Ok(c.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1",
                [now.millis()],
            )? as u64)
        })
        .await
    }

    async fn create_api_token(&self, token: &NewApiToken) -> Result<ApiToken> {
        let t = token.clone();
        self.write(move |c| {
            Ok(c.query_row(
                &format!(
                    "INSERT INTO api_tokens (name, scope, token_hash, prefix, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {TOKEN_COLS}"
                ),
                params![
                    t.name,
                    t.scope.as_str(),
                    t.token_hash,
                    t.prefix,
                    Timestamp::now().millis()
                ],
                token_row,
            )?)
        })
        .await
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.read(|c| {
            let mut stmt =
                c.prepare(&format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY id"))?;
            let rows = stmt.query_map([], token_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let token_hash = token_hash.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = ?1"),
                [token_hash],
                token_row,
            )
            .optional()?)
        })
        .await
    }

    async fn touch_api_token(&self, id: i64, now: Timestamp) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2",
                params![now.millis(), id],
            )?;
            Ok(())
        })
        .await
    }

    async fn revoke_api_token(&self, id: i64) -> Result<()> {
        self.write(move |c| {
            let changed = c.execute("DELETE FROM api_tokens WHERE id = ?1", [id])?;
            exactly_one(changed, "API token")
        })
        .await
    }

    async fn create_job(&self, job: &Job, read_token_hash: &str) -> Result<Job> {
        let (job, hash) = (job.clone(), read_token_hash.to_string());
        self.write(move |c| jobs::create(c, &job, &hash)).await
    }

    async fn job(&self, project: ProjectId, id: &str) -> Result<Option<Job>> {
        let id = id.to_string();
        self.read(move |c| jobs::find(c, project, &id)).await
    }

    async fn job_by_read_token(&self, token_hash: &str) -> Result<Option<Job>> {
        let hash = token_hash.to_string();
        self.read(move |c| jobs::by_read_token(c, &hash)).await
    }

    async fn update_job(
        &self,
        project: ProjectId,
        id: &str,
        update: &JobUpdate,
        now: Timestamp,
    ) -> Result<JobChange> {
        let (id, update) = (id.to_string(), update.clone());
        self.write(move |c| jobs::update(c, project, &id, &update, now))
            .await
    }

    async fn add_items(
        &self,
        project: ProjectId,
        id: &str,
        items: Vec<NewItem>,
        now: Timestamp,
    ) -> Result<ItemsAdded> {
        let id = id.to_string();
        self.write(move |c| jobs::add_items(c, project, &id, items, now))
            .await
    }

    async fn job_messages(&self, job: &Job, limit: u32) -> Result<Vec<JobMessage>> {
        let job = job.clone();
        self.read(move |c| jobs::messages(c, &job, limit)).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<JobPage> {
        let filter = filter.clone();
        self.read(move |c| jobs::list(c, &filter)).await
    }

    async fn list_items(&self, filter: &ItemFilter) -> Result<ItemPage> {
        let filter = filter.clone();
        self.read(move |c| jobs::list_items(c, &filter)).await
    }

    async fn mark_stalled_jobs(&self, now: Timestamp) -> Result<Vec<JobChange>> {
        self.write(move |c| jobs::mark_stalled(c, now)).await
    }

    async fn write_log_blocks(
        &self,
        project: ProjectId,
        blocks: Vec<NewLogBlock>,
        replacing: Vec<i64>,
    ) -> Result<Vec<i64>> {
        self.write(move |c| logs::write_blocks(c, project, &blocks, &replacing))
            .await
    }

    async fn log_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockMeta>> {
        let filter = filter.clone();
        self.read(move |c| logs::blocks(c, &filter)).await
    }

    async fn log_block_data(&self, ids: Vec<i64>) -> Result<Vec<(i64, Vec<u8>)>> {
        self.read(move |c| logs::block_data(c, &ids)).await
    }

    async fn log_sources(&self, project: ProjectId) -> Result<Vec<LogSource>> {
        self.read(move |c| logs::sources(c, project)).await
    }

    async fn delete_log_blocks(&self, ids: Vec<i64>) -> Result<u64> {
        self.write(move |c| logs::delete_blocks(c, &ids, false))
            .await
    }

    async fn delete_log_source(&self, project: ProjectId, source: i64) -> Result<()> {
        self.write(move |c| logs::delete_source(c, project, source))
            .await
    }

    // --- errors and performance: the shared logic of `crate::errors` ---

    async fn write_errors(&self, batch: ErrorBatch, now: Timestamp) -> Result<ErrorsWritten> {
        self.write(move |conn| run_now(errors::write_batch(&mut SqliteTx(conn), batch, now)))
            .await
    }

    async fn prune_errors(&self, before: Timestamp) -> Result<u64> {
        self.write(move |conn| run_now(errors::prune(&mut SqliteTx(conn), before)))
            .await
    }

    async fn error_settings(&self, project: ProjectId) -> Result<ErrorSettings> {
        self.read(move |conn| run_now(errors::error_settings(&mut SqliteTx(conn), project)))
            .await
    }

    async fn set_error_settings(&self, project: ProjectId, settings: &ErrorSettings) -> Result<()> {
        let settings = settings.clone();
        self.write(move |conn| {
            run_now(errors::set_error_settings(
                &mut SqliteTx(conn),
                project,
                &settings,
            ))
        })
        .await
    }

    async fn list_issues(&self, filter: &IssueFilter) -> Result<IssuePage> {
        let filter = filter.clone();
        self.read(move |conn| run_now(errors::list_issues(&mut SqliteTx(conn), &filter)))
            .await
    }

    async fn issue(&self, project: ProjectId, id: i64) -> Result<Option<Issue>> {
        self.read(move |conn| run_now(errors::issue(&mut SqliteTx(conn), project, id)))
            .await
    }

    async fn set_issue_status(
        &self,
        project: ProjectId,
        id: i64,
        change: &StatusChange,
    ) -> Result<Issue> {
        let change = change.clone();
        self.write(move |conn| {
            run_now(errors::set_issue_status(
                &mut SqliteTx(conn),
                project,
                id,
                &change,
            ))
        })
        .await
    }

    async fn issue_tags(&self, issue: i64) -> Result<Vec<errors::TagCount>> {
        self.read(move |conn| run_now(errors::issue_tags(&mut SqliteTx(conn), issue)))
            .await
    }

    async fn issue_hours(
        &self,
        issues: Vec<i64>,
        since: Timestamp,
    ) -> Result<Vec<(i64, i64, i64)>> {
        self.read(move |conn| run_now(errors::issue_hours(&mut SqliteTx(conn), &issues, since)))
            .await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<EventMeta>> {
        let filter = filter.clone();
        self.read(move |conn| run_now(errors::events(&mut SqliteTx(conn), &filter)))
            .await
    }

    async fn event(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(EventMeta, Vec<u8>)>> {
        let event_id = event_id.to_string();
        self.read(move |conn| run_now(errors::event(&mut SqliteTx(conn), project, &event_id)))
            .await
    }

    async fn transactions(
        &self,
        project: ProjectId,
        since: Timestamp,
        until: Timestamp,
        buckets: usize,
    ) -> Result<Vec<errors::TransactionStats>> {
        self.read(move |conn| {
            run_now(errors::transactions(
                &mut SqliteTx(conn),
                project,
                since,
                until,
                buckets,
            ))
        })
        .await
    }

    async fn transaction_series(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        until: Timestamp,
        step_ms: i64,
    ) -> Result<Vec<(Timestamp, errors::TransactionStats)>> {
        let name = name.to_string();
        self.read(move |conn| {
            run_now(errors::transaction_series(
                &mut SqliteTx(conn),
                project,
                &name,
                since,
                until,
                step_ms,
            ))
        })
        .await
    }

    async fn transaction_samples(
        &self,
        project: ProjectId,
        name: Option<&str>,
        since: Timestamp,
        until: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<errors::SampleMeta>> {
        let name = name.map(str::to_string);
        self.read(move |conn| {
            run_now(errors::transaction_samples(
                &mut SqliteTx(conn),
                project,
                name.as_deref(),
                since,
                until,
                limit,
            ))
        })
        .await
    }

    async fn transaction_sample(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(errors::SampleMeta, Vec<u8>)>> {
        let event_id = event_id.to_string();
        self.read(move |conn| {
            run_now(errors::transaction_sample(
                &mut SqliteTx(conn),
                project,
                &event_id,
            ))
        })
        .await
    }

    async fn trace_samples(
        &self,
        project: ProjectId,
        trace_id: &str,
    ) -> Result<Vec<errors::SampleMeta>> {
        let trace_id = trace_id.to_string();
        self.read(move |conn| {
            run_now(errors::trace_samples(
                &mut SqliteTx(conn),
                project,
                &trace_id,
            ))
        })
        .await
    }

    async fn span_stats(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<errors::SpanStat>> {
        let name = name.to_string();
        self.read(move |conn| {
            run_now(errors::span_stats(
                &mut SqliteTx(conn),
                project,
                &name,
                since,
                limit,
            ))
        })
        .await
    }

    async fn release_health(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<errors::ReleaseHealth>> {
        self.read(move |conn| run_now(errors::release_health(&mut SqliteTx(conn), project, since)))
            .await
    }

    async fn dropped_events(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<errors::DroppedCount>> {
        self.read(move |conn| run_now(errors::dropped(&mut SqliteTx(conn), project, since)))
            .await
    }

    async fn feedback(
        &self,
        project: ProjectId,
        issue: Option<i64>,
        limit: u32,
    ) -> Result<Vec<errors::Feedback>> {
        self.read(move |conn| run_now(errors::feedback(&mut SqliteTx(conn), project, issue, limit)))
            .await
    }

    async fn create_channel(
        &self,
        project: ProjectId,
        name: &str,
        target: &Target,
        from_config: bool,
        now: Timestamp,
    ) -> Result<Channel> {
        let name = name.to_string();
        let target = target.clone();
        self.write(move |conn| {
            run_now(alerts::create_channel(
                &mut SqliteTx(conn),
                project,
                &name,
                &target,
                from_config,
                now,
            ))
        })
        .await
    }

    async fn list_channels(&self, project: ProjectId) -> Result<Vec<Channel>> {
        self.read(move |conn| run_now(alerts::list_channels(&mut SqliteTx(conn), project)))
            .await
    }

    async fn channel(&self, id: i64) -> Result<Option<Channel>> {
        self.read(move |conn| run_now(alerts::channel(&mut SqliteTx(conn), id)))
            .await
    }

    async fn delete_channel(&self, project: ProjectId, id: i64) -> Result<()> {
        self.write(move |conn| run_now(alerts::delete_channel(&mut SqliteTx(conn), project, id)))
            .await
    }

    async fn create_rule(
        &self,
        project: ProjectId,
        rule: &NewRule,
        now: Timestamp,
    ) -> Result<Rule> {
        let rule = rule.clone();
        self.write(move |conn| {
            run_now(alerts::create_rule(
                &mut SqliteTx(conn),
                project,
                &rule,
                now,
            ))
        })
        .await
    }

    async fn list_rules(&self, project: ProjectId) -> Result<Vec<Rule>> {
        self.read(move |conn| run_now(alerts::list_rules(&mut SqliteTx(conn), project)))
            .await
    }

    async fn update_rule(&self, project: ProjectId, id: i64, rule: &NewRule) -> Result<Rule> {
        let rule = rule.clone();
        self.write(move |conn| {
            run_now(alerts::update_rule(&mut SqliteTx(conn), project, id, &rule))
        })
        .await
    }

    async fn delete_rule(&self, project: ProjectId, id: i64) -> Result<()> {
        self.write(move |conn| run_now(alerts::delete_rule(&mut SqliteTx(conn), project, id)))
            .await
    }

    async fn mute_rule(
        &self,
        project: ProjectId,
        id: i64,
        until: Option<Timestamp>,
    ) -> Result<Rule> {
        self.write(move |conn| run_now(alerts::mute_rule(&mut SqliteTx(conn), project, id, until)))
            .await
    }

    async fn fire(
        &self,
        rule: i64,
        key: &str,
        at: Timestamp,
        firing: Firing,
    ) -> Result<Option<i64>> {
        let key = key.to_string();
        self.write(move |conn| run_now(alerts::fire(&mut SqliteTx(conn), rule, &key, at, firing)))
            .await
    }

    async fn enqueue(&self, deliveries: Vec<NewDelivery>) -> Result<Vec<i64>> {
        self.write(move |conn| run_now(alerts::enqueue(&mut SqliteTx(conn), &deliveries)))
            .await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: u32) -> Result<Vec<Delivery>> {
        self.read(move |conn| run_now(alerts::due_deliveries(&mut SqliteTx(conn), now, limit)))
            .await
    }

    async fn delivered(
        &self,
        id: i64,
        outcome: std::result::Result<(), String>,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        self.write(move |conn| {
            run_now(alerts::delivered(
                &mut SqliteTx(conn),
                id,
                outcome,
                retry_at,
                now,
            ))
        })
        .await
    }

    async fn list_deliveries(&self, project: ProjectId, limit: u32) -> Result<Vec<Delivery>> {
        self.read(move |conn| run_now(alerts::list_deliveries(&mut SqliteTx(conn), project, limit)))
            .await
    }

    async fn apply_celery(
        &self,
        project: ProjectId,
        news: Vec<CeleryNews>,
    ) -> Result<CeleryApplied> {
        self.write(move |conn| run_now(celery::apply(&mut SqliteTx(conn), project, &news)))
            .await
    }

    async fn celery_tasks(&self, filter: &TaskFilter) -> Result<Vec<vigie_core::celery::Task>> {
        let filter = filter.clone();
        self.read(move |conn| run_now(celery::tasks(&mut SqliteTx(conn), &filter)))
            .await
    }

    async fn celery_task(
        &self,
        project: ProjectId,
        uuid: &str,
    ) -> Result<Option<vigie_core::celery::Task>> {
        let uuid = uuid.to_string();
        self.read(move |conn| run_now(celery::task(&mut SqliteTx(conn), project, &uuid)))
            .await
    }

    async fn celery_task_events(&self, project: ProjectId, uuid: &str) -> Result<Vec<TaskEvent>> {
        let uuid = uuid.to_string();
        self.read(move |conn| run_now(celery::task_events(&mut SqliteTx(conn), project, &uuid)))
            .await
    }

    async fn celery_workers(&self, project: ProjectId) -> Result<Vec<vigie_core::celery::Worker>> {
        self.read(move |conn| run_now(celery::workers(&mut SqliteTx(conn), project)))
            .await
    }

    async fn celery_queues(&self, project: ProjectId) -> Result<Vec<String>> {
        self.read(move |conn| run_now(celery::queues(&mut SqliteTx(conn), project)))
            .await
    }

    async fn celery_worker_periods(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<WorkerPeriod>> {
        self.read(move |conn| run_now(celery::worker_periods(&mut SqliteTx(conn), project, since)))
            .await
    }

    async fn prune_celery(
        &self,
        tasks_before: Option<Timestamp>,
        workers_before: Option<Timestamp>,
    ) -> Result<u64> {
        self.write(move |conn| {
            run_now(celery::prune(
                &mut SqliteTx(conn),
                tasks_before,
                workers_before,
            ))
        })
        .await
    }

    async fn celery_task_names(&self, project: ProjectId) -> Result<Vec<String>> {
        self.read(move |conn| run_now(celery::task_names(&mut SqliteTx(conn), project)))
            .await
    }

    async fn configure_monitor(
        &self,
        project: ProjectId,
        slug: &str,
        config: &MonitorConfig,
        now: Timestamp,
    ) -> Result<Monitor> {
        let slug = slug.to_string();
        let config = config.clone();
        self.write(move |conn| {
            run_now(monitors::configure_monitor(
                &mut SqliteTx(conn),
                project,
                &slug,
                &config,
                now,
            ))
        })
        .await
    }

    async fn record_check_in(
        &self,
        project: ProjectId,
        report: &CheckInReport,
    ) -> Result<RunChange> {
        let report = report.clone();
        self.write(move |conn| {
            run_now(monitors::record_check_in(
                &mut SqliteTx(conn),
                project,
                &report,
            ))
        })
        .await
    }

    async fn check_monitors(&self, now: Timestamp) -> Result<Vec<RunChange>> {
        self.write(move |conn| run_now(monitors::check_monitors(&mut SqliteTx(conn), now)))
            .await
    }

    async fn list_monitors(&self, project: ProjectId) -> Result<Vec<Monitor>> {
        self.read(move |conn| run_now(monitors::list_monitors(&mut SqliteTx(conn), project)))
            .await
    }

    async fn monitor(&self, project: ProjectId, slug: &str) -> Result<Option<Monitor>> {
        let slug = slug.to_string();
        self.read(move |conn| run_now(monitors::monitor(&mut SqliteTx(conn), project, &slug)))
            .await
    }

    async fn monitor_runs(&self, ids: Vec<i64>, limit: u32) -> Result<Vec<MonitorRun>> {
        self.read(move |conn| run_now(monitors::monitor_runs(&mut SqliteTx(conn), &ids, limit)))
            .await
    }

    async fn set_run_job(&self, run: i64, job_id: &str) -> Result<()> {
        let job_id = job_id.to_string();
        self.write(move |conn| run_now(monitors::set_run_job(&mut SqliteTx(conn), run, &job_id)))
            .await
    }

    async fn set_monitor_paused(
        &self,
        project: ProjectId,
        slug: &str,
        paused: bool,
        now: Timestamp,
    ) -> Result<Monitor> {
        let slug = slug.to_string();
        self.write(move |conn| {
            run_now(monitors::set_monitor_paused(
                &mut SqliteTx(conn),
                project,
                &slug,
                paused,
                now,
            ))
        })
        .await
    }

    async fn delete_monitor(&self, project: ProjectId, slug: &str) -> Result<()> {
        let slug = slug.to_string();
        self.write(move |conn| {
            run_now(monitors::delete_monitor(
                &mut SqliteTx(conn),
                project,
                &slug,
            ))
        })
        .await
    }

    async fn attachments(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Vec<errors::AttachmentMeta>> {
        let event_id = event_id.to_string();
        self.read(move |conn| run_now(errors::attachments(&mut SqliteTx(conn), project, &event_id)))
            .await
    }

    async fn attachment(
        &self,
        project: ProjectId,
        id: i64,
    ) -> Result<Option<(errors::AttachmentMeta, Vec<u8>)>> {
        self.read(move |conn| run_now(errors::attachment(&mut SqliteTx(conn), project, id)))
            .await
    }
}
