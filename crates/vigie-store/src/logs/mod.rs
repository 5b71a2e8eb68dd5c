//! The log block engine: how log records are stored, searched, compacted and expired.
//!
//! Logs are not rows. A row per line with a full-text index would cut insert speed many times
//! over; instead records are stored in **blocks** — up to [`BLOCK_RECORDS`] records of one
//! source, sorted by time, zstd-compressed (see [`block`]) — each with a summary row: time
//! range, record count, count per level, sizes and a word bloom filter (see [`bloom`]). Blocks
//! are blobs, so the engine is the same on SQLite and PostgreSQL: a backend only stores and
//! returns blocks through the few `Store` methods named `*log*`.
//!
//! ```text
//! append:  records ─▶ group by source ─▶ encode (sort, compress, bloom) ─▶ write_log_blocks
//! search:  query ─▶ sources it admits ─▶ block summaries in its time range and levels
//!                ─▶ drop blocks whose group (see [`groups`]), or own bloom after the
//!                   groups, lacks a required word or word beginning ([`bloom::Probes`]:
//!                   `invoice`, `invoi*`, the `00012…` a `/INV-00012\d/` runs into)
//!                ─▶ fetch and scan survivors newest first, in parallel, until a page is full:
//!                   a block whose text lacks what every match holds is passed over; in
//!                   the others only the records holding it are read (in place) and tested,
//!                   and only matching ones copied out
//! compact: many small blocks of a source (a quiet app sends a line at a time) ─▶ one block
//! group:   settled blocks gathered 64 at a time, their blooms side by side ([`groups`])
//! retain:  whole blocks dropped past the age or size limits
//! ```
//!
//! Every append is durable when it returns (one transaction); the server gathers concurrent
//! ingest requests into one append, so busy sources make full blocks directly and quiet ones
//! are merged later by [`compact`].

pub mod block;
pub mod bloom;
pub mod group_filter;
pub mod groups;
pub mod positions;
pub(crate) mod sql;
pub(crate) mod store;

pub use positions::FilePosition;
pub use store::LogStore;

use crate::{Result, Store, StoreError};
use block::EncodedBlock;
use bloom::Probes;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;
use std::sync::Arc;
use vigie_core::log::RecordRef;
use vigie_core::logquery::TextFilter;
use vigie_core::{Level, LogQuery, LogRecord, ProjectId};

/// Most records in one block.
pub const BLOCK_RECORDS: usize = 4096;
/// Most text in one block, so blocks of long tracebacks stay a few MiB at most.
pub const BLOCK_RAW_BYTES: usize = 2 << 20;
/// Ids per `IN (…)` list: one round trip for a search's batch, bounded statement sizes.
pub(crate) const IDS_PER_STATEMENT: usize = 256;
/// Blocks scanned per round of a search: enough to keep every core busy.
const SCAN_BATCH: usize = 8;

/// A block to store: the source it belongs to and its encoded form.
#[derive(Clone, Debug)]
pub struct NewLogBlock {
    pub source: String,
    pub block: EncodedBlock,
}

/// A stored block's summary.
#[derive(Clone, Debug)]
pub struct BlockMeta {
    pub id: i64,
    pub source_id: i64,
    pub source: String,
    pub min_time: i64,
    pub max_time: i64,
    pub records: u32,
    pub level_counts: [u32; 7],
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// Present when the filter asked for it, unless the block was deleted between the
    /// listing and the reading of filters; shared with the store's cache of filters.
    pub bloom: Option<std::sync::Arc<[u8]>>,
}

/// Which part of a block's data to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockPart {
    Whole,
    /// Times and levels only (see [`block::decode_head`]): enough for counts and histograms.
    Head,
}

/// Which block summaries to list; `None` means any. Newest (`max_time`) first.
#[derive(Clone, Debug)]
pub struct BlockFilter {
    pub project: Option<ProjectId>,
    /// Blocks holding records at or after this time (ns).
    pub from: Option<i64>,
    /// Blocks holding records before this time (ns).
    pub to: Option<i64>,
    pub sources: Option<Vec<i64>>,
    /// Blocks holding at least one record of these levels.
    pub level_mask: u8,
    /// Blocks of at most this many records (compaction looks for small ones).
    pub max_records: Option<u32>,
    /// Blocks written before this time (ms): compaction leaves the newest alone.
    pub created_before_ms: Option<i64>,
    pub with_bloom: bool,
    /// What the project's block groups say about the search's words: a grouped block they
    /// do not admit is left out, and only blocks after the groups need their own filter.
    pub groups: Option<Arc<groups::GroupAnswer>>,
    /// Blocks listed after this one, newest first: `(max_time, id)` of the last one seen.
    pub after: Option<(i64, i64)>,
    /// At most this many blocks.
    pub limit: Option<usize>,
}

