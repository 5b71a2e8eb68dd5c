//! Block groups: a project's blocks gathered, oldest first, 64 at a time, with their word
//! filters side by side ([`group_filter`]), so a search for a word finds the blocks that may
//! hold it in a few reads per group rather than one filter per block.
//!
//! ```text
//! group:   blocks after the project's newest group, in id order ─▶ 64 settled ones?
//!            ─▶ their filters (cache or store) ─▶ GroupFilter::build ─▶ write_log_group
//!            (PostgreSQL: log_blocks locked, so every id below the group's last is written)
//! search:  words ─▶ the project's groups, newest first ─▶ in waves (2, 8, 32, … groups):
//!            the chunks the words probe (kept in memory once read: a group never
//!            changes) ─▶ the grouped blocks that may hold them
//!          listing: blocks ending before the groups read so far wait for the next wave; a
//!            block after the groups (`grouped_to`) is checked by its own filter, one up to
//!            it is kept only if its group admits it
//! delete:  a group none of whose blocks is left goes with the last one
//! ```
//!
//! Only blocks that compaction will not merge away are grouped: full ones, or ones written
//! before the settle time (compaction leaves blocks alone until then). A block merged away
//! later still leaves its bits in its group: a search may then list an id that no longer
//! exists, which the listing leaves out.

use super::bloom::Probes;
use super::group_filter::{self, GroupFilter, GROUP_BLOCKS};
use super::{cpu, BLOCK_RECORDS, IDS_PER_STATEMENT};
use crate::sql::{Columns, Value, Where};
use crate::tx::{take_blob, Tx};
use crate::{Result, Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use vigie_core::ProjectId;

/// How long a small block may still be merged by compaction (which leaves blocks 30 s, and
/// runs every minute): grouping waits this long for it.
pub const SETTLE_MS: i64 = 120_000;

/// A block not in a group yet, as grouping weighs it.
#[derive(Clone, Debug)]
pub struct UngroupedBlock {
    pub id: i64,
    pub records: u32,
    pub created_at_ms: i64,
    pub min_time: i64,
    pub max_time: i64,
}

/// The blocks of a project after its newest group.
#[derive(Clone, Debug)]
pub struct Ungrouped {
    /// The newest group's last block (0 when there is none).
    pub grouped_to: i64,
    /// At most [`GROUP_BLOCKS`], in id order.
    pub blocks: Vec<UngroupedBlock>,
}

/// A group to store.
#[derive(Clone, Debug)]
pub struct NewGroup {
    /// Where groups ended when its members were read: the group is refused if that changed.
    pub after: i64,
    pub members: Vec<i64>,
    pub min_time: i64,
    pub max_time: i64,
    pub filter: GroupFilter,
}

/// What the groups of a project say about a search's words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupAnswer {
    /// Every block of the project up to this id belongs to a group.
    pub grouped_to: i64,
    /// The grouped blocks whose filters admit every word, in id order.
    pub may_hold: Vec<i64>,
}

impl GroupAnswer {
    /// Whether a search for the words must read block `id`, as far as groups know: a block
    /// after the groups is for its own filter to say.
    pub fn admits(&self, id: i64) -> bool {
        id > self.grouped_to || self.may_hold.binary_search(&id).is_ok()
    }
}

