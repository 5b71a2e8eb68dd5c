//! The shared backend: PostgreSQL through a pool of `tokio-postgres` connections.
//!
//! Several Vigie instances may point at one database. Each write is one transaction on a pooled
//! connection and returns after its commit; PostgreSQL batches concurrent commits itself.
//! Migrations run under an advisory lock so instances starting together apply each step once.

mod jobs;
mod logs;
mod tx;

use crate::alerts::{self, Channel, Delivery, Firing, NewDelivery, NewRule, Rule};
use crate::celery::{self, CeleryApplied, CeleryNews, TaskEvent, TaskFilter, WorkerPeriod};
use crate::errors;
use crate::migrations::{self, Migration};
use crate::monitors::{self, CheckInReport, Monitor, MonitorRun, RunChange};
use crate::{
    redact_url, Backend, BlockFilter, BlockMeta, Credentials, ErrorBatch, ErrorSettings,
    ErrorsWritten, EventFilter, EventMeta, IssueFilter, IssuePage, ItemFilter, ItemPage,
    ItemsAdded, JobChange, JobFilter, JobPage, LogSource, NewApiToken, NewLogBlock, NewSession,
    NewUser, Result, Session, Store, StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use tx::PgTx;
use vigie_core::alert::Target;
use vigie_core::issue::{Issue, StatusChange};
use vigie_core::job::{JobMessage, JobUpdate};
use vigie_core::monitor::MonitorConfig;
use vigie_core::project::origins_from_text;
use vigie_core::{
    ApiToken, Job, NewItem, Project, ProjectId, ProjectKey, Role, Scope, Timestamp, User,
};

/// Connections kept open. PostgreSQL's default limit is 100; a few instances of 16 fit.
const POOL_SIZE: usize = 16;
/// Key of the advisory lock held while migrating ("vigie" in ASCII).
const MIGRATION_LOCK: i64 = 0x0076_6967_6965;

pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    pub async fn open(url: &str) -> Result<PostgresStore> {
        let open_error = |reason: String| StoreError::Open {
            target: redact_url(url),
            reason,
        };
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| open_error(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        let client = pool
            .get()
            .await
            .map_err(|e| open_error(connect_reason(e)))?;
        migrate(&client, migrations::POSTGRES).await?;
        Ok(PostgresStore { pool })
    }

    async fn client(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Database(connect_reason(e)))
    }
}

/// deadpool wraps the interesting error; dig out the one that says what happened.
fn connect_reason(err: deadpool_postgres::PoolError) -> String {
    match err {
        deadpool_postgres::PoolError::Backend(e) => {
            let source = std::error::Error::source(&e).map(|s| format!(": {s}"));
            format!("{e}{}", source.unwrap_or_default())
        }
        other => other.to_string(),
    }
}

async fn migrate(client: &Object, list: &[Migration]) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = apply_migrations(client, list).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    outcome
}

async fn apply_migrations(client: &Object, list: &[Migration]) -> Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .await?;
    let current: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let current = current as u32;
    let known = list.last().map_or(0, |m| m.version);
    if current > known {
        return Err(migrations::too_new(current, known));
    }
    for m in list.iter().filter(|m| m.version > current) {
        let failed = |e: tokio_postgres::Error| StoreError::Migrate {
            version: m.version,
            reason: StoreError::from(e).to_string(),
        };
        // deadpool's Object derefs to a client; a transaction needs it mutably, so use SQL.
        client.batch_execute("BEGIN").await.map_err(failed)?;
        let step = async {
            client.batch_execute(m.sql).await?;
            client
                .execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    &[&(m.version as i32), &m.name, &Timestamp::now().millis()],
                )
                .await?;
            client.batch_execute("COMMIT").await
        };
        if let Err(e) = step.await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(failed(e));
        }
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied postgres migration"
        );
    }
    Ok(())
}

fn unique(message: impl FnOnce() -> String) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |err| match err.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(message()),
        _ => err.into(),
    }
}

