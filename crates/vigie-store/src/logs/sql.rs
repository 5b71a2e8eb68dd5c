//! The log tables' SQL, shared by both backends (see `crate::sql`).

use super::{block, BlockFilter, BlockMeta, LogSource, NewLogBlock};
use crate::sql::{Columns, Value, Where};
use crate::tx::{take_blob, Row};
use crate::{Result, StoreError};
use vigie_core::ProjectId;

pub const UPSERT_SOURCE: &str = "INSERT INTO log_sources (project_id, name, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (project_id, name) DO UPDATE SET name = excluded.name \
     RETURNING id";

pub const INSERT_BLOCK: &str = "INSERT INTO log_blocks (project_id, source_id, min_time, \
     max_time, records, level_mask, level_counts, raw_bytes, stored_bytes, created_at, bloom, \
     data, head_end) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id";

pub const DELETE_SOURCE: &str = "DELETE FROM log_sources WHERE project_id = $1 AND id = $2";

pub const SOURCES: &str =
    "SELECT s.id, s.name, count(b.id), CAST(coalesce(sum(b.records), 0) AS BIGINT), \
     CAST(coalesce(sum(b.raw_bytes), 0) AS BIGINT), \
     CAST(coalesce(sum(b.stored_bytes), 0) AS BIGINT), min(b.min_time), \
     max(b.max_time) FROM log_sources s LEFT JOIN log_blocks b ON b.source_id = s.id \
     WHERE s.project_id = $1 GROUP BY s.id, s.name ORDER BY s.name";

pub fn source_values(project: ProjectId, name: &str, now_ms: i64) -> Vec<Value> {
    vec![project.0.into(), name.into(), now_ms.into()]
}

pub fn block_values(
    project: ProjectId,
    source_id: i64,
    new: &NewLogBlock,
    now_ms: i64,
) -> Vec<Value> {
    let b = &new.block;
    vec![
        project.0.into(),
        source_id.into(),
        b.min_time.into(),
        b.max_time.into(),
        i64::from(b.records).into(),
        i64::from(b.level_mask()).into(),
        Value::Text(Some(level_counts_text(&b.level_counts))),
        (b.raw_bytes as i64).into(),
        ((b.data.len() + b.bloom.len()) as i64).into(),
        now_ms.into(),
        Value::Blob(b.bloom.clone()),
        Value::Blob(b.data.clone()),
        block::head_end(&b.data).map(|end| end as i64).into(),
    ]
}

fn level_counts_text(counts: &[u32; 7]) -> String {
    counts.map(|c| c.to_string()).join(",")
}

fn level_counts_from(text: &str) -> Result<[u32; 7]> {
    let mut counts = [0u32; 7];
    let mut parts = text.split(',');
    for slot in counts.iter_mut() {
        *slot = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| StoreError::database(format!("bad level counts `{text}`")))?;
    }
    Ok(counts)
}

/// Most grouped blocks a listing names in its statement (see [`blocks_query`]).
const GROUP_IDS_IN_SQL: usize = 1_000;

/// The block summaries a filter selects, newest first; the bloom column only when asked.
pub fn blocks_query(f: &BlockFilter) -> (String, Vec<Value>) {
    let mut w = Where::new();
    let picks_ids = f
        .groups
        .as_deref()
        .is_some_and(|g| g.may_hold.len() <= GROUP_IDS_IN_SQL);
    if let Some(project) = f.project {
        if picks_ids {
            // The ids named below are the few rows to read (by primary key, then sorted):
            // the unary `+` keeps both databases from walking the project's whole time
            // index instead, testing every block of its history against the list.
            w.push("+b.project_id = ?", project.0);
        } else {
            w.push("b.project_id = ?", project.0);
        }
    }
    if let Some(from) = f.from {
        w.push("b.max_time >= ?", from);
    }
    if let Some(to) = f.to {
        w.push("b.min_time < ?", to);
    }
    if f.level_mask & 0x7f != 0x7f {
        w.push("(b.level_mask & ?) <> 0", i64::from(f.level_mask));
    }
    if let Some(max) = f.max_records {
        w.push("b.records <= ?", i64::from(max));
    }
    if let Some(created) = f.created_before_ms {
        w.push("b.created_at < ?", created);
    }
    if let Some(sources) = &f.sources {
        let list = if sources.is_empty() {
            "NULL".to_string()
        } else {
            sources
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        w.clauses.push(format!("b.source_id IN ({list})"));
    }
    if let Some(groups) = f.groups.as_deref() {
        // A rare word's few blocks are picked out here; a common word's many are left to the
        // listing to sort out (see `Listing::survivors`), rather than sent as thousands of ids.
        if picks_ids {
            w.values.push(groups.grouped_to.into());
            let mut clause = format!("(b.id > ${}", w.values.len());
            if !groups.may_hold.is_empty() {
                let held = w.in_list_clause("b.id", groups.may_hold.iter().copied());
                clause = format!("{clause} OR {held}");
            }
            w.clauses.push(clause + ")");
        }
    }
    if let Some((max_time, id)) = f.after {
        // Newest first by (max_time, id), so a listing goes on where the last one stopped.
        let n = w.values.len();
        w.values
            .extend([max_time.into(), max_time.into(), id.into()]);
        w.clauses.push(format!(
            "(b.max_time < ${} OR (b.max_time = ${} AND b.id < ${}))",
            n + 1,
            n + 2,
            n + 3
        ));
    }
    let bloom = if f.with_bloom { ", b.bloom" } else { "" };
    let limit = f.limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    // The blocks' rows alone: their sources' names come from the store's cache
    // (`store::SourceNames`), not from a join made, planned and run at every listing.
    let sql = format!(
        "SELECT b.id, b.source_id, b.min_time, b.max_time, b.records, b.level_counts, \
         b.raw_bytes, b.stored_bytes{bloom} FROM log_blocks b{} \
         ORDER BY b.max_time DESC, b.id DESC{limit}",
        w.sql()
    );
    (sql, w.values)
}

/// A row of [`blocks_query`], its source's name left empty for the caller to give;
/// `with_bloom` as in its filter.
pub fn block_from(row: &mut Row, with_bloom: bool) -> Result<BlockMeta> {
    Ok(BlockMeta {
        id: row.req_int(0)?,
        source_id: row.req_int(1)?,
        source: String::new(),
        min_time: row.req_int(2)?,
        max_time: row.req_int(3)?,
        records: row.req_int(4)? as u32,
        level_counts: level_counts_from(&row.req_text(5)?)?,
        raw_bytes: row.req_int(6)? as u64,
        stored_bytes: row.req_int(7)? as u64,
        bloom: if with_bloom {
            take_blob(row, 8)?.map(Into::into)
        } else {
            None
        },
    })
}

pub fn source_from(row: &impl Columns) -> Result<LogSource> {
    Ok(LogSource {
        id: row.req_int(0)?,
        name: row.req_text(1)?,
        blocks: row.req_int(2)? as u64,
        records: row.req_int(3)? as u64,
        raw_bytes: row.req_int(4)? as u64,
        stored_bytes: row.req_int(5)? as u64,
        first_time: row.int(6)?,
        last_time: row.int(7)?,
    })
}