/// Forms every group `project`'s settled blocks make, oldest first; returns how many. A block
/// is settled when it is full or was written before `settled_before_ms` (see the module doc).
pub async fn group(store: &dyn Store, project: ProjectId, settled_before_ms: i64) -> Result<usize> {
    let mut formed = 0;
    loop {
        let ungrouped = store.log_blocks_to_group(project).await?;
        let settled = ungrouped
            .blocks
            .iter()
            .take_while(|b| {
                b.records as usize > BLOCK_RECORDS / 2 || b.created_at_ms < settled_before_ms
            })
            .count();
        if settled < GROUP_BLOCKS {
            return Ok(formed);
        }
        let members: Vec<i64> = ungrouped.blocks.iter().map(|b| b.id).collect();
        let blooms = store.log_block_blooms(members.clone()).await?;
        if blooms.len() != members.len() {
            // Compaction or retention took one meanwhile: the next pass sees the new order.
            return Ok(formed);
        }
        let filter = cpu(move || {
            let refs: Vec<&[u8]> = blooms.iter().map(|(_, b)| &b[..]).collect();
            GroupFilter::build(&refs)
        })
        .await?;
        let group = NewGroup {
            after: ungrouped.grouped_to,
            min_time: ungrouped
                .blocks
                .iter()
                .map(|b| b.min_time)
                .min()
                .unwrap_or(0),
            max_time: ungrouped
                .blocks
                .iter()
                .map(|b| b.max_time)
                .max()
                .unwrap_or(0),
            members,
            filter,
        };
        match store.write_log_group(project, group).await {
            Ok(()) => formed += 1,
            // Another instance grouped them, or a block came or went: try again later.
            Err(StoreError::Conflict(_)) => return Ok(formed),
            Err(err) => return Err(err),
        }
    }
}

const GROUPED_TO: &str =
    "SELECT coalesce(max(last_block), 0) FROM log_block_groups WHERE project_id = $1";

