//! The shared engine: PostgreSQL through a pool of `tokio-postgres` connections.
//!
//! ```text
//!   Db::read  ─ Work ─▶ a pooled connection ─ PgTx
//!   Db::write ─ Work ─▶ a pooled connection ─ BEGIN ─ PgTx ─ COMMIT (or ROLLBACK on error)
//! ```
//!
//! Several Vigie instances may point at one database. Each write is one transaction on a pooled
//! connection and returns after its commit; PostgreSQL batches concurrent commits itself.
//! Migrations run under an advisory lock so instances starting together apply each step once.

mod tx;

use crate::engine::{Engine, Work};
use crate::migrations;
use crate::{redact_url, Backend, Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tx::PgTx;
use vigie_core::Timestamp;

/// Connections kept open. PostgreSQL's default limit is 100; a few instances of 16 fit.
const POOL_SIZE: usize = 16;
/// Key of the advisory lock held while migrating ("vigie" in ASCII).
const MIGRATION_LOCK: i64 = 0x0076_6967_6965;

/// First key of the advisory lock the leader holds ("lead" in ASCII); the second is the
/// schema's hash, so two Vigies in two schemas of one database each have a leader.
const LEADER_LOCK: i32 = 0x6c65_6164;

pub(crate) struct PgEngine {
    pool: Pool,
    /// For the leader's connection of its own, outside the pool.
    config: tokio_postgres::Config,
}

/// The leader's lock, held by a session of its own: a killed leader's session ends, and the
/// lock with it.
struct PgLead {
    client: tokio_postgres::Client,
}

#[async_trait::async_trait]
impl crate::lead::Lead for PgLead {
    async fn holds(&mut self) -> bool {
        !self.client.is_closed() && self.client.simple_query("SELECT 1").await.is_ok()
    }
}

impl PgEngine {
    pub(crate) async fn open(url: &str) -> Result<PgEngine> {
        let open_error = |reason: String| StoreError::Open {
            target: redact_url(url),
            reason,
        };
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| open_error(e.to_string()))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // The connection given back last is the one handed out next: a search, a page and
        // their refreshes then find their statements already prepared on it (and, met often
        // enough, planned once: PostgreSQL keeps a generic plan after five), where taking the
        // pool's connections in turn prepared and planned each statement on every one.
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .queue_mode(deadpool_postgres::QueueMode::Lifo)
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        let client = pool
            .get()
            .await
            .map_err(|e| open_error(connect_reason(&e)))?;
        migrate(&client).await?;
        Ok(PgEngine { pool, config })
    }

    async fn client(&self) -> Result<Object> {
        let client = self.pool.get().await.map_err(|e| StoreError::Database {
            message: connect_reason(&e),
            source: Some(std::sync::Arc::new(e)),
        })?;
        forget_statements_past(&client, STATEMENTS_PER_CONNECTION);
        Ok(client)
    }
}

/// Prepared statements one pooled connection keeps. Statements are prepared once per
/// connection and kept for its life, and PostgreSQL keeps each one's plans in that backend's
/// memory; searches make a statement shape per number of terms, so without a bound a reader
/// sending ever longer searches grew the backends by hundreds of MB. Vigie's own work keeps
/// about a hundred on a connection (sentry-sdk events and transactions, log batches, jobs and
/// every list read once, on PostgreSQL 15); with this bound, 8,000 searches of random shapes
/// leave the largest backend at 62 MB (shared buffers it touched included; 100 MB with a
/// bound of 1,000).
const STATEMENTS_PER_CONNECTION: usize = 500;

/// Drops every statement `client` prepared once they are more than `most` (dropped, each is
/// closed on the server and its plans freed); they are prepared again as they are met. All
/// at once rather than the least used: deadpool's cache keeps no order, and this happens
/// rarely enough that preparing the working set again costs nothing measurable.
fn forget_statements_past(client: &Object, most: usize) {
    if client.statement_cache.size() > most {
        tracing::info!(
            statements = client.statement_cache.size(),
            "a database connection forgets its prepared statements"
        );
        client.statement_cache.clear();
    }
}

/// deadpool wraps the interesting error; dig out the one that says what happened.
fn connect_reason(err: &deadpool_postgres::PoolError) -> String {
    match err {
        deadpool_postgres::PoolError::Backend(e) => {
            let source = std::error::Error::source(e).map(|s| format!(": {s}"));
            format!("{e}{}", source.unwrap_or_default())
        }
        other => other.to_string(),
    }
}

async fn migrate(client: &Object) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = apply_migrations(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    outcome
}

