//! Spans, kept compressed in blocks and found by trace id.
//!
//! ```text
//!   write_spans(project, spans)
//!     sorted by trace id, cut into blocks of ≤ BLOCK_SPANS ─▶ encode (off the runtime)
//!     one transaction: span_blocks row per block  +  trace_blocks row per (trace, block)
//!
//!     + trace_entries row per entry span (a request served, a task run, a root)
//!
//!   trace(project, trace_id)
//!     trace_blocks (primary key lookup) ─▶ those blocks' data ─▶ decode only the lines of
//!     that trace ─▶ spans by start time (a span sent twice, once)
//!
//!   search_traces(project, TraceQuery)     trace_entries only: newest or slowest first
//!
//!   settle_spans(project, before, KeepRules)      the tail-based keep rules, a while later
//!     unsettled blocks whose spans all ended before `before` (≤ SETTLE_BLOCKS)
//!     ─▶ each of their traces judged whole (vigie_core::trace_keep): failed anywhere
//!        (trace_blocks.failed), an entry slower than its p95 (trace_entries), or in the rate
//!     ─▶ one transaction: the kept traces' lines rewritten into settled blocks, the old
//!        blocks deleted, the dropped traces' entries deleted
//! ```
//!
//! A block's data is zstd over lines `"<trace id>\t<span as JSON>\n"`, sorted by trace id, so
//! opening a trace parses none of the other traces' spans. The index has a row per trace and
//! block, so finding a trace costs a B-tree lookup whatever the number of spans stored.
//! Retention drops a project's whole blocks whose spans all ended before a time (their index
//! rows go with them, `ON DELETE CASCADE`), and the entries that started before it; each
//! project has its own time (`ErrorSettings::span_retention_days`).
//!
//! With `traces.keep_rate` at 1 (the default) settling only marks blocks settled: nothing is
//! rewritten.
//!
//! Entries are what trace search reads: one row per span that begins a unit of work
//! (`Span::is_entry`), with its service, name (`Span::entry_name`), duration, status, job and
//! attributes, indexed by time and by name, so a search costs what it finds, not what is
//! stored.

use crate::engine::{Db, Engine};
use crate::logs::block::{compress, decompress};
use crate::logs::cpu;
use crate::sql::{escape_like, glob_like, Columns, Value, Where};
use crate::tx::{take_blob, Row, RowsWrite, Statement, Tx};
use crate::{Result, StoreError};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use vigie_core::span::Span;
use vigie_core::trace_keep::{Keep, KeepRules, TraceFacts};
use vigie_core::tracequery::TraceQuery;
use vigie_core::{ProjectId, Timestamp};

/// Most spans in one block: opening a trace decompresses its blocks whole, so they stay small
/// enough for that to take about a millisecond.
pub const BLOCK_SPANS: usize = 1024;

/// Most bytes of an entry's attributes kept for search (as JSON); an attribute that does not
/// fit in what is left is not searchable (the span keeps them all).
pub const ENTRY_ATTRIBUTE_BYTES: usize = 4096;
/// Most traces one search answers.
pub const MAX_SEARCH: usize = 500;
/// Most blocks one settle pass judges: its rewrite holds the writer for tens of milliseconds.
pub const SETTLE_BLOCKS: usize = 16;

/// A span that began a unit of work, as trace search finds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceEntry {
    pub trace_id: String,
    pub span_id: String,
    pub service: String,
    pub name: String,
    pub kind: String,
    /// Nanoseconds since the epoch.
    pub start: i64,
    pub duration_ns: i64,
    pub failed: bool,
    pub job_id: Option<String>,
}

/// How search results are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceOrder {
    #[default]
    Newest,
    Slowest,
}

/// What a settle pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settled {
    /// Blocks settled (judged, or marked when every trace is kept).
    pub blocks: usize,
    /// Traces judged, by outcome.
    pub traces: HashMap<Keep, u64>,
    /// Spans of the dropped traces.
    pub spans_dropped: u64,
}