pub(crate) async fn to_group(tx: &mut dyn Tx, project: ProjectId) -> Result<Ungrouped> {
    let grouped_to = tx.one(GROUPED_TO, &[project.0.into()]).await?.req_int(0)?;
    let rows = tx
        .query(
            &format!(
                "SELECT id, records, created_at, min_time, max_time FROM log_blocks \
                 WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT {GROUP_BLOCKS}"
            ),
            &[project.0.into(), grouped_to.into()],
        )
        .await?;
    let blocks = rows
        .iter()
        .map(|row| {
            Ok(UngroupedBlock {
                id: row.req_int(0)?,
                records: row.req_int(1)? as u32,
                created_at_ms: row.req_int(2)?,
                min_time: row.req_int(3)?,
                max_time: row.req_int(4)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Ungrouped { grouped_to, blocks })
}

pub(crate) async fn write_group(
    tx: &mut dyn Tx,
    project: ProjectId,
    group: &NewGroup,
) -> Result<()> {
    let (Some(&first), Some(&last)) = (group.members.first(), group.members.last()) else {
        return Err(StoreError::Invalid {
            field: "members",
            message: "a block group needs members".into(),
        });
    };
    // On PostgreSQL, a block id is taken before its transaction commits: once no writer holds
    // log_blocks, every id up to `last` that will ever exist is visible here.
    if let Some(lock) = tx.lock_table("log_blocks") {
        tx.execute(&lock, &[]).await?;
    }
    let grouped_to = tx.one(GROUPED_TO, &[project.0.into()]).await?.req_int(0)?;
    let between: Vec<i64> = tx
        .query(
            "SELECT id FROM log_blocks WHERE project_id = $1 AND id > $2 AND id <= $3 \
             ORDER BY id",
            &[project.0.into(), grouped_to.into(), last.into()],
        )
        .await?
        .iter()
        .map(|row| row.req_int(0))
        .collect::<Result<_>>()?;
    if grouped_to != group.after || between != group.members {
        return Err(StoreError::Conflict(
            "log blocks were grouped or changed meanwhile".into(),
        ));
    }
    let members: Vec<u8> = group
        .members
        .iter()
        .flat_map(|id| id.to_le_bytes())
        .collect();
    let id = tx
        .one(
            "INSERT INTO log_block_groups (project_id, first_block, last_block, min_time, \
             max_time, filter_bits, hashes, word_starts, members) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                project.0.into(),
                first.into(),
                last.into(),
                group.min_time.into(),
                group.max_time.into(),
                (group.filter.bits as i64).into(),
                i64::from(group.filter.hashes).into(),
                i64::from(group.filter.word_starts).into(),
                Value::Blob(members),
            ],
        )
        .await?
        .req_int(0)?;
    let chunks = group
        .filter
        .chunks()
        .map(|(n, bits)| vec![id.into(), n.into(), Value::Blob(bits)])
        .collect();
    tx.insert_rows(
        "INSERT INTO log_group_chunks (group_id, chunk, bits)",
        "",
        chunks,
    )
    .await
}

/// Drops the groups of which no block is left (retention, a source deleted).
pub(crate) async fn drop_empty(tx: &mut dyn Tx) -> Result<()> {
    tx.execute(
        "DELETE FROM log_block_groups WHERE NOT EXISTS (SELECT 1 FROM log_blocks b \
         WHERE b.project_id = log_block_groups.project_id \
         AND b.id >= log_block_groups.first_block AND b.id <= log_block_groups.last_block)",
        &[],
    )
    .await?;
    Ok(())
}

/// A stored group as a search reads it (its chunks are read apart, a few at a time).
#[derive(Clone, Debug)]
pub struct BlockGroup {
    pub id: i64,
    pub last_block: i64,
    /// Its members' time range (ns).
    pub min_time: i64,
    pub max_time: i64,
    /// Rows of its filter, and probes per word.
    pub bits: u64,
    pub hashes: u8,
    /// Whether its filter holds word beginnings (every member's did).
    pub word_starts: bool,
    pub members: Vec<i64>,
}

pub(crate) async fn of_project(tx: &mut dyn Tx, project: ProjectId) -> Result<Vec<BlockGroup>> {
    let rows = tx
        .query(
            "SELECT id, last_block, min_time, max_time, filter_bits, hashes, members, \
             word_starts FROM log_block_groups WHERE project_id = $1",
            &[project.0.into()],
        )
        .await?;
    rows.into_iter()
        .map(|mut row| {
            let id = row.req_int(0)?;
            let bits = row.req_int(4)? as u64;
            let hashes = row.req_int(5)?;
            if !bits.is_power_of_two() || !(1..=64).contains(&hashes) {
                return Err(StoreError::database(format!(
                    "log block group {id}: bad filter"
                )));
            }
            let members = take_blob(&mut row, 6)?
                .unwrap_or_default()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            Ok(BlockGroup {
                id,
                last_block: row.req_int(1)?,
                min_time: row.req_int(2)?,
                max_time: row.req_int(3)?,
                bits,
                hashes: hashes as u8,
                word_starts: row.req_int(7)? != 0,
                members,
            })
        })
        .collect()
}

/// The chunks of `groups` that `probes` read, by (group, chunk).
pub(crate) fn probed(groups: &[BlockGroup], probes: &Probes) -> Vec<(i64, i64)> {
    groups
        .iter()
        .flat_map(|g| {
            group_filter::chunks_read(g.bits, g.hashes, probes.for_filter(g.word_starts))
                .into_iter()
                .map(|chunk| (g.id, chunk))
        })
        .collect()
}

/// The chunks of `groups` that `probes` read, as stored: one statement per filter shape and a
/// few hundred groups. A chunk not stored is left out (its group then admits every word).
pub(crate) async fn read_chunks(
    tx: &mut dyn Tx,
    groups: &[BlockGroup],
    probes: &Probes,
) -> Result<Vec<((i64, i64), Arc<[u8]>)>> {
    let mut shapes: BTreeMap<(u64, u8, bool), Vec<i64>> = BTreeMap::new();
    for g in groups {
        shapes
            .entry((g.bits, g.hashes, g.word_starts))
            .or_default()
            .push(g.id);
    }
    let mut chunks = Vec::new();
    for ((bits, hashes, word_starts), ids) in shapes {
        let probed = group_filter::chunks_read(bits, hashes, probes.for_filter(word_starts));
        // A few hundred groups a statement: a count over years of history names thousands.
        for some in ids.chunks(IDS_PER_STATEMENT) {
            let mut w = Where::new();
            w.in_list("group_id", some.iter().copied());
            w.in_list("chunk", probed.iter().copied());
            let sql = format!(
                "SELECT group_id, chunk, bits FROM log_group_chunks{}",
                w.sql()
            );
            for mut row in tx.query(&sql, &w.values).await? {
                let bits = take_blob(&mut row, 2)?.unwrap_or_default();
                chunks.push(((row.req_int(0)?, row.req_int(1)?), bits.into()));
            }
        }
    }
    Ok(chunks)
}

/// The members of `groups` whose filters admit every probe, in id order, from the `chunks`
/// the probes read ([`probed`]).
pub(crate) fn may_hold(
    groups: &[BlockGroup],
    probes: &Probes,
    chunks: &HashMap<(i64, i64), Arc<[u8]>>,
) -> Vec<i64> {
    let mut held: Vec<i64> = groups
        .iter()
        .flat_map(|g| {
            let hashes = probes.for_filter(g.word_starts);
            let admitted = group_filter::members(g.bits, g.hashes, hashes, |n| {
                chunks.get(&(g.id, n)).map(|bits| &bits[..])
            });
            g.members
                .iter()
                .enumerate()
                .filter(move |(i, _)| admitted & (1 << i) != 0)
                .map(|(_, id)| *id)
        })
        .collect();
    held.sort_unstable();
    held
}

/// Every grouped block of `project` in the time range (ns) whose filter may hold every probe,
/// and where groups end.
pub async fn candidates(
    store: &dyn Store,
    project: ProjectId,
    from: Option<i64>,
    to: Option<i64>,
    probes: Probes,
) -> Result<GroupAnswer> {
    let mut waves = Waves::new(store, project, from, to, probes).await?;
    waves.read_more(store, true).await?;
    Ok(waves.answer)
}

/// A search's view of a project's groups, read newest first in waves, so a page of the
/// newest matches of a common word reads the newest groups' chunks only, and a rare word,
/// which needs every group's, reads them in a few statements.
pub(crate) struct Waves {
    probes: Probes,
    /// Groups meeting the search's time range not read yet, newest (`max_time`) first.
    pending: std::collections::VecDeque<BlockGroup>,
    wave: usize,
    answer: GroupAnswer,
}

impl Waves {
    /// Groups read by the first wave; each next one reads four times as many.
    const FIRST: usize = 2;

    pub(crate) async fn new(
        store: &dyn Store,
        project: ProjectId,
        from: Option<i64>,
        to: Option<i64>,
        probes: Probes,
    ) -> Result<Waves> {
        let mut groups = store.log_block_groups(project).await?;
        // Where groups end, whatever the time range: blocks up to it are grouped.
        let grouped_to = groups.iter().map(|g| g.last_block).max().unwrap_or(0);
        groups.retain(|g| {
            from.is_none_or(|from| g.max_time >= from) && to.is_none_or(|to| g.min_time < to)
        });
        groups.sort_by_key(|g| std::cmp::Reverse(g.max_time));
        Ok(Waves {
            probes,
            pending: groups.into(),
            wave: Self::FIRST,
            answer: GroupAnswer {
                grouped_to,
                may_hold: Vec::new(),
            },
        })
    }

    /// What the groups read so far say.
    pub(crate) fn answer(&self) -> &GroupAnswer {
        &self.answer
    }

    /// Blocks ending at or after this time (ns) can be decided now: every group that may
    /// hold one was read. `None`: every group was.
    pub(crate) fn decided_from(&self) -> Option<i64> {
        self.pending.front().map(|g| g.max_time.saturating_add(1))
    }

    /// Reads the next wave of groups (all that are left with `all`); false when none was left.
    pub(crate) async fn read_more(&mut self, store: &dyn Store, all: bool) -> Result<bool> {
        if self.pending.is_empty() {
            return Ok(false);
        }
        let take = if all {
            self.pending.len()
        } else {
            self.wave.min(self.pending.len())
        };
        self.wave = self.wave.saturating_mul(4);
        let groups: Vec<BlockGroup> = self.pending.drain(..take).collect();
        let held = store
            .log_groups_may_hold(groups, self.probes.clone())
            .await?;
        self.answer.may_hold.extend(held);
        self.answer.may_hold.sort_unstable();
        Ok(true)
    }
}