impl Default for BlockFilter {
    fn default() -> Self {
        BlockFilter {
            project: None,
            from: None,
            to: None,
            sources: None,
            level_mask: 0x7f,
            max_records: None,
            created_before_ms: None,
            with_bloom: false,
            groups: None,
            after: None,
            limit: None,
        }
    }
}

/// A source of logs and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSource {
    pub id: i64,
    pub name: String,
    pub blocks: u64,
    pub records: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// Time of its oldest and newest stored record (ns), if it holds any.
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
}

/// Where a record sits: its time, then its block and position, which orders records newest
/// first and makes a page cursor. Written `TIME-BLOCK-INDEX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub time: i64,
    pub block: i64,
    pub index: u32,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.time, self.block, self.index)
    }
}

impl FromStr for Cursor {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Cursor> {
        let invalid = || StoreError::Invalid {
            field: "cursor",
            message: "not a cursor from a previous page".into(),
        };
        let mut parts = s.rsplitn(3, '-');
        let index = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        let block = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        let time = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)?;
        Ok(Cursor { time, block, index })
    }
}

/// A record a search found, and where.
#[derive(Clone, Debug)]
pub struct LogHit {
    pub at: Cursor,
    pub record: LogRecord,
}

impl LogHit {
    /// A record found in a block, copied out of it.
    fn copied(at: Cursor, record: &RecordRef<'_>) -> LogHit {
        LogHit {
            at,
            record: record.to_record(),
        }
    }
}

/// One page of results, newest first.
#[derive(Clone, Debug, Default)]
pub struct SearchPage {
    pub hits: Vec<LogHit>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next: Option<Cursor>,
    /// Blocks in the time range and levels listed (a full page stops the listing), and how
    /// many of those the bloom filters let through were scanned.
    pub blocks_considered: usize,
    pub blocks_scanned: usize,
}

/// Matches counted per level and over time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogStats {
    pub total: u64,
    pub per_level: [u64; 7],
    /// Start of the first bucket and each bucket's width (ns).
    pub start: i64,
    pub bucket: i64,
    pub buckets: Vec<u64>,
}

/// What an append stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub records: usize,
    /// The blocks written, with the source each holds.
    pub blocks: Vec<(i64, String)>,
}

/// Stores `records` of `project` durably, in as few blocks as the size rules allow.
pub async fn append(
    store: &dyn Store,
    project: ProjectId,
    records: Arc<Vec<LogRecord>>,
) -> Result<Appended> {
    append_at(store, project, records, Vec::new()).await
}

/// [`append`], and in the same transaction how far the followed files these records were read
/// from were read (see [`positions`]); positions alone are stored too (blank lines read).
pub async fn append_at(
    store: &dyn Store,
    project: ProjectId,
    records: Arc<Vec<LogRecord>>,
    read: Vec<FilePosition>,
) -> Result<Appended> {
    if records.is_empty() && read.is_empty() {
        return Ok(Appended::default());
    }
    let count = records.len();
    let blocks = cpu(move || encode_by_source(&records)).await?;
    let sources: Vec<String> = blocks.iter().map(|b| b.source.clone()).collect();
    let ids = if read.is_empty() {
        store.write_log_blocks(project, blocks, Vec::new()).await?
    } else {
        store
            .write_followed_log_blocks(project, blocks, read)
            .await?
    };
    Ok(Appended {
        records: count,
        blocks: ids.into_iter().zip(sources).collect(),
    })
}