/// Spans of one request or batch, stored and read back by trace.
#[async_trait]
pub trait SpanStore: Send + Sync {
    /// Stores `spans` of `project`, acknowledged once committed; answers the blocks written.
    async fn write_spans(&self, project: ProjectId, spans: Vec<Span>) -> Result<usize>;
    /// Every stored span of a trace, by start time (empty when none is stored).
    async fn trace(&self, project: ProjectId, trace_id: &str) -> Result<Vec<Span>>;
    /// The entries matching `query` (of its trace, when it names one), up to `limit` (at most
    /// [`MAX_SEARCH`]), newest or slowest first.
    async fn search_traces(
        &self,
        project: ProjectId,
        query: &TraceQuery,
        order: TraceOrder,
        limit: usize,
    ) -> Result<Vec<TraceEntry>>;
    /// Drops `project`'s blocks whose spans all ended before `before`, and the entries that
    /// began before it; answers the spans dropped.
    async fn prune_spans(&self, project: ProjectId, before: Timestamp) -> Result<u64>;
    /// Settles at most [`SETTLE_BLOCKS`] of `project`'s blocks whose spans all ended before
    /// `before`: keeps the traces `rules` keep, drops the others' spans and entries.
    async fn settle_spans(
        &self,
        project: ProjectId,
        before: Timestamp,
        rules: KeepRules,
    ) -> Result<Settled>;
}

/// One block ready to be written.
struct EncodedBlock {
    min_start: i64,
    max_end: i64,
    spans: usize,
    raw_bytes: usize,
    /// Its traces, each with whether the block holds a failed span of it.
    traces: BTreeMap<String, bool>,
    data: Vec<u8>,
}

/// An entry row ready to be written (`trace_entries`' columns after the project).
fn entry_row(project: ProjectId, span: &Span) -> Vec<Value> {
    let mut attributes = String::from("[");
    for pair in &span.attributes {
        let json = serde_json::to_string(pair).unwrap_or_default();
        // One huge value leaves out only itself: the smaller ones after it stay searchable.
        if attributes.len() + json.len() + 2 > ENTRY_ATTRIBUTE_BYTES {
            continue;
        }
        if attributes.len() > 1 {
            attributes.push(',');
        }
        attributes.push_str(&json);
    }
    attributes.push(']');
    vec![
        project.0.into(),
        span.trace_id.as_str().into(),
        span.span_id.as_str().into(),
        span.service.as_str().into(),
        span.entry_name().as_str().into(),
        span.kind.as_str().into(),
        span.start.into(),
        span.duration_ns().into(),
        i64::from(span.entry_failed()).into(),
        span.job_id().into(),
        attributes.as_str().into(),
    ]
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
                traces: chunk.iter().fold(BTreeMap::new(), |mut traces, s| {
                    *traces.entry(s.trace_id.clone()).or_default() |= s.entry_failed();
                    traces
                }),
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

/// Names the traces of a block (its rows come from [`trace_rows`]).
const INSERT_TRACE_BLOCKS: &str =
    "INSERT INTO trace_blocks (project_id, trace_id, block_id, failed)";

/// The write of one span block (answering its id), settled or not.
fn block_write(
    project: ProjectId,
    block: &EncodedBlock,
    (min_start, max_end): (i64, i64),
    settled: bool,
    now: Timestamp,
) -> RowsWrite<'static> {
    RowsWrite {
        insert: "INSERT INTO span_blocks (project_id, min_start, max_end, spans, raw_bytes, \
                 created_at, data, settled)",
        tail: " RETURNING id",
        rows: vec![vec![
            project.0.into(),
            min_start.into(),
            max_end.into(),
            (block.spans as i64).into(),
            (block.raw_bytes as i64).into(),
            now.millis().into(),
            Value::Blob(block.data.clone()),
            i64::from(settled).into(),
        ]],
    }
}

/// The id a span block's insert answered (see [`block_write`]).
fn block_id(answer: &[Row]) -> Result<i64> {
    answer
        .first()
        .ok_or_else(|| StoreError::database("a span block insert answered no id"))?
        .req_int(0)
}

/// The rows of `trace_blocks` that name the traces of `block`, stored as `id`.
fn trace_rows(project: ProjectId, block: &EncodedBlock, id: i64) -> Vec<Vec<Value>> {
    block
        .traces
        .iter()
        .map(|(trace, failed)| {
            vec![
                project.0.into(),
                trace.as_str().into(),
                id.into(),
                i64::from(*failed).into(),
            ]
        })
        .collect()
}