fn parse<T: std::str::FromStr>(raw: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    raw.parse()
        .map_err(|e: T::Err| StoreError::Database(format!("unexpected stored value: {e}")))
}

const PROJECT_COLS: &str = "id, name, public_key, created_at, allowed_origins";
fn project_row(row: &Row) -> Result<Project> {
    let key: &str = row.get(2);
    Ok(Project {
        id: ProjectId(row.get(0)),
        name: row.get(1),
        public_key: ProjectKey::parse(key)
            .ok_or_else(|| StoreError::Database("malformed stored project key".into()))?,
        created_at: Timestamp(row.get(3)),
        allowed_origins: origins_from_text(row.get(4)),
    })
}

const USER_COLS: &str = "id, username, role, created_at";
fn user_row(row: &Row) -> Result<User> {
    Ok(User {
        id: row.get(0),
        username: row.get(1),
        role: parse::<Role>(row.get(2))?,
        created_at: Timestamp(row.get(3)),
    })
}

const TOKEN_COLS: &str = "id, name, scope, prefix, created_at, last_used_at";
fn token_row(row: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.get(0),
        name: row.get(1),
        scope: parse::<Scope>(row.get(2))?,
        prefix: row.get(3),
        created_at: Timestamp(row.get(4)),
        last_used_at: row.get::<_, Option<i64>>(5).map(Timestamp),
    })
}

