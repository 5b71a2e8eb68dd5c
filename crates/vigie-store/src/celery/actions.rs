//! The audit list of Celery actions: what people did to tasks, workers and queues from Vigie.
//!
//! ```text
//!   record_celery_action(project, action)     one row, written after the broker answered
//!   celery_actions(project, target?, limit)   newest first; of one task, task name or queue
//!                                             when `target` is given
//! ```

use crate::engine::{Db, Engine};
use crate::sql::Columns;
use crate::tx::{Row, Tx};
use crate::Result;
use async_trait::async_trait;
use serde::Serialize;
use vigie_core::{ProjectId, Timestamp};

/// One action, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CeleryAction {
    pub at: Timestamp,
    /// A user name, or `token <name>`.
    pub actor: String,
    /// `revoke`, `terminate`, `rate_limit`, … (`vigie_core::celery::control::Action::name`).
    pub action: String,
    /// The task id, task name or queue acted on.
    pub target: Option<String>,
    /// The workers it was sent to (empty: every worker).
    pub workers: Vec<String>,
    pub arguments: serde_json::Value,
    /// What came back, for people.
    pub outcome: String,
    pub ok: bool,
}

#[async_trait]
pub trait CeleryActionStore: Send + Sync {
    async fn record_celery_action(&self, project: ProjectId, action: CeleryAction) -> Result<()>;
    /// Newest first; only those on `target` when given.
    async fn celery_actions(
        &self,
        project: ProjectId,
        target: Option<String>,
        limit: u32,
    ) -> Result<Vec<CeleryAction>>;
}

fn action_of(row: &Row) -> Result<CeleryAction> {
    let json = |idx| -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&row.req_text(idx)?).unwrap_or_default())
    };
    Ok(CeleryAction {
        at: Timestamp(row.req_int(0)?),
        actor: row.req_text(1)?,
        action: row.req_text(2)?,
        target: row.text(3)?,
        workers: serde_json::from_value(json(4)?).unwrap_or_default(),
        arguments: json(5)?,
        outcome: row.req_text(6)?,
        ok: row.req_int(7)? != 0,
    })
}

async fn list(
    tx: &mut dyn Tx,
    project: ProjectId,
    target: Option<&str>,
    limit: u32,
) -> Result<Vec<CeleryAction>> {
    const COLUMNS: &str = "at, actor, action, target, workers, arguments, outcome, ok";
    let rows = match target {
        Some(target) => {
            tx.query(
                &format!(
                    "SELECT {COLUMNS} FROM celery_actions WHERE project_id = $1 AND target = $2 \
                     ORDER BY at DESC, id DESC LIMIT $3"
                ),
                &[project.0.into(), target.into(), i64::from(limit).into()],
            )
            .await?
        }
        None => {
            tx.query(
                &format!(
                    "SELECT {COLUMNS} FROM celery_actions WHERE project_id = $1 \
                     ORDER BY at DESC, id DESC LIMIT $2"
                ),
                &[project.0.into(), i64::from(limit).into()],
            )
            .await?
        }
    };
    rows.iter().map(action_of).collect()
}

#[async_trait]
impl<E: Engine> CeleryActionStore for Db<E> {
    async fn record_celery_action(&self, project: ProjectId, action: CeleryAction) -> Result<()> {
        self.write("record_celery_action", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO celery_actions (project_id, at, actor, action, target, \
                     workers, arguments, outcome, ok) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        project.0.into(),
                        action.at.millis().into(),
                        action.actor.as_str().into(),
                        action.action.as_str().into(),
                        action.target.as_deref().into(),
                        serde_json::to_string(&action.workers)
                            .unwrap_or_default()
                            .as_str()
                            .into(),
                        action.arguments.to_string().as_str().into(),
                        action.outcome.as_str().into(),
                        i64::from(action.ok).into(),
                    ],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn celery_actions(
        &self,
        project: ProjectId,
        target: Option<String>,
        limit: u32,
    ) -> Result<Vec<CeleryAction>> {
        self.read("celery_actions", move |tx| {
            Box::pin(async move { list(tx, project, target.as_deref(), limit).await })
        })
        .await
    }
}