/// Writes one block and its rows of `trace_blocks`, settled or not.
async fn insert_block(
    tx: &mut dyn Tx,
    project: ProjectId,
    block: &EncodedBlock,
    bounds: (i64, i64),
    settled: bool,
    now: Timestamp,
) -> Result<()> {
    let write = block_write(project, block, bounds, settled, now);
    let answer = tx
        .insert_rows_returning(write.insert, write.tail, write.rows, &[])
        .await?;
    let id = block_id(&answer)?;
    tx.insert_rows(INSERT_TRACE_BLOCKS, "", trace_rows(project, block, id))
        .await
}

/// What a settle pass read and judged, before it rewrites.
struct SettlePlan {
    ids: Vec<i64>,
    bounds: (i64, i64),
    data: Vec<Vec<u8>>,
    /// The kept traces, each with whether it failed.
    kept: HashMap<String, bool>,
    dropped: Vec<String>,
    settled: Settled,
}

/// The blocks ids as a list to write into a statement (integers from the database: safe).
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Reads up to [`SETTLE_BLOCKS`] unsettled blocks and judges their traces (`None`: none due).
async fn plan_settle(
    tx: &mut dyn Tx,
    project: ProjectId,
    before_ns: i64,
    rules: &KeepRules,
) -> Result<Option<SettlePlan>> {
    let mut rows = tx
        .query(
            &format!(
                "SELECT id, min_start, max_end, data FROM span_blocks \
                 WHERE project_id = $1 AND settled = 0 AND max_end < $2 ORDER BY id LIMIT {}",
                SETTLE_BLOCKS
            ),
            &[project.0.into(), before_ns.into()],
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let (mut min_start, mut max_end) = (i64::MAX, i64::MIN);
    let mut data = Vec::with_capacity(rows.len());
    for row in &mut rows {
        ids.push(row.req_int(0)?);
        min_start = min_start.min(row.req_int(1)?);
        max_end = max_end.max(row.req_int(2)?);
        data.push(take_blob(row, 3)?.ok_or_else(|| crate::sql::null_column(3))?);
    }
    let of_these = format!(
        "SELECT trace_id FROM trace_blocks WHERE block_id IN ({})",
        id_list(&ids)
    );
    let mut facts: HashMap<String, TraceFacts> = HashMap::new();
    // Failed anywhere: over all the trace's blocks, those not settled yet too.
    for row in tx
        .query(
            &format!(
                "SELECT trace_id, max(failed) FROM trace_blocks \
                 WHERE project_id = $1 AND trace_id IN ({of_these}) GROUP BY trace_id"
            ),
            &[project.0.into()],
        )
        .await?
    {
        facts.entry(row.req_text(0)?).or_default().failed = row.req_int(1)? != 0;
    }
    for row in tx
        .query(
            &format!(
                "SELECT trace_id, name, duration_ns FROM trace_entries \
                 WHERE project_id = $1 AND trace_id IN ({of_these})"
            ),
            &[project.0.into()],
        )
        .await?
    {
        if let Some(trace) = facts.get_mut(&row.req_text(0)?) {
            trace.entries.push((row.req_text(1)?, row.req_int(2)?));
        }
    }
    let mut settled = Settled {
        blocks: ids.len(),
        ..Settled::default()
    };
    let mut kept = HashMap::new();
    let mut dropped = Vec::new();
    for (trace_id, trace) in facts {
        let verdict = rules.judge(&trace_id, &trace);
        *settled.traces.entry(verdict).or_default() += 1;
        if verdict.kept() {
            kept.insert(trace_id, trace.failed);
        } else {
            dropped.push(trace_id);
        }
    }
    Ok(Some(SettlePlan {
        ids,
        bounds: (min_start, max_end),
        data,
        kept,
        dropped,
        settled,
    }))
}

/// Replaces the planned blocks with `blocks` (settled) and deletes the dropped traces'
/// entries. Fails, changing nothing, when another writer changed those blocks meanwhile.
async fn apply_settle(
    tx: &mut dyn Tx,
    project: ProjectId,
    plan: &SettlePlan,
    blocks: &[EncodedBlock],
    now: Timestamp,
) -> Result<()> {
    let deleted = tx
        .execute(
            &format!(
                "DELETE FROM span_blocks WHERE id IN ({}) AND settled = 0",
                id_list(&plan.ids)
            ),
            &[],
        )
        .await?;
    if deleted != plan.ids.len() as u64 {
        return Err(StoreError::database(
            "span blocks changed while they were settled (retention ran): settled next time",
        ));
    }
    for block in blocks {
        insert_block(tx, project, block, plan.bounds, true, now).await?;
    }
    for chunk in plan.dropped.chunks(500) {
        let mut values: Vec<Value> = vec![project.0.into()];
        values.extend(chunk.iter().map(|t| Value::from(t.as_str())));
        let marks = (2..=values.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(",");
        tx.execute(
            &format!("DELETE FROM trace_entries WHERE project_id = $1 AND trace_id IN ({marks})"),
            &values,
        )
        .await?;
    }
    Ok(())
}

/// The lines of the `kept` traces (each with whether it failed) in `blocks`, sorted by trace
/// and cut into settled blocks; and how many lines were left out.
fn rewrite(blocks: &[Vec<u8>], kept: &HashMap<String, bool>) -> Result<(Vec<EncodedBlock>, u64)> {
    let raw: Vec<Vec<u8>> = blocks
        .iter()
        .map(|d| decompress(d))
        .collect::<Result<_>>()?;
    let mut lines: Vec<(&str, &[u8])> = Vec::new();
    let mut left_out = 0;
    for line in raw
        .iter()
        .flat_map(|r| r.split(|b| *b == b'\n'))
        .filter(|l| !l.is_empty())
    {
        let trace = line
            .iter()
            .position(|b| *b == b'\t')
            .and_then(|tab| std::str::from_utf8(&line[..tab]).ok())
            .ok_or_else(|| {
                StoreError::database("a span block is damaged: a line without its trace id")
            })?;
        if kept.contains_key(trace) {
            lines.push((trace, line));
        } else {
            left_out += 1;
        }
    }
    // Stable: a trace's spans keep their order.
    lines.sort_by_key(|(trace, _)| *trace);
    let blocks = lines
        .chunks(BLOCK_SPANS)
        .map(|chunk| {
            let mut raw = Vec::with_capacity(chunk.iter().map(|(_, l)| l.len() + 1).sum());
            let mut traces = BTreeMap::new();
            for (trace, line) in chunk {
                raw.extend_from_slice(line);
                raw.push(b'\n');
                traces.insert(trace.to_string(), kept[*trace]);
            }
            EncodedBlock {
                min_start: 0,
                max_end: 0,
                spans: chunk.len(),
                raw_bytes: raw.len(),
                traces,
                data: compress(&raw),
            }
        })
        .collect();
    Ok((blocks, left_out))
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

/// The `WHERE` of a search: every filter of `query`.
fn search_filter(project: ProjectId, query: &TraceQuery) -> Where {
    let mut w = Where::new();
    w.push("project_id = ?", project.0);
    w.equals("trace_id", query.trace_id.as_deref());
    w.glob("service", query.service.as_deref());
    w.glob("name", query.name.as_deref());
    for word in &query.words {
        let pattern = format!("%{}%", escape_like(word));
        w.push("lower(name) LIKE ? ESCAPE '\\'", pattern.as_str());
    }
    if let Some(min) = query.min_duration_ns {
        w.push("duration_ns >= ?", min);
    }
    if let Some(failed) = query.failed {
        w.push("failed = ?", i64::from(failed));
    }
    w.equals("job_id", query.job.as_deref());
    for (key, value) in &query.attributes {
        // The pair as the column writes it: `["key","value"]`, the value a glob.
        let key = serde_json::to_string(key).unwrap_or_default();
        let pattern = if value == "*" {
            format!("%[{},%", escape_like(&key))
        } else {
            let value = serde_json::to_string(value).unwrap_or_default();
            format!("%[{},{}]%", escape_like(&key), glob_like(&value))
        };
        w.push(
            "lower(attributes) LIKE ? ESCAPE '\\'",
            pattern.to_lowercase().as_str(),
        );
    }
    if let Some(from) = query.from {
        w.push("start >= ?", from);
    }
    if let Some(to) = query.to {
        w.push("start < ?", to);
    }
    w
}

async fn search(
    tx: &mut dyn Tx,
    project: ProjectId,
    query: &TraceQuery,
    order: TraceOrder,
    limit: usize,
) -> Result<Vec<TraceEntry>> {
    let w = search_filter(project, query);
    let order = match order {
        TraceOrder::Newest => "start DESC",
        TraceOrder::Slowest => "duration_ns DESC, start DESC",
    };
    let rows = tx
        .query(
            &format!(
                "SELECT trace_id, span_id, service, name, kind, start, duration_ns, failed, \
                 job_id FROM trace_entries{} ORDER BY {order} LIMIT {}",
                w.sql(),
                limit.min(MAX_SEARCH)
            ),
            &w.values,
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(TraceEntry {
                trace_id: row.req_text(0)?,
                span_id: row.req_text(1)?,
                service: row.req_text(2)?,
                name: row.req_text(3)?,
                kind: row.req_text(4)?,
                start: row.req_int(5)?,
                duration_ns: row.req_int(6)?,
                failed: row.req_int(7)? != 0,
                job_id: row.text(8)?,
            })
        })
        .collect()
}

async fn prune(tx: &mut dyn Tx, project: ProjectId, before_ns: i64) -> Result<u64> {
    tx.execute(
        "DELETE FROM trace_entries WHERE project_id = $1 AND start < $2",
        &[project.0.into(), before_ns.into()],
    )
    .await?;
    let mut w = Where::new();
    w.push("project_id = ?", project.0);
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

/// Spans of one project encoded for storage (off the runtime), ready to be written inside
/// any write transaction: [`SpanStore::write_spans`] alone, or with the transactions of an
/// error batch (`crate::errors`), in the same round trips.
pub(crate) struct EncodedSpans {
    project: ProjectId,
    blocks: Vec<EncodedBlock>,
    entries: Vec<Vec<Value>>,
}

impl EncodedSpans {
    pub(crate) async fn encode(project: ProjectId, spans: Vec<Span>) -> Result<EncodedSpans> {
        let entries: Vec<Vec<Value>> = spans
            .iter()
            .filter(|s| s.is_entry())
            .map(|s| entry_row(project, s))
            .collect();
        let blocks = if spans.is_empty() {
            Vec::new()
        } else {
            cpu(move || encode(spans)).await??
        };
        Ok(EncodedSpans {
            project,
            blocks,
            entries,
        })
    }

    /// How many blocks the spans make.
    pub(crate) fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The first round of the write: the entries and the blocks, independent of each other
    /// (so they may go with other writes in one round trip, [`Tx::together`]); each block
    /// answers its id. A batch sent again (the exporter timed out before the answer) names
    /// the same entries, kept once.
    pub(crate) fn writes(&mut self, now: Timestamp) -> Vec<Statement<'static>> {
        if self.blocks.is_empty() {
            return Vec::new();
        }
        let mut writes = vec![Statement::Rows(RowsWrite {
            insert: "INSERT INTO trace_entries (project_id, trace_id, span_id, service, name, \
                     kind, start, duration_ns, failed, job_id, attributes)",
            tail: " ON CONFLICT (project_id, trace_id, span_id) DO NOTHING",
            rows: std::mem::take(&mut self.entries),
        })];
        writes.extend(self.blocks.iter().map(|block| {
            let bounds = (block.min_start, block.max_end);
            Statement::Rows(block_write(self.project, block, bounds, false, now))
        }));
        writes
    }

    /// The second round: the rows of `trace_blocks` naming each block by the id it answered
    /// (`answers`: those of [`writes`](EncodedSpans::writes), in order).
    pub(crate) fn links(&self, answers: &[Vec<Row>]) -> Result<Statement<'static>> {
        let mut rows = Vec::new();
        for (block, answer) in self.blocks.iter().zip(answers.iter().skip(1)) {
            rows.extend(trace_rows(self.project, block, block_id(answer)?));
        }
        Ok(Statement::Rows(RowsWrite {
            insert: INSERT_TRACE_BLOCKS,
            tail: "",
            rows,
        }))
    }

    /// Writes the entries and blocks alone; answers the blocks written.
    pub(crate) async fn write(mut self, tx: &mut dyn Tx, now: Timestamp) -> Result<usize> {
        let answers = tx.together(self.writes(now)).await?;
        tx.together(vec![self.links(&answers)?]).await?;
        Ok(self.blocks())
    }
}

#[async_trait]
impl<E: Engine> SpanStore for Db<E> {
    async fn write_spans(&self, project: ProjectId, spans: Vec<Span>) -> Result<usize> {
        if spans.is_empty() {
            return Ok(0);
        }
        let encoded = EncodedSpans::encode(project, spans).await?;
        let now = Timestamp::now();
        self.write("write_spans", move |tx| {
            Box::pin(async move { encoded.write(tx, now).await })
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
            // An exporter that timed out sends its batch again: one span, shown once.
            spans.dedup_by(|a, b| a.span_id == b.span_id && a.start == b.start);
            Ok(spans)
        })
        .await?
    }

    async fn search_traces(
        &self,
        project: ProjectId,
        query: &TraceQuery,
        order: TraceOrder,
        limit: usize,
    ) -> Result<Vec<TraceEntry>> {
        let query = query.clone();
        self.read("search_traces", move |tx| {
            Box::pin(async move { search(tx, project, &query, order, limit).await })
        })
        .await
    }

    async fn prune_spans(&self, project: ProjectId, before: Timestamp) -> Result<u64> {
        let before_ns = before.millis().saturating_mul(1_000_000);
        self.write("prune_spans", move |tx| {
            Box::pin(prune(tx, project, before_ns))
        })
        .await
    }

    async fn settle_spans(
        &self,
        project: ProjectId,
        before: Timestamp,
        rules: KeepRules,
    ) -> Result<Settled> {
        let before_ns = before.millis().saturating_mul(1_000_000);
        if rules.keep_all() {
            let blocks = self
                .write("settle_spans", move |tx| {
                    Box::pin(async move {
                        tx.execute(
                            "UPDATE span_blocks SET settled = 1 \
                             WHERE project_id = $1 AND settled = 0 AND max_end < $2",
                            &[project.0.into(), before_ns.into()],
                        )
                        .await
                    })
                })
                .await?;
            return Ok(Settled {
                blocks: blocks as usize,
                ..Settled::default()
            });
        }
        // Read and judge, rewrite off the runtime, then swap the blocks in one transaction.
        let Some(mut plan) = self
            .read("settle_spans", move |tx| {
                let rules = rules.clone();
                Box::pin(async move { plan_settle(tx, project, before_ns, &rules).await })
            })
            .await?
        else {
            return Ok(Settled::default());
        };
        let (data, kept) = (
            std::mem::take(&mut plan.data),
            std::mem::take(&mut plan.kept),
        );
        let (blocks, spans_dropped) = cpu(move || rewrite(&data, &kept)).await??;
        plan.settled.spans_dropped = spans_dropped;
        let now = Timestamp::now();
        let plan = std::sync::Arc::new(plan);
        let blocks = std::sync::Arc::new(blocks);
        let (p, b) = (plan.clone(), blocks.clone());
        self.write("settle_spans", move |tx| {
            let (plan, blocks) = (p.clone(), b.clone());
            Box::pin(async move { apply_settle(tx, project, &plan, &blocks, now).await })
        })
        .await?;
        Ok(plan.settled.clone())
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

    #[test]
    fn an_entry_keeps_at_most_its_attribute_budget_for_search_and_stays_valid_json() {
        let mut root = span(1, 1, 0);
        root.kind = vigie_core::span::SpanKind::Server;
        // Hostile: thousands of attributes, one of them alone larger than the budget.
        root.attributes = (0..5000)
            .map(|i| (format!("key.{i}"), "v".repeat(i % 40)))
            .collect();
        root.attributes
            .insert(3, ("huge".into(), "x".repeat(ENTRY_ATTRIBUTE_BYTES * 4)));
        let row = entry_row(ProjectId(1), &root);
        let Value::Text(Some(attributes)) = &row[10] else {
            panic!("the attributes column is text: {:?}", row[10])
        };
        assert!(
            attributes.len() <= ENTRY_ATTRIBUTE_BYTES,
            "{}",
            attributes.len()
        );
        let kept: Vec<(String, String)> = serde_json::from_str(attributes).unwrap();
        assert_eq!(
            kept[0].0, "key.0",
            "the first attributes are kept, in order"
        );
        assert!(
            kept.iter().all(|(k, _)| k != "huge"),
            "the one past the budget is not"
        );
        assert!(kept.len() > 3 && kept.len() < 5000);
    }
}