fn exactly_one(changed: u64, what: &'static str) -> Result<()> {
    if changed == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

async fn insert_user(client: &impl GenericClient, user: &NewUser) -> Result<User> {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO users (username, password_hash, role, created_at)
                 VALUES ($1, $2, $3, $4) RETURNING {USER_COLS}"
            ),
            &[
                &user.username,
                &user.password_hash,
                &user.role.as_str(),
                &Timestamp::now().millis(),
            ],
        )
        .await
        .map_err(unique(|| {
            format!("a user named {:?} already exists", user.username)
        }))?;
    user_row(&row)
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<()> {
        self.client().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn database_size(&self) -> Result<u64> {
        let size: i64 = self
            .client()
            .await?
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?
            .get(0);
        Ok(size as u64)
    }

    fn write_queue_depth(&self) -> usize {
        let status = self.pool.status();
        status.waiting
    }

    async fn close(&self) {
        self.pool.close();
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await?;
        let row = client
            .query_one("SELECT value FROM meta WHERE key = $1", &[&key])
            .await?;
        Ok(row.get(0))
    }

    async fn meta_delete(&self, key: &str) -> Result<()> {
        self.client()
            .await?
            .execute("DELETE FROM meta WHERE key = $1", &[&key])
            .await?;
        Ok(())
    }

    async fn create_project(&self, name: &str, key: &ProjectKey) -> Result<Project> {
        let row = self
            .client()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO projects (name, public_key, created_at) VALUES ($1, $2, $3)
                     RETURNING {PROJECT_COLS}"
                ),
                &[&name, &key.as_str(), &Timestamp::now().millis()],
            )
            .await
            .map_err(unique(|| {
                format!("a project named {name:?} already exists")
            }))?;
        project_row(&row)
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {PROJECT_COLS} FROM projects ORDER BY id"),
                &[],
            )
            .await?;
        rows.iter().map(project_row).collect()
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {PROJECT_COLS} FROM projects WHERE id = $1"),
                &[&id.0],
            )
            .await?;
        row.as_ref().map(project_row).transpose()
    }

    async fn project_by_key(&self, key: &str) -> Result<Option<Project>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {PROJECT_COLS} FROM projects WHERE public_key = $1"),
                &[&key.to_ascii_lowercase()],
            )
            .await?;
        row.as_ref().map(project_row).transpose()
    }

    async fn rename_project(&self, id: ProjectId, name: &str) -> Result<Project> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("UPDATE projects SET name = $1 WHERE id = $2 RETURNING {PROJECT_COLS}"),
                &[&name, &id.0],
            )
            .await
            .map_err(unique(|| {
                format!("a project named {name:?} already exists")
            }))?;
        project_row(&row.ok_or(StoreError::NotFound("project"))?)
    }

    async fn set_project_key(&self, id: ProjectId, key: &ProjectKey) -> Result<Project> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "UPDATE projects SET public_key = $1 WHERE id = $2 RETURNING {PROJECT_COLS}"
                ),
                &[&key.as_str(), &id.0],
            )
            .await
            .map_err(unique(|| "that key is already in use".to_string()))?;
        project_row(&row.ok_or(StoreError::NotFound("project"))?)
    }

    async fn set_allowed_origins(&self, id: ProjectId, origins: &[String]) -> Result<Project> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "UPDATE projects SET allowed_origins = $1 WHERE id = $2 RETURNING {PROJECT_COLS}"
                ),
                &[&origins.join("\n"), &id.0],
            )
            .await?;
        project_row(&row.ok_or(StoreError::NotFound("project"))?)
    }

    async fn create_user(&self, user: &NewUser) -> Result<User> {
        insert_user(&self.client().await?, user).await
    }

    async fn create_first_user(&self, user: &NewUser, forget_meta: &str) -> Result<User> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Serialises concurrent first-run setups across instances: the second one waits here,
        // then sees the first one's user and refuses.
        tx.batch_execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        let users: i64 = tx
            .query_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0);
        if users > 0 {
            return Err(StoreError::Conflict(
                "setup is already done: an account exists".into(),
            ));
        }
        let created = insert_user(&tx, user).await?;
        tx.execute("DELETE FROM meta WHERE key = $1", &[&forget_meta])
            .await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn count_users(&self) -> Result<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {USER_COLS} FROM users ORDER BY username"),
                &[],
            )
            .await?;
        rows.iter().map(user_row).collect()
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
                &[&id],
            )
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {USER_COLS}, password_hash FROM users WHERE username = $1"),
                &[&username],
            )
            .await?;
        row.map(|r| {
            Ok(Credentials {
                user: user_row(&r)?,
                password_hash: r.get(4),
            })
        })
        .transpose()
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let changed = tx
            .execute(
                "UPDATE users SET password_hash = $1 WHERE id = $2",
                &[&password_hash, &user_id],
            )
            .await?;
        exactly_one(changed, "user")?;
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_role(&self, user_id: i64, role: Role) -> Result<User> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("UPDATE users SET role = $1 WHERE id = $2 RETURNING {USER_COLS}"),
                &[&role.as_str(), &user_id],
            )
            .await?;
        user_row(&row.ok_or(StoreError::NotFound("user"))?)
    }

    async fn delete_user(&self, user_id: i64) -> Result<()> {
        let changed = self
            .client()
            .await?
            .execute("DELETE FROM users WHERE id = $1", &[&user_id])
            .await?;
        exactly_one(changed, "user")
    }

    async fn create_session(&self, s: &NewSession) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &s.token_hash,
                    &s.user_id,
                    &s.csrf_token,
                    &Timestamp::now().millis(),
                    &s.expires_at.millis(),
                ],
            )
            .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT u.id, u.username, u.role, u.created_at, s.csrf_token, s.expires_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
                &[&token_hash, &now.millis()],
            )
            .await?;
        row.map(|r| {
            Ok(Session {
                user: user_row(&r)?,
                csrf_token: r.get(4),
                expires_at: Timestamp(r.get(5)),
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        self.client()
            .await?
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM sessions WHERE expires_at <= $1",
                &[&now.millis()],
            )
            .await?)
    }

    async fn create_api_token(&self, t: &NewApiToken) -> Result<ApiToken> {
        let row = self
            .client()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO api_tokens (name, scope, token_hash, prefix, created_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {TOKEN_COLS}"
                ),
                &[
                    &t.name,
                    &t.scope.as_str(),
                    &t.token_hash,
                    &t.prefix,
                    &Timestamp::now().millis(),
                ],
            )
            .await?;
        token_row(&row)
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY id"),
                &[],
            )
            .await?;
        rows.iter().map(token_row).collect()
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = $1"),
                &[&token_hash],
            )
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn touch_api_token(&self, id: i64, now: Timestamp) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2",
                &[&now.millis(), &id],
            )
            .await?;
        Ok(())
    }

    async fn revoke_api_token(&self, id: i64) -> Result<()> {
        let changed = self
            .client()
            .await?
            .execute("DELETE FROM api_tokens WHERE id = $1", &[&id])
            .await?;
        exactly_one(changed, "API token")
    }

    async fn create_job(&self, job: &Job, read_token_hash: &str) -> Result<Job> {
        jobs::create(&self.client().await?, job, read_token_hash).await
    }

    async fn job(&self, project: ProjectId, id: &str) -> Result<Option<Job>> {
        jobs::find(&self.client().await?, project, id).await
    }

    async fn job_by_read_token(&self, token_hash: &str) -> Result<Option<Job>> {
        jobs::by_read_token(&self.client().await?, token_hash).await
    }

    async fn update_job(
        &self,
        project: ProjectId,
        id: &str,
        update: &JobUpdate,
        now: Timestamp,
    ) -> Result<JobChange> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let change = jobs::update(&tx, project, id, update, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn add_items(
        &self,
        project: ProjectId,
        id: &str,
        items: Vec<NewItem>,
        now: Timestamp,
    ) -> Result<ItemsAdded> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let added = jobs::add_items(&tx, project, id, items, now).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn job_messages(&self, job: &Job, limit: u32) -> Result<Vec<JobMessage>> {
        jobs::messages(&self.client().await?, job, limit).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<JobPage> {
        jobs::list(&self.client().await?, filter).await
    }

    async fn list_items(&self, filter: &ItemFilter) -> Result<ItemPage> {
        jobs::list_items(&self.client().await?, filter).await
    }

    async fn mark_stalled_jobs(&self, now: Timestamp) -> Result<Vec<JobChange>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let changed = jobs::mark_stalled(&tx, now).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn write_log_blocks(
        &self,
        project: ProjectId,
        blocks: Vec<NewLogBlock>,
        replacing: Vec<i64>,
    ) -> Result<Vec<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let ids = logs::write_blocks(&tx, project, &blocks, &replacing).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn log_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockMeta>> {
        logs::blocks(&self.client().await?, filter).await
    }

    async fn log_block_data(&self, ids: Vec<i64>) -> Result<Vec<(i64, Vec<u8>)>> {
        logs::block_data(&self.client().await?, &ids).await
    }

    async fn log_sources(&self, project: ProjectId) -> Result<Vec<LogSource>> {
        logs::sources(&self.client().await?, project).await
    }

    async fn delete_log_blocks(&self, ids: Vec<i64>) -> Result<u64> {
        logs::delete_blocks(&self.client().await?, &ids, false).await
    }

    async fn delete_log_source(&self, project: ProjectId, source: i64) -> Result<()> {
        logs::delete_source(&self.client().await?, project, source).await
    }

    // --- errors and performance: the shared logic of `crate::errors` ---

    async fn write_errors(&self, batch: ErrorBatch, now: Timestamp) -> Result<ErrorsWritten> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = errors::write_batch(&mut PgTx(&tx), batch, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn prune_errors(&self, before: Timestamp) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = errors::prune(&mut PgTx(&tx), before).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn error_settings(&self, project: ProjectId) -> Result<ErrorSettings> {
        let client = self.client().await?;
        errors::error_settings(&mut PgTx(&client), project).await
    }

    async fn set_error_settings(&self, project: ProjectId, settings: &ErrorSettings) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = errors::set_error_settings(&mut PgTx(&tx), project, settings).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_issues(&self, filter: &IssueFilter) -> Result<IssuePage> {
        let client = self.client().await?;
        errors::list_issues(&mut PgTx(&client), filter).await
    }

    async fn issue(&self, project: ProjectId, id: i64) -> Result<Option<Issue>> {
        let client = self.client().await?;
        errors::issue(&mut PgTx(&client), project, id).await
    }

    async fn set_issue_status(
        &self,
        project: ProjectId,
        id: i64,
        change: &StatusChange,
    ) -> Result<Issue> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = errors::set_issue_status(&mut PgTx(&tx), project, id, change).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn issue_tags(&self, issue: i64) -> Result<Vec<errors::TagCount>> {
        let client = self.client().await?;
        errors::issue_tags(&mut PgTx(&client), issue).await
    }

    async fn issue_hours(
        &self,
        issues: Vec<i64>,
        since: Timestamp,
    ) -> Result<Vec<(i64, i64, i64)>> {
        let client = self.client().await?;
        errors::issue_hours(&mut PgTx(&client), &issues, since).await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<EventMeta>> {
        let client = self.client().await?;
        errors::events(&mut PgTx(&client), filter).await
    }

    async fn event(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(EventMeta, Vec<u8>)>> {
        let client = self.client().await?;
        errors::event(&mut PgTx(&client), project, event_id).await
    }

    async fn transactions(
        &self,
        project: ProjectId,
        since: Timestamp,
        until: Timestamp,
        buckets: usize,
    ) -> Result<Vec<errors::TransactionStats>> {
        let client = self.client().await?;
        errors::transactions(&mut PgTx(&client), project, since, until, buckets).await
    }

    async fn transaction_series(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        until: Timestamp,
        step_ms: i64,
    ) -> Result<Vec<(Timestamp, errors::TransactionStats)>> {
        let client = self.client().await?;
        errors::transaction_series(&mut PgTx(&client), project, name, since, until, step_ms).await
    }

    async fn transaction_samples(
        &self,
        project: ProjectId,
        name: Option<&str>,
        since: Timestamp,
        until: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<errors::SampleMeta>> {
        let client = self.client().await?;
        errors::transaction_samples(&mut PgTx(&client), project, name, since, until, limit).await
    }

    async fn transaction_sample(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(errors::SampleMeta, Vec<u8>)>> {
        let client = self.client().await?;
        errors::transaction_sample(&mut PgTx(&client), project, event_id).await
    }

    async fn trace_samples(
        &self,
        project: ProjectId,
        trace_id: &str,
    ) -> Result<Vec<errors::SampleMeta>> {
        let client = self.client().await?;
        errors::trace_samples(&mut PgTx(&client), project, trace_id).await
    }

    async fn span_stats(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<errors::SpanStat>> {
        let client = self.client().await?;
        errors::span_stats(&mut PgTx(&client), project, name, since, limit).await
    }

    async fn release_health(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<errors::ReleaseHealth>> {
        let client = self.client().await?;
        errors::release_health(&mut PgTx(&client), project, since).await
    }

    async fn dropped_events(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<errors::DroppedCount>> {
        let client = self.client().await?;
        errors::dropped(&mut PgTx(&client), project, since).await
    }

    async fn feedback(
        &self,
        project: ProjectId,
        issue: Option<i64>,
        limit: u32,
    ) -> Result<Vec<errors::Feedback>> {
        let client = self.client().await?;
        errors::feedback(&mut PgTx(&client), project, issue, limit).await
    }

    async fn create_channel(
        &self,
        project: ProjectId,
        name: &str,
        target: &Target,
        from_config: bool,
        now: Timestamp,
    ) -> Result<Channel> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome =
            alerts::create_channel(&mut PgTx(&tx), project, name, target, from_config, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_channels(&self, project: ProjectId) -> Result<Vec<Channel>> {
        let client = self.client().await?;
        alerts::list_channels(&mut PgTx(&client), project).await
    }

    async fn channel(&self, id: i64) -> Result<Option<Channel>> {
        let client = self.client().await?;
        alerts::channel(&mut PgTx(&client), id).await
    }

    async fn delete_channel(&self, project: ProjectId, id: i64) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = alerts::delete_channel(&mut PgTx(&tx), project, id).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn create_rule(
        &self,
        project: ProjectId,
        rule: &NewRule,
        now: Timestamp,
    ) -> Result<Rule> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = alerts::create_rule(&mut PgTx(&tx), project, rule, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_rules(&self, project: ProjectId) -> Result<Vec<Rule>> {
        let client = self.client().await?;
        alerts::list_rules(&mut PgTx(&client), project).await
    }

    async fn delete_rule(&self, project: ProjectId, id: i64) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = alerts::delete_rule(&mut PgTx(&tx), project, id).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn update_rule(&self, project: ProjectId, id: i64, rule: &NewRule) -> Result<Rule> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = alerts::update_rule(&mut PgTx(&tx), project, id, rule).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn mute_rule(
        &self,
        project: ProjectId,
        id: i64,
        until: Option<Timestamp>,
    ) -> Result<Rule> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = alerts::mute_rule(&mut PgTx(&tx), project, id, until).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn fire(
        &self,
        rule: i64,
        key: &str,
        at: Timestamp,
        firing: Firing,
    ) -> Result<Option<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = alerts::fire(&mut PgTx(&tx), rule, key, at, firing).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn enqueue(&self, deliveries: Vec<NewDelivery>) -> Result<Vec<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = alerts::enqueue(&mut PgTx(&tx), &deliveries).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn due_deliveries(&self, now: Timestamp, limit: u32) -> Result<Vec<Delivery>> {
        let client = self.client().await?;
        alerts::due_deliveries(&mut PgTx(&client), now, limit).await
    }

    async fn delivered(
        &self,
        id: i64,
        outcome: std::result::Result<(), String>,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = alerts::delivered(&mut PgTx(&tx), id, outcome, retry_at, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_deliveries(&self, project: ProjectId, limit: u32) -> Result<Vec<Delivery>> {
        let client = self.client().await?;
        alerts::list_deliveries(&mut PgTx(&client), project, limit).await
    }

    async fn apply_celery(
        &self,
        project: ProjectId,
        news: Vec<CeleryNews>,
    ) -> Result<CeleryApplied> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = celery::apply(&mut PgTx(&tx), project, &news).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn celery_tasks(&self, filter: &TaskFilter) -> Result<Vec<vigie_core::celery::Task>> {
        let client = self.client().await?;
        celery::tasks(&mut PgTx(&client), filter).await
    }

    async fn celery_task(
        &self,
        project: ProjectId,
        uuid: &str,
    ) -> Result<Option<vigie_core::celery::Task>> {
        let client = self.client().await?;
        celery::task(&mut PgTx(&client), project, uuid).await
    }

    async fn celery_task_events(&self, project: ProjectId, uuid: &str) -> Result<Vec<TaskEvent>> {
        let client = self.client().await?;
        celery::task_events(&mut PgTx(&client), project, uuid).await
    }

    async fn celery_workers(&self, project: ProjectId) -> Result<Vec<vigie_core::celery::Worker>> {
        let client = self.client().await?;
        celery::workers(&mut PgTx(&client), project).await
    }

    async fn celery_queues(&self, project: ProjectId) -> Result<Vec<String>> {
        let client = self.client().await?;
        celery::queues(&mut PgTx(&client), project).await
    }

    async fn celery_worker_periods(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<WorkerPeriod>> {
        let client = self.client().await?;
        celery::worker_periods(&mut PgTx(&client), project, since).await
    }

    async fn prune_celery(
        &self,
        tasks_before: Option<Timestamp>,
        workers_before: Option<Timestamp>,
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let dropped = celery::prune(&mut PgTx(&tx), tasks_before, workers_before).await?;
        tx.commit().await?;
        Ok(dropped)
    }

    async fn celery_task_names(&self, project: ProjectId) -> Result<Vec<String>> {
        let client = self.client().await?;
        celery::task_names(&mut PgTx(&client), project).await
    }

    async fn configure_monitor(
        &self,
        project: ProjectId,
        slug: &str,
        config: &MonitorConfig,
        now: Timestamp,
    ) -> Result<Monitor> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome =
            monitors::configure_monitor(&mut PgTx(&tx), project, slug, config, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn record_check_in(
        &self,
        project: ProjectId,
        report: &CheckInReport,
    ) -> Result<RunChange> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = monitors::record_check_in(&mut PgTx(&tx), project, report).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn check_monitors(&self, now: Timestamp) -> Result<Vec<RunChange>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = monitors::check_monitors(&mut PgTx(&tx), now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_monitors(&self, project: ProjectId) -> Result<Vec<Monitor>> {
        let client = self.client().await?;
        monitors::list_monitors(&mut PgTx(&client), project).await
    }

    async fn monitor(&self, project: ProjectId, slug: &str) -> Result<Option<Monitor>> {
        let client = self.client().await?;
        monitors::monitor(&mut PgTx(&client), project, slug).await
    }

    async fn monitor_runs(&self, ids: Vec<i64>, limit: u32) -> Result<Vec<MonitorRun>> {
        let client = self.client().await?;
        monitors::monitor_runs(&mut PgTx(&client), &ids, limit).await
    }

    async fn set_run_job(&self, run: i64, job_id: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = monitors::set_run_job(&mut PgTx(&tx), run, job_id).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn set_monitor_paused(
        &self,
        project: ProjectId,
        slug: &str,
        paused: bool,
        now: Timestamp,
    ) -> Result<Monitor> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome =
            monitors::set_monitor_paused(&mut PgTx(&tx), project, slug, paused, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn delete_monitor(&self, project: ProjectId, slug: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = monitors::delete_monitor(&mut PgTx(&tx), project, slug).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn attachments(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Vec<errors::AttachmentMeta>> {
        let client = self.client().await?;
        errors::attachments(&mut PgTx(&client), project, event_id).await
    }

    async fn attachment(
        &self,
        project: ProjectId,
        id: i64,
    ) -> Result<Option<(errors::AttachmentMeta, Vec<u8>)>> {
        let client = self.client().await?;
        errors::attachment(&mut PgTx(&client), project, id).await
    }
}

/// Helpers for tests that need a PostgreSQL database of their own: a fresh schema per test run,
/// selected through the connection's `search_path`, dropped at the end.
pub mod testing {
    use crate::{Result, StoreError};

    pub struct Scratch {
        base: String,
        schema: String,
    }

    impl Scratch {
        pub async fn create(base_url: &str, schema: &str) -> Result<Scratch> {
            let scratch = Scratch {
                base: base_url.to_string(),
                schema: schema.to_string(),
            };
            scratch
                .run(&format!("CREATE SCHEMA \"{}\"", scratch.schema))
                .await?;
            Ok(scratch)
        }

        /// The base URL with `search_path` set to the scratch schema.
        pub fn url(&self) -> String {
            let sep = if self.base.contains('?') { '&' } else { '?' };
            format!("{}{sep}options=-csearch_path%3D{}", self.base, self.schema)
        }

        pub async fn drop_schema(&self) -> Result<()> {
            self.run(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema))
                .await
        }

        async fn run(&self, sql: &str) -> Result<()> {
            let (client, conn) = tokio_postgres::connect(&self.base, tokio_postgres::NoTls)
                .await
                .map_err(|e| StoreError::Open {
                    target: crate::redact_url(&self.base),
                    reason: e.to_string(),
                })?;
            let driver = tokio::spawn(conn);
            client.batch_execute(sql).await?;
            drop(client);
            let _ = driver.await;
            Ok(())
        }
    }
}
