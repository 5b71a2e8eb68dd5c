//! The primitives the block engine keeps blocks with, written once for both backends (see
//! [`crate::tx::Tx`]): store and replace blocks, list their summaries, fetch their data.

use super::sql;
use super::{BlockFilter, BlockMeta, LogSource, NewLogBlock};
use crate::engine::{Db, Engine};
use crate::sql::{null_column, Columns, Where};
use crate::tx::{take_blob, Tx};
use crate::{Result, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;
use vigie_core::{ProjectId, Timestamp};

/// Ids per `IN (…)` list: one round trip for a search's batch, bounded statement sizes.
const IDS_PER_STATEMENT: usize = 256;

/// Log blocks and sources (the engine is [`crate::logs`]).
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Stores `blocks` (creating their sources as needed) and deletes the blocks `replacing`,
    /// in one transaction; `Conflict` if one of `replacing` is already gone. Returns the new
    /// blocks' ids.
    async fn write_log_blocks(
        &self,
        project: ProjectId,
        blocks: Vec<NewLogBlock>,
        replacing: Vec<i64>,
    ) -> Result<Vec<i64>>;
    /// Block summaries the filter selects, newest first.
    async fn log_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockMeta>>;
    /// The data of these blocks, in the order asked; ids no longer stored are left out.
    async fn log_block_data(&self, ids: Vec<i64>) -> Result<Vec<(i64, Vec<u8>)>>;
    /// A project's log sources with what each holds, by name.
    async fn log_sources(&self, project: ProjectId) -> Result<Vec<LogSource>>;
    async fn delete_log_blocks(&self, ids: Vec<i64>) -> Result<u64>;
    /// Deletes a source and every record of it; `NotFound` if the project has no such source.
    async fn delete_log_source(&self, project: ProjectId, source: i64) -> Result<()>;
}

/// `WHERE id IN ($1, …)` over `ids`.
fn ids_in(ids: &[i64]) -> Where {
    let mut w = Where::new();
    w.in_list("id", ids.iter().copied());
    w
}

async fn delete_blocks(tx: &mut dyn Tx, ids: &[i64], all_must_exist: bool) -> Result<u64> {
    let mut deleted = 0;
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let w = ids_in(chunk);
        let sql = format!("DELETE FROM log_blocks{}", w.sql());
        deleted += tx.execute(&sql, &w.values).await?;
    }
    if all_must_exist && deleted != ids.len() as u64 {
        return Err(StoreError::Conflict("log blocks changed meanwhile".into()));
    }
    Ok(deleted)
}

async fn write_blocks(
    tx: &mut dyn Tx,
    project: ProjectId,
    blocks: &[NewLogBlock],
    replacing: &[i64],
) -> Result<Vec<i64>> {
    delete_blocks(tx, replacing, true).await?;
    let now = Timestamp::now().millis();
    let mut sources: HashMap<&str, i64> = HashMap::new();
    let mut ids = Vec::with_capacity(blocks.len());
    for block in blocks {
        let source = match sources.get(block.source.as_str()) {
            Some(id) => *id,
            None => {
                let values = sql::source_values(project, &block.source, now);
                let id = tx.one(sql::UPSERT_SOURCE, &values).await?.req_int(0)?;
                sources.insert(&block.source, id);
                id
            }
        };
        let values = sql::block_values(project, source, block, now);
        ids.push(tx.one(sql::INSERT_BLOCK, &values).await?.req_int(0)?);
    }
    Ok(ids)
}

async fn block_data(tx: &mut dyn Tx, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut by_id: HashMap<i64, Vec<u8>> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let w = ids_in(chunk);
        let sql = format!("SELECT id, data FROM log_blocks{}", w.sql());
        for mut row in tx.query(&sql, &w.values).await? {
            let data = take_blob(&mut row, 1)?.ok_or_else(|| null_column(1))?;
            by_id.insert(row.req_int(0)?, data);
        }
    }
    Ok(ids
        .iter()
        .filter_map(|id| by_id.remove(id).map(|data| (*id, data)))
        .collect())
}

#[async_trait]
impl<E: Engine> LogStore for Db<E> {
    async fn write_log_blocks(
        &self,
        project: ProjectId,
        blocks: Vec<NewLogBlock>,
        replacing: Vec<i64>,
    ) -> Result<Vec<i64>> {
        self.write("write_log_blocks", move |tx| {
            Box::pin(async move { write_blocks(tx, project, &blocks, &replacing).await })
        })
        .await
    }

    async fn log_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockMeta>> {
        let (query, values) = sql::blocks_query(filter);
        let with_bloom = filter.with_bloom;
        self.read("log_blocks", move |tx| {
            Box::pin(async move {
                let rows = tx.query(&query, &values).await?;
                rows.into_iter()
                    .map(|mut r| sql::block_from(&mut r, with_bloom))
                    .collect()
            })
        })
        .await
    }

    async fn log_block_data(&self, ids: Vec<i64>) -> Result<Vec<(i64, Vec<u8>)>> {
        self.read("log_block_data", move |tx| {
            Box::pin(async move { block_data(tx, &ids).await })
        })
        .await
    }

    async fn log_sources(&self, project: ProjectId) -> Result<Vec<LogSource>> {
        self.read("log_sources", move |tx| {
            Box::pin(async move {
                let rows = tx.query(sql::SOURCES, &[project.0.into()]).await?;
                rows.iter().map(sql::source_from).collect()
            })
        })
        .await
    }

    async fn delete_log_blocks(&self, ids: Vec<i64>) -> Result<u64> {
        self.write("delete_log_blocks", move |tx| {
            Box::pin(async move { delete_blocks(tx, &ids, false).await })
        })
        .await
    }

    async fn delete_log_source(&self, project: ProjectId, source: i64) -> Result<()> {
        self.write("delete_log_source", move |tx| {
            Box::pin(async move {
                let values = [project.0.into(), source.into()];
                match tx.execute(sql::DELETE_SOURCE, &values).await? {
                    0 => Err(StoreError::NotFound("log source")),
                    _ => Ok(()),
                }
            })
        })
        .await
    }
}
