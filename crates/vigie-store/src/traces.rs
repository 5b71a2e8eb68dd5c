//! Spans, kept compressed in blocks and found by trace id.
//!
//! ```text
//!   write_spans(project, spans)
//!     sorted by trace id, cut into blocks of ≤ BLOCK_SPANS ─▶ encode (off the runtime)
//!     one transaction: span_blocks row per block  +  trace_blocks row per (trace, block)
//!
//!   trace(project, trace_id)
//!     trace_blocks (primary key lookup) ─▶ those blocks' data ─▶ decode only the lines of
//!     that trace ─▶ spans by start time
//! ```
//!
//! A block's data is zstd over lines `"<trace id>\t<span as JSON>\n"`, sorted by trace id, so
//! opening a trace parses none of the other traces' spans. The index has a row per trace and
//! block, so finding a trace costs a B-tree lookup whatever the number of spans stored.
//! Retention drops whole blocks whose spans all ended before a time (their index rows go with
//! them, `ON DELETE CASCADE`).

use crate::engine::{Db, Engine};
use crate::logs::block::{compress, decompress};
use crate::logs::cpu;
use crate::sql::{Columns, Value, Where};
use crate::tx::{take_blob, Tx};
use crate::{Result, StoreError};
use async_trait::async_trait;
use std::collections::BTreeSet;
use vigie_core::span::Span;
use vigie_core::{ProjectId, Timestamp};

/// Most spans in one block: opening a trace decompresses its blocks whole, so they stay small
/// enough for that to take about a millisecond.
pub const BLOCK_SPANS: usize = 1024;

/// Spans of one request or batch, stored and read back by trace.
#[async_trait]
pub trait SpanStore: Send + Sync {
    /// Stores `spans` of `project`, acknowledged once committed; answers the blocks written.
    async fn write_spans(&self, project: ProjectId, spans: Vec<Span>) -> Result<usize>;
    /// Every stored span of a trace, by start time (empty when none is stored).
    async fn trace(&self, project: ProjectId, trace_id: &str) -> Result<Vec<Span>>;
    /// Drops the blocks whose spans all ended before `before`; answers the spans dropped.
    async fn prune_spans(&self, before: Timestamp) -> Result<u64>;
}

/// One block ready to be written.
struct EncodedBlock {
    min_start: i64,
    max_end: i64,
    spans: usize,
    raw_bytes: usize,
    traces: BTreeSet<String>,
    data: Vec<u8>,
}

/// Sorts spans by trace and encodes them in blocks.
fn encode(mut spans: Vec<Span>) -> Result<Vec<EncodedBlock>> {
    spans.sort_by(|a, b| (&a.trace_id, a.start).cmp(&(&b.trace_id, b.start)));
    spans
        .chunks(BLOCK_SPANS)
        .map(|chunk| {
            let mut raw = Vec::with_capacity(chunk.len() * 512);
            for span in chunk {
                raw.extend_from_slice(span.trace_id.as_bytes());
                raw.push(b'\t');
                serde_json::to_writer(&mut raw, span)
                    .map_err(|e| StoreError::database(format!("a span as JSON: {e}")))?;
                raw.push(b'\n');
            }
            let data = compress(&raw);
            Ok(EncodedBlock {
                min_start: chunk.iter().map(|s| s.start).min().unwrap_or(0),
                max_end: chunk.iter().map(|s| s.end).max().unwrap_or(0),
                spans: chunk.len(),
                raw_bytes: raw.len(),
                traces: chunk.iter().map(|s| s.trace_id.clone()).collect(),
                data,
            })
        })
        .collect()
}

/// The spans of `trace_id` in a block's data.
fn decode_trace(data: &[u8], trace_id: &str) -> Result<Vec<Span>> {
    let damaged = |what: String| StoreError::database(format!("a span block is damaged: {what}"));
    let raw = decompress(data)?;
    let mut spans = Vec::new();
    for line in raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Some(tab) = line.iter().position(|b| *b == b'\t') else {
            return Err(damaged("a line without its trace id".into()));
        };
        if &line[..tab] == trace_id.as_bytes() {
            spans.push(
                serde_json::from_slice(&line[tab + 1..]).map_err(|e| damaged(e.to_string()))?,
            );
        }
    }
    Ok(spans)
}