/// Groups records by source and cuts each group into blocks.
pub fn encode_by_source(records: &[LogRecord]) -> Vec<NewLogBlock> {
    let mut by_source: BTreeMap<&str, Vec<&LogRecord>> = BTreeMap::new();
    for record in records {
        by_source.entry(&record.source).or_default().push(record);
    }
    let mut blocks = Vec::new();
    for (source, records) in by_source {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for record in records {
            bytes += record.text_len();
            chunk.push(record);
            if chunk.len() >= BLOCK_RECORDS || bytes >= BLOCK_RAW_BYTES {
                blocks.push(NewLogBlock {
                    source: source.to_string(),
                    block: block::encode(&mut chunk),
                });
                chunk.clear();
                bytes = 0;
            }
        }
        if !chunk.is_empty() {
            blocks.push(NewLogBlock {
                source: source.to_string(),
                block: block::encode(&mut chunk),
            });
        }
    }
    blocks
}

/// Runs CPU-heavy work (compression, scans, parsing) off the async runtime.
pub(crate) async fn cpu<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::database(format!("a storage worker failed: {e}")))
}

/// The blocks that may hold matches of a query, newest first, after bloom pruning, listed a
/// few at a time: a page of the newest matches is often full after the first blocks, and its
/// cost then does not grow with the history stored behind them. A query with words reads
/// the project's block groups in waves alongside ([`groups::Waves`]): blocks are listed only
/// as far back as the groups read so far can decide.
struct Listing {
    filter: BlockFilter,
    /// The query's own lower time bound (`filter.from` also waits for the waves).
    from: Option<i64>,
    probes: Probes,
    waves: Option<groups::Waves>,
    /// Blocks in the time range and levels listed so far.
    considered: usize,
    done: bool,
}

impl Listing {
    /// Blocks asked for by the first listing; each next one asks for four times as many.
    const FIRST: usize = 32;

    async fn new(
        store: &dyn Store,
        project: ProjectId,
        query: &LogQuery,
        before: Option<i64>,
    ) -> Result<Listing> {
        let sources = if query
            .terms
            .iter()
            .any(|t| matches!(t.test, vigie_core::logquery::Test::Source(_)))
        {
            let all = store.log_source_names(project).await?;
            Some(
                all.into_iter()
                    .filter(|(_, name)| query.admits_source(name))
                    .map(|(id, _)| id)
                    .collect(),
            )
        } else {
            None
        };
        let probes = Probes::of(query);
        let to = match (query.to, before) {
            (Some(to), Some(b)) => Some(to.min(b + 1)),
            (to, b) => to.or(b.map(|b| b + 1)),
        };
        let waves = if probes.is_empty() {
            None
        } else {
            let mut waves =
                groups::Waves::new(store, project, query.from, to, probes.clone()).await?;
            waves.read_more(store, false).await?;
            Some(waves)
        };
        let mut listing = Listing {
            filter: BlockFilter {
                project: Some(project),
                from: query.from,
                to,
                sources,
                level_mask: query.level_mask(),
                with_bloom: !probes.is_empty(),
                ..BlockFilter::default()
            },
            from: query.from,
            probes,
            waves,
            considered: 0,
            done: false,
        };
        listing.follow_waves();
        Ok(listing)
    }

    /// Lists only the blocks the groups read so far can decide, with what they said.
    fn follow_waves(&mut self) {
        let Some(waves) = &self.waves else { return };
        self.filter.from = match (self.from, waves.decided_from()) {
            (Some(from), Some(decided)) => Some(from.max(decided)),
            (from, decided) => from.or(decided),
        };
        self.filter.groups = Some(Arc::new(waves.answer().clone()));
    }