async fn apply_migrations(client: &Object) -> Result<()> {
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
    for m in migrations::pending(current as u32)? {
        let failed = |e: tokio_postgres::Error| StoreError::Migrate {
            version: m.version,
            reason: StoreError::from(e).to_string(),
        };
        // deadpool's Object derefs to a client; a transaction needs it mutably, so use SQL.
        client.batch_execute("BEGIN").await.map_err(failed)?;
        let step = async {
            client.batch_execute(&m.sql(Backend::Postgres)).await?;
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

impl Engine for PgEngine {
    async fn try_lead(&self) -> Result<Option<Box<dyn crate::lead::Lead>>> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!(%err, "the leader's database connection ended");
            }
        });
        let took: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))",
                &[&LEADER_LOCK],
            )
            .await?
            .get(0);
        // Not taken: the client is dropped here, and its session with it.
        Ok(took.then(|| Box::new(PgLead { client }) as Box<dyn crate::lead::Lead>))
    }

    async fn listen(&self) -> Result<Option<crate::lead::Listener>> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (send, payloads) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                        // A full queue means the reader is gone or far behind: drop this
                        // word rather than hold up the connection (the pages catch up on
                        // their next refresh).
                        if send.try_send(n.payload().to_string()).is_err() && send.is_closed() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        tracing::warn!(%err, "the listening database connection failed");
                        return;
                    }
                    None => return,
                }
            }
        });
        let schema: String = client
            .query_one("SELECT current_schema()", &[])
            .await?
            .get(0);
        let channel = format!("vigie_{schema}").replace('"', "\"\"");
        client
            .batch_execute(&format!("LISTEN \"{channel}\""))
            .await?;
        Ok(Some(crate::lead::Listener {
            payloads,
            _connection: Box::new(client),
        }))
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn read<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let client = self.client().await?;
        work(&mut PgTx(&client)).await
    }

    async fn write<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let mut client = self.client().await?;
        // Dropping an uncommitted transaction rolls it back: an error from `work` undoes its
        // writes, and a write dropped midway (a request cancelled) leaves nothing open on the
        // connection it gives back to the pool.
        let tx = client.transaction().await?;
        let outcome = work(&mut PgTx(&tx)).await?;
        tx.commit().await?;
        Ok(outcome)
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
        self.pool.status().waiting
    }

    async fn close(&self) {
        self.pool.close();
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
        /// A scratch schema named `prefix` and a random suffix on the database
        /// `VIGIE_TEST_POSTGRES_URL` names; `None`, said on stderr, when it is not set (the
        /// test is skipped).
        pub async fn from_env(prefix: &str) -> Option<Scratch> {
            let Ok(base) = std::env::var("VIGIE_TEST_POSTGRES_URL") else {
                eprintln!("skipped: VIGIE_TEST_POSTGRES_URL is not set");
                return None;
            };
            let schema = format!("{prefix}_{}", vigie_core::secret::random_hex(6));
            Some(
                Scratch::create(&base, &schema)
                    .await
                    .expect("a scratch schema"),
            )
        }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Columns;

    /// A write dropped midway (a request cancelled, a timeout) must not hand its connection,
    /// still inside the transaction, to the next write: that write's COMMIT would commit the
    /// dropped one's statements too.
    #[tokio::test]
    async fn a_write_dropped_midway_commits_nothing_then_or_later() {
        let Some(scratch) = testing::Scratch::from_env("vigie_held").await else {
            return;
        };
        let engine = PgEngine::open(&scratch.url()).await.unwrap();
        let write = |sql: &'static str| {
            engine.write(Box::new(move |tx| {
                Box::pin(async move { tx.execute(sql, &[]).await.map(drop) })
            }))
        };
        write("CREATE TABLE held (v TEXT)").await.unwrap();

        let (inserted, heard) = tokio::sync::oneshot::channel();
        let dropped = engine.write(Box::new(move |tx| {
            Box::pin(async move {
                tx.execute("INSERT INTO held VALUES ('dropped')", &[])
                    .await?;
                let _ = inserted.send(());
                std::future::pending::<()>().await;
                Ok(())
            })
        }));
        tokio::select! {
            _ = dropped => unreachable!("the write never ends on its own"),
            _ = heard => {}
        }

        for _ in 0..5 {
            write("INSERT INTO held VALUES ('kept')").await.unwrap();
        }
        let count = engine
            .read(Box::new(|tx| {
                Box::pin(async move {
                    let row = tx
                        .one(
                            "SELECT count(*) FILTER (WHERE v = 'dropped'), count(*) FROM held",
                            &[],
                        )
                        .await?;
                    Ok((row.req_int(0)?, row.req_int(1)?))
                })
            }))
            .await
            .unwrap();
        assert_eq!(count, (0, 5), "(dropped rows, all rows)");
        drop(engine);
        scratch.drop_schema().await.unwrap();
    }

    /// Every distinct statement is prepared on the server and kept there with its plans; a
    /// stream of new shapes (a reader's ever longer searches) must not grow a backend forever.
    #[tokio::test]
    async fn a_connection_keeps_a_bounded_number_of_prepared_statements() {
        let Some(scratch) = testing::Scratch::from_env("vigie_statements").await else {
            return;
        };
        let engine = PgEngine::open(&scratch.url()).await.unwrap();
        let prepared_on_server = || {
            engine.read(Box::new(|tx| {
                Box::pin(async move {
                    tx.one("SELECT count(*) FROM pg_prepared_statements", &[])
                        .await?
                        .req_int(0)
                })
            }))
        };
        let shapes = STATEMENTS_PER_CONNECTION * 3 / 2;
        let mut most = 0;
        for i in 0..shapes {
            let sql = format!("SELECT {i}::int8 + $1");
            let answer = engine
                .read(Box::new(move |tx| {
                    Box::pin(async move { tx.one(&sql, &[1i64.into()]).await?.req_int(0) })
                }))
                .await
                .unwrap();
            assert_eq!(answer, i as i64 + 1, "every statement still answers");
            if i % 100 == 0 {
                most = most.max(prepared_on_server().await.unwrap());
            }
        }
        most = most.max(prepared_on_server().await.unwrap());
        // One pooled connection does all of it (the pool hands out the last one given back).
        assert!(
            most > 100 && most as usize <= STATEMENTS_PER_CONNECTION + 2,
            "{most} statements prepared on one backend"
        );
        drop(engine);
        scratch.drop_schema().await.unwrap();
    }
}
