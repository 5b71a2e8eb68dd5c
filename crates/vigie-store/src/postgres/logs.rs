//! Log blocks on PostgreSQL: the shared statements of `logs::sql`, run on a pooled client.

use super::jobs::{query, rows};
use crate::logs::{sql, BlockFilter, BlockMeta, LogSource, NewLogBlock};
use crate::{Result, StoreError};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use vigie_core::{ProjectId, Timestamp};

pub async fn write_blocks(
    client: &impl GenericClient,
    project: ProjectId,
    blocks: &[NewLogBlock],
    replacing: &[i64],
) -> Result<Vec<i64>> {
    delete_blocks(client, replacing, true).await?;
    let now = Timestamp::now().millis();
    let mut sources: HashMap<&str, i64> = HashMap::new();
    let mut ids = Vec::with_capacity(blocks.len());
    for block in blocks {
        let source = match sources.get(block.source.as_str()) {
            Some(id) => *id,
            None => {
                let values = sql::source_values(project, &block.source, now);
                let id: i64 = query(client, sql::UPSERT_SOURCE, &values).await?[0].try_get(0)?;
                sources.insert(&block.source, id);
                id
            }
        };
        let values = sql::block_values(project, source, block, now);
        ids.push(query(client, sql::INSERT_BLOCK, &values).await?[0].try_get(0)?);
    }
    Ok(ids)
}

pub async fn delete_blocks(
    client: &impl GenericClient,
    ids: &[i64],
    all_must_exist: bool,
) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let deleted = client
        .execute("DELETE FROM log_blocks WHERE id = ANY($1)", &[&ids])
        .await?;
    if all_must_exist && deleted != ids.len() as u64 {
        return Err(StoreError::Conflict("log blocks changed meanwhile".into()));
    }
    Ok(deleted)
}

pub async fn blocks(client: &impl GenericClient, filter: &BlockFilter) -> Result<Vec<BlockMeta>> {
    let (sql_text, values) = sql::blocks_query(filter);
    rows(client, &sql_text, &values)
        .await?
        .iter()
        .map(|r| sql::block_from(r, filter.with_bloom))
        .collect()
}

pub async fn block_data(client: &impl GenericClient, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>> {
    let found = client
        .query(
            "SELECT id, data FROM log_blocks WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    let mut by_id: HashMap<i64, Vec<u8>> = found
        .into_iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
    Ok(ids
        .iter()
        .filter_map(|id| by_id.remove(id).map(|data| (*id, data)))
        .collect())
}

pub async fn sources(client: &impl GenericClient, project: ProjectId) -> Result<Vec<LogSource>> {
    rows(client, sql::SOURCES, &[project.0.into()])
        .await?
        .iter()
        .map(sql::source_from)
        .collect()
}

pub async fn delete_source(
    client: &impl GenericClient,
    project: ProjectId,
    source: i64,
) -> Result<()> {
    match client
        .execute(sql::DELETE_SOURCE, &[&project.0, &source])
        .await?
    {
        0 => Err(StoreError::NotFound("log source")),
        _ => Ok(()),
    }
}