    /// The next blocks whose filters admit the query (possibly none while more are listed);
    /// `None` once every block was listed.
    async fn next(&mut self, store: &dyn Store) -> Result<Option<Vec<BlockMeta>>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let limit = self
                .filter
                .limit
                .map_or(Self::FIRST, |n| n.saturating_mul(4));
            self.filter.limit = Some(limit);
            let metas = store.log_blocks(&self.filter).await?;
            self.considered += metas.len();
            if let Some(last) = metas.last() {
                self.filter.after = Some((last.max_time, last.id));
            }
            // A short listing: the blocks decided so far are all listed. The next wave of
            // groups lets the listing go further back; with none left, every block is
            // listed, and no further statement is sent to learn it (on PostgreSQL that
            // was a round trip per search).
            let short = metas.len() < limit;
            let mut more_decided = false;
            if short {
                if let Some(waves) = &mut self.waves {
                    more_decided = waves.read_more(store, false).await?;
                    self.follow_waves();
                }
            }
            if metas.is_empty() && more_decided {
                continue;
            }
            self.done = short && !more_decided;
            return Ok(Some(self.survivors(metas)));
        }
    }

    /// Every block left, at once (counts, downloads).
    async fn all(mut self, store: &dyn Store) -> Result<Vec<BlockMeta>> {
        if let Some(waves) = &mut self.waves {
            waves.read_more(store, true).await?;
        }
        self.follow_waves();
        self.filter.limit = None;
        let metas = store.log_blocks(&self.filter).await?;
        Ok(self.survivors(metas))
    }

    fn survivors(&self, metas: Vec<BlockMeta>) -> Vec<BlockMeta> {
        metas
            .into_iter()
            .filter(|m| match (&self.filter.groups, &m.bloom) {
                (Some(groups), _) if m.id <= groups.grouped_to => groups.admits(m.id),
                (_, Some(bloom)) => self.probes.admitted_by(bloom),
                // No filter asked, or the block is gone: its data is not found either.
                (_, None) => true,
            })
            .map(|mut m| {
                m.bloom = None;
                m
            })
            .collect()
    }
}

/// Every block that may hold matches of `query`, newest first, after bloom pruning.
async fn candidates(
    store: &dyn Store,
    project: ProjectId,
    query: &LogQuery,
) -> Result<Vec<BlockMeta>> {
    Listing::new(store, project, query, None)
        .await?
        .all(store)
        .await
}

/// A query made ready once per search, then shared by the threads of every round: the query
/// and the [`TextFilter`] of its literals.
struct Matcher {
    query: LogQuery,
    text: TextFilter,
}

impl Matcher {
    fn new(query: &LogQuery) -> Arc<Matcher> {
        Arc::new(Matcher {
            query: query.clone(),
            text: TextFilter::of(query),
        })
    }
}

/// Fetches `metas`' blocks and reads them in parallel, each in place: a block whose text
/// lacks what every match must contain ([`TextFilter`]) is passed over whole, and `found`
/// makes what the search keeps of each record that matches and that `keep` admits — so only
/// those are copied out of the block. With `newest`, each block gives its newest `newest`
/// matches at most, read from its end.
async fn scan<R: Send + 'static>(
    store: &dyn Store,
    metas: &[BlockMeta],
    matcher: &Arc<Matcher>,
    newest: Option<usize>,
    keep: impl Fn(&Cursor) -> bool + Send + Sync + Clone + 'static,
    found: impl Fn(Cursor, &RecordRef<'_>) -> R + Send + Sync + 'static,
) -> Result<Vec<R>> {
    let data = store
        .log_block_data(metas.iter().map(|m| m.id).collect(), BlockPart::Whole)
        .await?;
    let sources: BTreeMap<i64, String> = metas.iter().map(|m| (m.id, m.source.clone())).collect();
    let matcher = matcher.clone();
    cpu(move || {
        let scan_one = |(id, bytes): &(i64, Vec<u8>)| -> Result<Vec<R>> {
            let source = sources.get(id).map(String::as_str).unwrap_or_default();
            let mut out = Vec::new();
            let Some(block) = block::open_if(bytes, |text| matcher.text.admits(text))? else {
                return Ok(out);
            };
            let test = |index, record: &RecordRef<'_>| {
                let at = Cursor {
                    time: record.time,
                    block: *id,
                    index,
                };
                (keep(&at) && matcher.query.matches_ref(record)).then(|| found(at, record))
            };
            if matcher.text.is_empty() && newest.is_none() {
                block.each(source, |index, record| out.extend(test(index, record)))?;
                return Ok(out);
            }
            // Only the records holding the query's literals are read and tested.
            let starts = block.starts()?;
            let mut picked = matcher
                .text
                .records(block.text(), &starts)
                .unwrap_or_else(|| (0..starts.len() as u32).collect());
            if newest.is_some() {
                picked.reverse();
            }
            let most = newest.unwrap_or(usize::MAX);
            block.visit(source, &starts, picked.into_iter(), |index, record| {
                out.extend(test(index, record));
                if out.len() >= most {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            Ok(out)
        };
        parallel(&data, scan_one)
    })
    .await?
}

/// Applies `work` to every element on all cores, keeping the results' order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> Result<Vec<R>> + Sync,
) -> Result<Vec<R>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    if items.len() <= 1 || threads == 1 {
        return items.iter().try_fold(Vec::new(), |mut all, item| {
            all.extend(work(item)?);
            Ok(all)
        });
    }
    let per_thread = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk.iter().try_fold(Vec::new(), |mut all, item| {
                        all.extend(work(item)?);
                        Ok(all)
                    })
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            let part: Result<Vec<R>> = handle
                .join()
                .map_err(|_| StoreError::database("a log scan thread panicked"))?;
            all.extend(part?);
        }
        Ok(all)
    })
}

