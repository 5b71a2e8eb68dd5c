//! The primitives the block engine keeps blocks with, written once for both backends (see
//! [`crate::tx::Tx`]): store and replace blocks, list their summaries, fetch their data.

use super::bloom::Probes;
use super::groups::{self, BlockGroup, NewGroup, Ungrouped};
use super::positions::{self, FilePosition};
use super::sql;
use super::IDS_PER_STATEMENT;
use super::{BlockFilter, BlockMeta, BlockPart, LogSource, NewLogBlock};
use crate::engine::{Db, Engine};
use crate::sql::{null_column, Columns, Where};
use crate::tx::{take_blob, Tx};
use crate::{Result, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use vigie_core::{ProjectId, Timestamp};

/// Bytes of bloom filters a store keeps in memory (about 500 full blocks' worth): a search
/// reads the filters of the blocks after a project's groups only (fewer than 64 once they
/// settle), so this holds them for many projects.
pub(crate) const BLOOM_CACHE_BYTES: usize = 8 << 20;
/// Bytes of block heads a store keeps in memory: a head is a few KiB (zstd of times and
/// levels), so about 20 M records' worth.
pub(crate) const HEAD_CACHE_BYTES: usize = 16 << 20;

/// Bytes of whole blocks a store on PostgreSQL keeps in memory: about 200 blocks of 160 KiB,
/// what the searches of a page and its refreshes read again.
pub(crate) const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// Bytes of block groups' filter chunks a store keeps in memory: a word probes seven 512-byte
/// chunks per group (0.7 MB over the 191 groups of 50 M lines), so this holds the chunks of
/// a dozen words searched again (paging, refreshes, the same word in another window).
pub(crate) const CHUNK_CACHE_BYTES: usize = 8 << 20;

/// Parts of blocks already read (bloom filters, heads), by block id. A block never changes
/// once written and its id is never given again (`AUTOINCREMENT` on SQLite, a sequence on
/// PostgreSQL), so a part read once stays right for as long as the process runs: a search
/// then reads only the blocks' small summaries, and the parts of blocks it has not met yet.
/// (On PostgreSQL every filter and head would otherwise cross the wire at every search; whole
/// blocks are kept there too, in a smaller cache.)
/// Bounded by bytes; the parts read first leave first; a block this store deletes
/// (compaction, retention) leaves at once, and one another instance deleted is never asked
/// for again and leaves with age.
///
/// Keys are block ids, or (group, chunk) for the chunks of block groups' filters, which never
/// change either once written.
pub(crate) struct BlobCache<K = i64, V = Arc<[u8]>> {
    limit: usize,
    blobs: std::sync::Mutex<Blobs<K, V>>,
}

/// A value a [`BlobCache`] keeps, weighed by its bytes.
pub(crate) trait Blob: Clone {
    fn bytes(&self) -> usize;
}

impl Blob for Arc<[u8]> {
    fn bytes(&self) -> usize {
        self.len()
    }
}

impl Blob for Arc<str> {
    fn bytes(&self) -> usize {
        self.len()
    }
}

struct Blobs<K, V> {
    by_id: HashMap<K, V>,
    order: std::collections::VecDeque<K>,
    bytes: usize,
}

impl<K: Copy + Eq + std::hash::Hash, V: Blob> BlobCache<K, V> {
    pub(crate) fn new(limit: usize) -> BlobCache<K, V> {
        BlobCache {
            limit,
            blobs: std::sync::Mutex::new(Blobs {
                by_id: HashMap::new(),
                order: Default::default(),
                bytes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blobs<K, V>> {
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The parts known of `ids`, and the ids whose part must be read.
    fn look_up(&self, ids: &[K]) -> (HashMap<K, V>, Vec<K>) {
        let blobs = self.lock();
        let mut missing = Vec::new();
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            match blobs.by_id.get(id) {
                Some(blob) => {
                    found.insert(*id, blob.clone());
                }
                None => missing.push(*id),
            }
        }
        (found, missing)
    }

    /// The parts of `ids` this cache knows, and those `read` gives of the others (asked once,
    /// all together), kept as they come.
    async fn read_through<F, Fut>(&self, ids: &[K], read: F) -> Result<HashMap<K, V>>
    where
        F: FnOnce(Vec<K>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(K, V)>>>,
    {
        let (mut found, missing) = self.look_up(ids);
        if !missing.is_empty() {
            for (id, blob) in read(missing).await? {
                self.keep(id, blob.clone());
                found.insert(id, blob);
            }
        }
        Ok(found)
    }

    /// Whether this cache keeps anything (one of limit 0 does not).
    fn keeps_any(&self) -> bool {
        self.limit > 0
    }

    fn keep(&self, id: K, blob: V) {
        let mut blobs = self.lock();
        if blob.bytes() > self.limit || blobs.by_id.contains_key(&id) {
            return;
        }
        while blobs.bytes + blob.bytes() > self.limit {
            let Some(oldest) = blobs.order.pop_front() else {
                break;
            };
            if let Some(gone) = blobs.by_id.remove(&oldest) {
                blobs.bytes -= gone.bytes();
            }
        }
        blobs.bytes += blob.bytes();
        blobs.order.push_back(id);
        blobs.by_id.insert(id, blob);
    }

    pub(crate) fn forget(&self, ids: &[K]) {
        let mut blobs = self.lock();
        for id in ids {
            if let Some(gone) = blobs.by_id.remove(id) {
                blobs.bytes -= gone.bytes();
            }
        }
        // Ids left in `order` without a part are skipped when they come up; but a cache that
        // never fills never reaches them, so they are swept once they outnumber the parts
        // (each forgotten block would otherwise hold 8 bytes here for the life of the process).
        if blobs.order.len() > 2 * blobs.by_id.len() + 64 {
            let Blobs { by_id, order, .. } = &mut *blobs;
            order.retain(|id| by_id.contains_key(id));
        }
    }
}

/// Log sources' names, by source id, kept as block parts are: a source keeps its name for as
/// long as it exists and its id is never given again (`AUTOINCREMENT` on SQLite, a sequence on
/// PostgreSQL), so a name read once stays right, and a listing of blocks reads their rows
/// alone. (Joined to `log_sources` instead, a listing on PostgreSQL spent about half its
/// planning and a third of its execution on the join.)
pub(crate) type SourceNames = BlobCache<i64, Arc<str>>;

/// Bytes of source names a store keeps in memory: tens of thousands of sources.
pub(crate) const SOURCE_NAME_BYTES: usize = 1 << 20;

/// Gives each block its source's name from `names`; `unknown` reads the names it lacks (asked
/// once, all together, each id once). A block whose source is gone (deleted meanwhile, with
/// its blocks) keeps an empty name: its data is not found either.
async fn name_sources<F, Fut>(
    names: &SourceNames,
    metas: &mut [BlockMeta],
    unknown: F,
) -> Result<()>
where
    F: FnOnce(Vec<i64>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(i64, Arc<str>)>>>,
{
    let mut ids: Vec<i64> = metas.iter().map(|m| m.source_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let found = names.read_through(&ids, unknown).await?;
    for meta in metas {
        if let Some(name) = found.get(&meta.source_id) {
            meta.source = name.to_string();
        }
    }
    Ok(())
}

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
    /// Stores `blocks` as [`write_log_blocks`](Self::write_log_blocks) does and, in the same
    /// transaction, how far each followed file was read (what `blocks` hold came from before
    /// those points).
    async fn write_followed_log_blocks(
        &self,
        project: ProjectId,
        blocks: Vec<NewLogBlock>,
        positions: Vec<FilePosition>,
    ) -> Result<Vec<i64>>;
    /// How far `host`'s followed files were read and stored, by path.
    async fn followed_files(&self, host: &str) -> Result<Vec<FilePosition>>;
    /// Block summaries the filter selects, newest first: as many as the statement found (at
    /// most `limit`), so a shorter answer means every such block is listed.
    async fn log_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockMeta>>;
    /// The bloom filters of these blocks, in the order asked; ids no longer stored are left out.
    async fn log_block_blooms(&self, ids: Vec<i64>) -> Result<Vec<(i64, Arc<[u8]>)>>;
    /// The blocks of `project` after its newest group, oldest first (see [`groups`]).
    async fn log_blocks_to_group(&self, project: ProjectId) -> Result<Ungrouped>;
    /// Stores a group of `project`'s blocks; `Conflict` if groups or the blocks it takes
    /// changed since they were read.
    async fn write_log_group(&self, project: ProjectId, group: NewGroup) -> Result<()>;
    /// `project`'s block groups, without their filters' chunks.
    async fn log_block_groups(&self, project: ProjectId) -> Result<Vec<BlockGroup>>;
    /// The members of `groups` whose filters admit every probe, in id order.
    async fn log_groups_may_hold(
        &self,
        groups: Vec<BlockGroup>,
        probes: Probes,
    ) -> Result<Vec<i64>>;
    /// The data of these blocks (whole, or the head alone), in the order asked; ids no longer
    /// stored are left out.
    async fn log_block_data(&self, ids: Vec<i64>, part: BlockPart) -> Result<Vec<(i64, Vec<u8>)>>;
    /// A project's log sources with what each holds, by name.
    async fn log_sources(&self, project: ProjectId) -> Result<Vec<LogSource>>;
    /// A project's log sources, id and name only: what a search by source needs, without
    /// summing every block as [`log_sources`](Self::log_sources) does.
    async fn log_source_names(&self, project: ProjectId) -> Result<Vec<(i64, String)>>;
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
    if deleted > 0 {
        groups::drop_empty(tx).await?;
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

/// The names of the sources `ids` (those that still exist).
async fn source_names(tx: &mut dyn Tx, ids: &[i64]) -> Result<Vec<(i64, Arc<str>)>> {
    let mut names = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let w = ids_in(chunk);
        let sql = format!("SELECT id, name FROM log_sources{}", w.sql());
        for row in tx.query(&sql, &w.values).await? {
            names.push((row.req_int(0)?, row.req_text(1)?.into()));
        }
    }
    Ok(names)
}

/// The bloom filters of the blocks `ids` (those that still exist).
async fn block_blooms(tx: &mut dyn Tx, ids: &[i64]) -> Result<Vec<(i64, Arc<[u8]>)>> {
    let mut blooms = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let w = ids_in(chunk);
        let sql = format!("SELECT id, bloom FROM log_blocks{}", w.sql());
        for mut row in tx.query(&sql, &w.values).await? {
            let bloom = take_blob(&mut row, 1)?.ok_or_else(|| null_column(1))?;
            blooms.push((row.req_int(0)?, bloom.into()));
        }
    }
    Ok(blooms)
}

async fn block_data(tx: &mut dyn Tx, ids: &[i64], part: BlockPart) -> Result<Vec<(i64, Vec<u8>)>> {
    // A head is a prefix of the data: PostgreSQL reads just the TOAST chunks that hold it (the
    // column is stored uncompressed for this), SQLite just the pages. Blocks written before
    // heads were measured (head_end NULL) are read whole; decoding a head needs no more.
    let data = match part {
        BlockPart::Whole => "data",
        BlockPart::Head => {
            "CASE WHEN head_end IS NULL THEN data \
             ELSE substr(data, 1, CAST(head_end AS INTEGER)) END"
        }
    };
    let mut by_id: HashMap<i64, Vec<u8>> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let w = ids_in(chunk);
        let sql = format!("SELECT id, {data} FROM log_blocks{}", w.sql());
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
        self.forget_blocks(&replacing);
        self.write("write_log_blocks", move |tx| {
            Box::pin(async move { write_blocks(tx, project, &blocks, &replacing).await })
        })
        .await
    }

    async fn write_followed_log_blocks(
        &self,
        project: ProjectId,
        blocks: Vec<NewLogBlock>,
        read: Vec<FilePosition>,
    ) -> Result<Vec<i64>> {
        self.write("write_followed_log_blocks", move |tx| {
            Box::pin(async move {
                let ids = write_blocks(tx, project, &blocks, &[]).await?;
                positions::write(tx, &read).await?;
                Ok(ids)
            })
        })
        .await
    }

    async fn followed_files(&self, host: &str) -> Result<Vec<FilePosition>> {
        let host = host.to_string();
        self.read("followed_files", move |tx| {
            Box::pin(async move { positions::of_host(tx, &host).await })
        })
        .await
    }

    async fn log_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockMeta>> {
        // The summaries alone; their filters come from the cache, or are read once.
        let (query, values) = sql::blocks_query(&BlockFilter {
            with_bloom: false,
            ..filter.clone()
        });
        let mut metas = self
            .read("log_blocks", move |tx| {
                Box::pin(async move {
                    let rows = tx.query(&query, &values).await?;
                    rows.into_iter()
                        .map(|mut r| sql::block_from(&mut r, false))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .await?;
        name_sources(self.source_names(), &mut metas, |ids| {
            self.read("log_source_names", move |tx| {
                Box::pin(async move { source_names(tx, &ids).await })
            })
        })
        .await?;
        if !filter.with_bloom {
            return Ok(metas);
        }
        // A grouped block's filter is in its group's: only the blocks after the groups need
        // their own.
        let grouped_to = filter.groups.as_ref().map_or(0, |g| g.grouped_to);
        let ids: Vec<i64> = metas
            .iter()
            .map(|m| m.id)
            .filter(|id| *id > grouped_to)
            .collect();
        let mut found: HashMap<i64, Arc<[u8]>> =
            self.log_block_blooms(ids).await?.into_iter().collect();
        // A block deleted between the two reads has no filter. It stays listed (its data is
        // not found when the search reads it), so the listing keeps the length its
        // statement gave: a listing shorter than its limit has listed every block.
        for meta in &mut metas {
            meta.bloom = found.remove(&meta.id);
        }
        Ok(metas)
    }

    async fn log_block_blooms(&self, ids: Vec<i64>) -> Result<Vec<(i64, Arc<[u8]>)>> {
        let mut found = self
            .blooms()
            .read_through(&ids, |missing| {
                self.read("log_blooms", move |tx| {
                    Box::pin(async move { block_blooms(tx, &missing).await })
                })
            })
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id).map(|bloom| (*id, bloom)))
            .collect())
    }

    async fn log_blocks_to_group(&self, project: ProjectId) -> Result<Ungrouped> {
        self.read("log_blocks_to_group", move |tx| {
            Box::pin(groups::to_group(tx, project))
        })
        .await
    }

    async fn write_log_group(&self, project: ProjectId, group: NewGroup) -> Result<()> {
        let members = group.members.clone();
        self.write("write_log_group", move |tx| {
            Box::pin(async move { groups::write_group(tx, project, &group).await })
        })
        .await?;
        // No search reads a grouped block's own filter again: room for the others.
        self.blooms().forget(&members);
        Ok(())
    }

    async fn log_block_groups(&self, project: ProjectId) -> Result<Vec<BlockGroup>> {
        self.read("log_block_groups", move |tx| {
            Box::pin(groups::of_project(tx, project))
        })
        .await
    }

    async fn log_groups_may_hold(
        &self,
        groups: Vec<BlockGroup>,
        probes: Probes,
    ) -> Result<Vec<i64>> {
        let probed = groups::probed(&groups, &probes);
        let chunks = self
            .group_chunks()
            .read_through(&probed, |missing| {
                // The groups any of whose chunks is missing, read whole (one statement shape).
                let unread: std::collections::HashSet<i64> = missing.iter().map(|k| k.0).collect();
                let to_read: Vec<BlockGroup> = groups
                    .iter()
                    .filter(|g| unread.contains(&g.id))
                    .cloned()
                    .collect();
                let probes = probes.clone();
                self.read("log_group_chunks", move |tx| {
                    Box::pin(async move { groups::read_chunks(tx, &to_read, &probes).await })
                })
            })
            .await?;
        Ok(groups::may_hold(&groups, &probes, &chunks))
    }

    async fn log_block_data(&self, ids: Vec<i64>, part: BlockPart) -> Result<Vec<(i64, Vec<u8>)>> {
        // Heads are what counts and histograms read, of every block they cover, at every
        // refresh: kept, as the filters are; whole blocks on PostgreSQL only.
        let cache = match part {
            BlockPart::Head => self.heads(),
            BlockPart::Whole => self.blocks(),
        };
        if !cache.keeps_any() {
            return self
                .read("log_block_data", move |tx| {
                    Box::pin(async move { block_data(tx, &ids, part).await })
                })
                .await;
        }
        let mut found = cache
            .read_through(&ids, |missing| async move {
                let read = self
                    .read("log_block_data", move |tx| {
                        Box::pin(async move { block_data(tx, &missing, part).await })
                    })
                    .await?;
                Ok(read.into_iter().map(|(id, d)| (id, d.into())).collect())
            })
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id).map(|data| (*id, data.to_vec())))
            .collect())
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

    async fn log_source_names(&self, project: ProjectId) -> Result<Vec<(i64, String)>> {
        self.read("log_source_names", move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT id, name FROM log_sources WHERE project_id = $1",
                        &[project.0.into()],
                    )
                    .await?;
                rows.iter()
                    .map(|row| Ok((row.req_int(0)?, row.req_text(1)?)))
                    .collect()
            })
        })
        .await
    }

    async fn delete_log_blocks(&self, ids: Vec<i64>) -> Result<u64> {
        self.forget_blocks(&ids);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_cache_keeps_within_its_bytes_and_forgets_deleted_blocks() {
        let cache = BlobCache::new(BLOOM_CACHE_BYTES);
        let bloom = |n: usize| -> Arc<[u8]> { vec![7u8; n].into() };
        cache.keep(1, bloom(100));
        cache.keep(2, bloom(100));
        let (found, missing) = cache.look_up(&[1, 2, 3]);
        assert_eq!((found.len(), missing), (2, vec![3]));
        cache.forget(&[1]);
        assert_eq!(cache.look_up(&[1]).1, vec![1]);
        // Filling it past its bytes sends the oldest away first.
        let big = BLOOM_CACHE_BYTES / 2;
        cache.keep(10, bloom(big));
        cache.keep(11, bloom(big));
        let (found, missing) = cache.look_up(&[2, 10, 11]);
        assert_eq!(missing, vec![2]);
        assert_eq!(found.len(), 2);
        assert!(cache.lock().bytes <= BLOOM_CACHE_BYTES);
        // One larger than the whole cache is not kept.
        cache.keep(12, bloom(BLOOM_CACHE_BYTES + 1));
        assert_eq!(cache.look_up(&[12]).1, vec![12]);
    }

    #[test]
    fn forgotten_parts_leave_no_trace_in_a_cache_that_never_fills() {
        let cache: BlobCache = BlobCache::new(BLOOM_CACHE_BYTES);
        let bloom = |n: usize| -> Arc<[u8]> { vec![7u8; n].into() };
        // Retention deleting blocks as new ones come, for a long time, far below the limit.
        for id in 0..100_000 {
            cache.keep(id, bloom(16));
            if id >= 10 {
                cache.forget(&[id - 10]);
            }
        }
        let blobs = cache.lock();
        assert_eq!(blobs.by_id.len(), 10);
        assert_eq!(blobs.bytes, 10 * 16);
        assert!(
            blobs.order.len() <= 2 * 10 + 64,
            "{} ids",
            blobs.order.len()
        );
        drop(blobs);
        // What is kept is still found, oldest first out.
        let (found, missing) = cache.look_up(&[99_990, 99_999, 5]);
        assert_eq!((found.len(), missing), (2, vec![5]));
    }

    #[tokio::test]
    async fn source_names_are_read_once_and_a_gone_source_is_left_unnamed() {
        let names = SourceNames::new(SOURCE_NAME_BYTES);
        let meta = |source_id| BlockMeta {
            id: 0,
            source_id,
            source: String::new(),
            min_time: 0,
            max_time: 0,
            records: 0,
            level_counts: [0; 7],
            raw_bytes: 0,
            stored_bytes: 0,
            bloom: None,
        };
        let asked = std::sync::Mutex::new(Vec::new());
        let read = |ids: Vec<i64>| {
            asked.lock().unwrap().push(ids.clone());
            // Source 3 is gone.
            let found = ids
                .into_iter()
                .filter(|id| *id != 3)
                .map(|id| (id, Arc::from(format!("Source-{id}"))));
            std::future::ready(Ok(found.collect()))
        };
        let mut metas = vec![meta(2), meta(1), meta(2), meta(3)];
        name_sources(&names, &mut metas, read).await.unwrap();
        let named: Vec<&str> = metas.iter().map(|m| m.source.as_str()).collect();
        assert_eq!(named, ["Source-2", "Source-1", "Source-2", ""]);
        let mut again = vec![meta(1), meta(2)];
        name_sources(&names, &mut again, read).await.unwrap();
        assert_eq!(again[1].source, "Source-2");
        // Asked once, for the ids it lacked, each once; then only for the gone one.
        let mut third = vec![meta(3)];
        name_sources(&names, &mut third, read).await.unwrap();
        assert_eq!(*asked.lock().unwrap(), vec![vec![1, 2, 3], vec![3]]);
    }
}
