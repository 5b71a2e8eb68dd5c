//! Leadership and the roll of instances: which instance runs what must run once (the
//! scheduler, the alert engine and notifier, monitor checks, reports, Celery consumers), and
//! which instances share the database.
//!
//! ```text
//!   SQLite:     one process owns the data directory: it always leads (`Sole`)
//!   PostgreSQL: pg_try_advisory_lock on a connection of its own ─▶ held while that session
//!               lives; a killed leader's session ends, the lock with it, and the next
//!               instance that tries takes it
//! ```
//!
//! Every instance also writes a heartbeat row (`instances`) that the System page reads.

use crate::sql::Columns;
use crate::Result;
use async_trait::async_trait;
use vigie_core::Timestamp;

/// The right to lead, held while this lives; dropping it gives it up.
#[async_trait]
pub trait Lead: Send + Sync {
    /// Whether the right still holds: on PostgreSQL, the session holding the lock answers.
    /// Once `false`, it never holds again: give it up and try anew.
    async fn holds(&mut self) -> bool;
}

/// The lead of the only process there is (SQLite).
pub(crate) struct Sole;

#[async_trait]
impl Lead for Sole {
    async fn holds(&mut self) -> bool {
        true
    }
}

/// Word from the other instances (PostgreSQL `LISTEN`), one payload at a time.
pub struct Listener {
    pub(crate) payloads: tokio::sync::mpsc::Receiver<String>,
    /// The connection listening; it stops when this is dropped.
    pub(crate) _connection: Box<dyn std::any::Any + Send + Sync>,
}

impl Listener {
    /// The next payload; `None` once the connection is gone (listen again).
    pub async fn next(&mut self) -> Option<String> {
        self.payloads.recv().await
    }
}

/// One instance as it last reported itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Chosen by the instance at start (host, process, a random part).
    pub id: String,
    /// Where people reach it.
    pub address: String,
    pub version: String,
    pub started_at: Timestamp,
    pub seen_at: Timestamp,
    pub leads: bool,
}

/// The instances sharing this database.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    /// Tries to become the leader; `None` while another instance holds it.
    async fn try_lead(&self) -> Result<Option<Box<dyn Lead>>>;
    /// Records that `instance` is alive (its `seen_at`) and whether it leads.
    async fn beat(&self, instance: &Instance) -> Result<()>;
    /// Every instance seen since `since`, the leader first.
    async fn instances(&self, since: Timestamp) -> Result<Vec<Instance>>;
    /// Tells every instance listening (PostgreSQL `NOTIFY`; payloads up to 7,900 bytes). No
    /// other instance can share an SQLite database: there, nothing is sent.
    async fn notify(&self, payload: &str) -> Result<()>;
    /// Listens to what [`InstanceStore::notify`] sends; `None` on SQLite.
    async fn listen(&self) -> Result<Option<Listener>>;
}

#[async_trait]
impl<E: crate::engine::Engine> InstanceStore for crate::engine::Db<E> {
    async fn try_lead(&self) -> Result<Option<Box<dyn Lead>>> {
        self.engine().try_lead().await
    }

    async fn beat(&self, instance: &Instance) -> Result<()> {
        let i = instance.clone();
        self.write("beat", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO instances (id, address, version, started_at, seen_at, leads) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                     address = excluded.address, version = excluded.version, \
                     seen_at = excluded.seen_at, leads = excluded.leads",
                    &[
                        i.id.as_str().into(),
                        i.address.as_str().into(),
                        i.version.as_str().into(),
                        i.started_at.millis().into(),
                        i.seen_at.millis().into(),
                        i64::from(i.leads).into(),
                    ],
                )
                .await?;
                // A leader that died without a word still says it leads: only the newest
                // word of leadership counts.
                if i.leads {
                    tx.execute(
                        "UPDATE instances SET leads = 0 WHERE id <> $1 AND leads = 1",
                        &[i.id.as_str().into()],
                    )
                    .await?;
                }
                // Instances gone for a day are forgotten.
                tx.execute(
                    "DELETE FROM instances WHERE seen_at < $1",
                    &[(i.seen_at.millis() - 86_400_000).into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn notify(&self, payload: &str) -> Result<()> {
        if self.engine().backend() == crate::Backend::Sqlite {
            return Ok(());
        }
        let payload = payload.to_string();
        self.read("notify", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "SELECT pg_notify('vigie_' || current_schema(), $1)",
                    &[payload.as_str().into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn listen(&self) -> Result<Option<Listener>> {
        self.engine().listen().await
    }

    async fn instances(&self, since: Timestamp) -> Result<Vec<Instance>> {
        self.read("instances", move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT id, address, version, started_at, seen_at, leads FROM instances \
                         WHERE seen_at >= $1 ORDER BY leads DESC, started_at",
                        &[since.millis().into()],
                    )
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(Instance {
                            id: r.req_text(0)?,
                            address: r.req_text(1)?,
                            version: r.req_text(2)?,
                            started_at: Timestamp(r.req_int(3)?),
                            seen_at: Timestamp(r.req_int(4)?),
                            leads: r.req_int(5)? != 0,
                        })
                    })
                    .collect()
            })
        })
        .await
    }
}