/// The newest `limit` records matching `query`, older than `before` when paging.
pub async fn search(
    store: &dyn Store,
    project: ProjectId,
    query: &LogQuery,
    limit: usize,
    before: Option<Cursor>,
) -> Result<SearchPage> {
    let limit = limit.max(1);
    let mut listing = Listing::new(store, project, query, before.map(|c| c.time)).await?;
    let mut waiting: std::collections::VecDeque<BlockMeta> = Default::default();
    let matcher = Matcher::new(query);
    let mut hits: Vec<LogHit> = Vec::new();
    let mut scanned = 0;
    // The newest blocks often fill a page alone: the first round reads one block per core,
    // and each round after reads twice as many, up to SCAN_BATCH.
    let mut round = std::thread::available_parallelism().map_or(2, |n| n.get().min(SCAN_BATCH));
    loop {
        while waiting.len() < round {
            match listing.next(store).await? {
                Some(more) => waiting.extend(more),
                None => break,
            }
        }
        let Some(newest) = waiting.front() else { break };
        if hits.len() > limit {
            hits.sort_unstable_by_key(|h| std::cmp::Reverse(h.at));
            hits.truncate(limit + 1);
            // Unscanned blocks end no later than this one: none can hold a newer record.
            if newest.max_time < hits[limit].at.time {
                break;
            }
        }
        let batch: Vec<BlockMeta> = waiting.drain(..round.min(waiting.len())).collect();
        round = (round * 2).min(SCAN_BATCH);
        let keep = move |at: &Cursor| before.is_none_or(|b| *at < b);
        let page = Some(limit + 1);
        hits.extend(scan(store, &batch, &matcher, page, keep, LogHit::copied).await?);
        scanned += batch.len();
    }
    hits.sort_unstable_by_key(|h| std::cmp::Reverse(h.at));
    let more = hits.len() > limit;
    hits.truncate(limit);
    Ok(SearchPage {
        next: more.then(|| hits[limit - 1].at),
        hits,
        blocks_considered: listing.considered,
        blocks_scanned: scanned,
    })
}

/// Counts the matches of `query` per level and in `buckets` equal spans of time (the query's
/// range, or the span of the stored records when it is open).
pub async fn stats(
    store: &dyn Store,
    project: ProjectId,
    query: &LogQuery,
    buckets: usize,
) -> Result<LogStats> {
    let blocks = candidates(store, project, query).await?;
    let buckets = buckets.clamp(1, 1000);
    let start = query
        .from
        .unwrap_or_else(|| blocks.iter().map(|b| b.min_time).min().unwrap_or(0));
    let end = query
        .to
        .unwrap_or_else(|| blocks.iter().map(|b| b.max_time).max().unwrap_or(0) + 1)
        .max(start + 1);
    let width = ((end - start) as u128).div_ceil(buckets as u128).max(1) as i64;
    let mut stats = LogStats {
        start,
        bucket: width,
        buckets: vec![0; buckets],
        ..LogStats::default()
    };
    let mask = query.level_mask();
    let mut blocks = blocks;
    if !query.has_text_terms() {
        // Only time, level and source terms: a block lying within the range and within one
        // bucket is counted from its summary alone; the others need their heads.
        let bucket_of = |time: i64| (time - start) / width;
        blocks.retain(|b| {
            let inside = b.min_time >= start && b.max_time < end;
            if !inside || bucket_of(b.min_time) != bucket_of(b.max_time) {
                return true;
            }
            let bucket = (bucket_of(b.min_time) as usize).min(buckets - 1);
            for level in Level::ALL.iter().filter(|l| mask & l.bit() != 0) {
                let n = u64::from(b.level_counts[*level as usize]);
                stats.total += n;
                stats.per_level[*level as usize] += n;
                stats.buckets[bucket] += n;
            }
            false
        });
    }
    let mut count = |time: i64, level: Level| {
        if time < start || time >= end {
            return;
        }
        stats.total += 1;
        stats.per_level[level as usize] += 1;
        stats.buckets[(((time - start) / width) as usize).min(buckets - 1)] += 1;
    };
    let matcher = Matcher::new(query);
    for batch in blocks.chunks(SCAN_BATCH * 4) {
        if query.has_text_terms() {
            let when = |_, record: &RecordRef<'_>| (record.time, record.level);
            for (time, level) in scan(store, batch, &matcher, None, |_| true, when).await? {
                count(time, level);
            }
        } else {
            let data = store
                .log_block_data(batch.iter().map(|m| m.id).collect(), BlockPart::Head)
                .await?;
            let heads =
                cpu(move || parallel(&data, |(_, bytes)| Ok(vec![block::decode_head(bytes)?])))
                    .await??;
            for head in heads {
                for (time, level) in head.times.iter().zip(head.levels) {
                    if mask & level.bit() != 0 {
                        count(*time, level);
                    }
                }
            }
        }
    }
    Ok(stats)
}