async fn write_blocks(
    tx: &mut dyn Tx,
    project: ProjectId,
    blocks: &[EncodedBlock],
    now: Timestamp,
) -> Result<usize> {
    for block in blocks {
        let id = tx
            .one(
                "INSERT INTO span_blocks (project_id, min_start, max_end, spans, raw_bytes, \
                 created_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    project.0.into(),
                    block.min_start.into(),
                    block.max_end.into(),
                    (block.spans as i64).into(),
                    (block.raw_bytes as i64).into(),
                    now.millis().into(),
                    Value::Blob(block.data.clone()),
                ],
            )
            .await?
            .req_int(0)?;
        let rows = block
            .traces
            .iter()
            .map(|trace| vec![project.0.into(), trace.as_str().into(), id.into()])
            .collect();
        tx.insert_rows(
            "INSERT INTO trace_blocks (project_id, trace_id, block_id) VALUES ",
            "",
            rows,
        )
        .await?;
    }
    Ok(blocks.len())
}

async fn trace_data(tx: &mut dyn Tx, project: ProjectId, trace_id: &str) -> Result<Vec<Vec<u8>>> {
    let mut rows = tx
        .query(
            "SELECT b.data FROM trace_blocks t JOIN span_blocks b ON b.id = t.block_id \
             WHERE t.project_id = $1 AND t.trace_id = $2",
            &[project.0.into(), trace_id.into()],
        )
        .await?;
    rows.iter_mut()
        .map(|row| take_blob(row, 0)?.ok_or_else(|| crate::sql::null_column(0)))
        .collect()
}

async fn prune(tx: &mut dyn Tx, before_ns: i64) -> Result<u64> {
    let mut w = Where::new();
    w.push("max_end < ?", before_ns);
    let spans = tx
        .one(
            &format!(
                "SELECT CAST(coalesce(sum(spans), 0) AS BIGINT) FROM span_blocks{}",
                w.sql()
            ),
            &w.values,
        )
        .await?
        .req_int(0)?;
    tx.execute(&format!("DELETE FROM span_blocks{}", w.sql()), &w.values)
        .await?;
    Ok(spans.max(0) as u64)
}

#[async_trait]
impl<E: Engine> SpanStore for Db<E> {
    async fn write_spans(&self, project: ProjectId, spans: Vec<Span>) -> Result<usize> {
        if spans.is_empty() {
            return Ok(0);
        }
        let blocks = cpu(move || encode(spans)).await??;
        let now = Timestamp::now();
        self.write("write_spans", move |tx| {
            Box::pin(async move { write_blocks(tx, project, &blocks, now).await })
        })
        .await
    }

    async fn trace(&self, project: ProjectId, trace_id: &str) -> Result<Vec<Span>> {
        let id = trace_id.to_ascii_lowercase();
        let key = id.clone();
        let blocks = self
            .read("trace", move |tx| {
                Box::pin(async move { trace_data(tx, project, &key).await })
            })
            .await?;
        cpu(move || {
            let mut spans = Vec::new();
            for data in &blocks {
                spans.extend(decode_trace(data, &id)?);
            }
            spans.sort_by(|a, b| (a.start, &a.span_id).cmp(&(b.start, &b.span_id)));
            Ok(spans)
        })
        .await?
    }

    async fn prune_spans(&self, before: Timestamp) -> Result<u64> {
        let before_ns = before.millis().saturating_mul(1_000_000);
        self.write("prune_spans", move |tx| {
            Box::pin(async move { prune(tx, before_ns).await })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: u8, id: u8, start: i64) -> Span {
        Span {
            trace_id: format!("{trace:032x}"),
            span_id: format!("{id:016x}"),
            name: format!("op {id}"),
            start,
            end: start + 10,
            ..Span::default()
        }
    }

    #[test]
    fn blocks_hold_their_traces_and_decode_one_trace_alone() {
        let spans: Vec<Span> = (0..(BLOCK_SPANS as u32 + 10))
            .map(|i| span((i % 3) as u8 + 1, (i % 250) as u8, i64::from(i)))
            .collect();
        let blocks = encode(spans).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks.iter().map(|b| b.spans).sum::<usize>(),
            BLOCK_SPANS + 10
        );
        // Sorted by trace: the first block holds traces 1 and 2 (and some of 3), the last only 3.
        assert_eq!(blocks[1].traces.len(), 1);
        let third = format!("{:032x}", 3);
        let in_last = decode_trace(&blocks[1].data, &third).unwrap();
        assert_eq!(in_last.len(), 10);
        assert!(in_last.iter().all(|s| s.trace_id == third));
        let first = format!("{:032x}", 1);
        let ones = decode_trace(&blocks[0].data, &first).unwrap();
        assert_eq!(ones.len(), (BLOCK_SPANS + 10).div_ceil(3));
        assert_eq!(ones[0], span(1, 0, 0));
        assert!(decode_trace(&blocks[0].data, "nope").unwrap().is_empty());
        assert!(decode_trace(b"not zstd", &first).is_err());
    }
}
