//! Log blocks on SQLite: the shared statements of `logs::sql`, run on one connection.

use super::jobs::rows;
use crate::logs::{sql, BlockFilter, BlockMeta, LogSource, NewLogBlock};
use crate::{Result, StoreError};
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use std::collections::HashMap;
use vigie_core::{ProjectId, Timestamp};

pub fn write_blocks(
    conn: &Connection,
    project: ProjectId,
    blocks: &[NewLogBlock],
    replacing: &[i64],
) -> Result<Vec<i64>> {
    delete_blocks(conn, replacing, true)?;
    let now = Timestamp::now().millis();
    let mut sources: HashMap<&str, i64> = HashMap::new();
    let mut ids = Vec::with_capacity(blocks.len());
    for block in blocks {
        let source = match sources.get(block.source.as_str()) {
            Some(id) => *id,
            None => {
                let id: i64 = conn.prepare_cached(sql::UPSERT_SOURCE)?.query_row(
                    params_from_iter(sql::source_values(project, &block.source, now)),
                    |r| r.get(0),
                )?;
                sources.insert(&block.source, id);
                id
            }
        };
        let values = sql::block_values(project, source, block, now);
        ids.push(
            conn.prepare_cached(sql::INSERT_BLOCK)?
                .query_row(params_from_iter(values), |r| r.get(0))?,
        );
    }
    Ok(ids)
}

pub fn delete_blocks(conn: &Connection, ids: &[i64], all_must_exist: bool) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql::DELETE_BLOCK)?;
    let mut deleted = 0;
    for id in ids {
        deleted += stmt.execute([id])? as u64;
    }
    if all_must_exist && deleted != ids.len() as u64 {
        return Err(StoreError::Conflict("log blocks changed meanwhile".into()));
    }
    Ok(deleted)
}

pub fn blocks(conn: &Connection, filter: &BlockFilter) -> Result<Vec<BlockMeta>> {
    let (query, values) = sql::blocks_query(filter);
    rows(conn, &query, &values, |r| {
        sql::block_from(r, filter.with_bloom)
    })
}

pub fn block_data(conn: &Connection, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(sql::SELECT_DATA)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(data) = stmt
            .query_row([id], |r| r.get::<_, Vec<u8>>(0))
            .optional()?
        {
            out.push((*id, data));
        }
    }
    Ok(out)
}

pub fn sources(conn: &Connection, project: ProjectId) -> Result<Vec<LogSource>> {
    rows(conn, sql::SOURCES, &[project.0.into()], |r| {
        sql::source_from(r)
    })
}

pub fn delete_source(conn: &Connection, project: ProjectId, source: i64) -> Result<()> {
    match conn
        .prepare_cached(sql::DELETE_SOURCE)?
        .execute([project.0, source])?
    {
        0 => Err(StoreError::NotFound("log source")),
        _ => Ok(()),
    }
}