/// Every record matching a query, oldest first, a batch at a time (for downloads). Blocks
/// may overlap in time, so records are merged across them: a record is handed out once no
/// block still unread can hold an older one.
pub struct OldestFirst {
    project: ProjectId,
    matcher: Arc<Matcher>,
    blocks: Vec<BlockMeta>,
    next: usize,
    pending: BinaryHeap<Pending>,
    started: bool,
}

impl OldestFirst {
    pub fn new(project: ProjectId, query: LogQuery) -> OldestFirst {
        OldestFirst {
            project,
            matcher: Matcher::new(&query),
            blocks: Vec::new(),
            next: 0,
            pending: BinaryHeap::new(),
            started: false,
        }
    }

    /// The next records in time order; `None` when all were handed out.
    pub async fn next_batch(&mut self, store: &dyn Store) -> Result<Option<Vec<LogRecord>>> {
        if !self.started {
            self.started = true;
            self.blocks = candidates(store, self.project, &self.matcher.query).await?;
            self.blocks.sort_by_key(|b| (b.min_time, b.id));
        }
        loop {
            // Blocks not yet read start at or after `horizon`: everything before it is final.
            let horizon = self.blocks.get(self.next).map_or(i64::MAX, |b| b.min_time);
            let mut ready = Vec::new();
            while self.pending.peek().is_some_and(|p| p.0.at.time < horizon) {
                ready.extend(self.pending.pop().map(|p| p.0.record));
            }
            if !ready.is_empty() {
                return Ok(Some(ready));
            }
            if self.next >= self.blocks.len() {
                return Ok(None);
            }
            let end = (self.next + SCAN_BATCH).min(self.blocks.len());
            let blocks = &self.blocks[self.next..end];
            let hits = scan(store, blocks, &self.matcher, None, |_| true, LogHit::copied).await?;
            self.pending.extend(hits.into_iter().map(Pending));
            self.next = end;
        }
    }
}

/// A found record waiting its turn in an oldest-first merge (a min-heap by position).
struct Pending(LogHit);

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.0.at == other.0.at
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.at.cmp(&self.0.at)
    }
}

/// Merges runs of small blocks of a source into full ones. Returns blocks merged away.
/// Blocks younger than `settle_ms` are left for later, so a busy source is not merged while
/// it is still filling new blocks.
pub async fn compact(
    store: &dyn Store,
    project: ProjectId,
    now_ms: i64,
    settle_ms: i64,
) -> Result<usize> {
    let small = store
        .log_blocks(&BlockFilter {
            project: Some(project),
            max_records: Some((BLOCK_RECORDS / 2) as u32),
            created_before_ms: Some(now_ms - settle_ms),
            ..BlockFilter::default()
        })
        .await?;
    let mut by_source: BTreeMap<i64, Vec<BlockMeta>> = BTreeMap::new();
    for meta in small {
        by_source.entry(meta.source_id).or_default().push(meta);
    }
    let mut merged = 0;
    for (_, mut metas) in by_source {
        metas.sort_by_key(|m| (m.min_time, m.id));
        let mut group: Vec<BlockMeta> = Vec::new();
        let mut groups = Vec::new();
        for meta in metas {
            let records: u32 = group.iter().map(|m| m.records).sum();
            let bytes: u64 = group.iter().map(|m| m.raw_bytes).sum();
            if records + meta.records > BLOCK_RECORDS as u32
                || bytes + meta.raw_bytes > BLOCK_RAW_BYTES as u64
            {
                groups.push(std::mem::take(&mut group));
            }
            group.push(meta);
        }
        groups.push(group);
        for group in groups.into_iter().filter(|g| g.len() > 1) {
            let source = group[0].source.clone();
            let ids: Vec<i64> = group.iter().map(|m| m.id).collect();
            let data = store.log_block_data(ids.clone(), BlockPart::Whole).await?;
            let blocks = cpu(move || -> Result<Vec<NewLogBlock>> {
                let mut all = Vec::new();
                for (_, bytes) in &data {
                    all.extend(block::decode(bytes, &source)?);
                }
                Ok(encode_by_source(&all))
            })
            .await??;
            match store.write_log_blocks(project, blocks, ids.clone()).await {
                Ok(_) => merged += ids.len(),
                // Retention or a clear removed one of them meanwhile: try again next round.
                Err(StoreError::Conflict(_)) => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(merged)
}

/// How long and how much log data to keep. `None` keeps everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Drop blocks whose newest record is older than this (ns).
    pub max_age_ns: Option<i64>,
    /// Keep at most this many stored bytes in all, dropping the oldest blocks first.
    pub max_bytes: Option<u64>,
    /// Per source name: at most this many stored bytes.
    pub per_source_bytes: Vec<(String, u64)>,
}

/// Drops whole blocks past the limits of `policy`; returns (blocks, bytes) dropped.
pub async fn retain(store: &dyn Store, policy: &Retention, now_ns: i64) -> Result<(usize, u64)> {
    if policy == &Retention::default() {
        return Ok((0, 0));
    }
    let metas = store.log_blocks(&BlockFilter::default()).await?;
    let mut total = 0u64;
    let mut per_source: BTreeMap<&str, u64> = BTreeMap::new();
    let mut doomed = Vec::new();
    let mut freed = 0u64;
    // Newest first: a block goes once the ones newer than it already use the allowance.
    for meta in &metas {
        let used = per_source.entry(meta.source.as_str()).or_default();
        let source_limit = policy
            .per_source_bytes
            .iter()
            .find(|(name, _)| *name == meta.source)
            .map(|(_, limit)| *limit);
        let too_old = policy
            .max_age_ns
            .is_some_and(|age| meta.max_time < now_ns.saturating_sub(age));
        let over_total = policy
            .max_bytes
            .is_some_and(|max| total + meta.stored_bytes > max);
        let over_source = source_limit.is_some_and(|max| *used + meta.stored_bytes > max);
        if too_old || over_total || over_source {
            doomed.push(meta.id);
            freed += meta.stored_bytes;
        } else {
            total += meta.stored_bytes;
            *used += meta.stored_bytes;
        }
    }
    let dropped = doomed.len();
    if dropped > 0 {
        store.delete_log_blocks(doomed).await?;
    }
    Ok((dropped, freed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            time: 1_700_000_000_000_000_000,
            block: 42,
            index: 7,
        };
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        let negative = Cursor {
            time: -5,
            block: 1,
            index: 0,
        };
        assert_eq!(negative.to_string().parse::<Cursor>().unwrap(), negative);
        assert!("nonsense".parse::<Cursor>().is_err());
    }

    #[test]
    fn records_split_by_source_and_size() {
        let records: Vec<LogRecord> = (0..(BLOCK_RECORDS + 10))
            .map(|i| LogRecord {
                time: i as i64,
                source: if i % 2 == 0 { "a" } else { "b" }.into(),
                message: "m".into(),
                ..LogRecord::default()
            })
            .chain(std::iter::once(LogRecord {
                source: "c".into(),
                ..LogRecord::default()
            }))
            .collect();
        let blocks = encode_by_source(&records);
        let summary: Vec<(String, u32)> = blocks
            .iter()
            .map(|b| (b.source.clone(), b.block.records))
            .collect();
        assert_eq!(
            summary,
            [
                ("a".to_string(), 2053),
                ("b".to_string(), 2053),
                ("c".to_string(), 1)
            ]
        );
    }
}
