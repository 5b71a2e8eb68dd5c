//! The word filter of a group of blocks: the bloom filters of up to [`GROUP_BLOCKS`] blocks
//! laid side by side, so "which of these blocks could hold this word?" costs a few 64-bit
//! reads instead of one whole filter per block.
//!
//! A search for a rare word over all history used to read the filter of every block (16 KiB
//! each; 195 MB at 50 M lines): its cost grew with history. Blocks are now gathered, oldest
//! first, into groups of 64, and a group stores its members' filters transposed: row `p` is
//! a 64-bit word whose bit `i` says whether member `i`'s filter has bit `p` set.
//!
//! ```text
//!   member filters (bits)           rows (one u64 per bit position)
//!   block 0: 0 1 1 0 1 …            row 0: 0b…010   ← bit i = block i's bit 0
//!   block 1: 1 1 0 0 1 …      ─▶    row 1: 0b…011
//!   …                               row 2: 0b…001
//!   block 63                        …
//!   a word's probes p1…p7 ─▶ row[p1] & … & row[p7] = the members that may hold it
//! ```
//!
//! The answer is exactly what each member's own filter says: a filter smaller than the group's
//! is repeated up to its size, and since a probe is taken modulo a filter's size, the repeated
//! filter answers every probe as the original does. Rows are stored [`CHUNK_ROWS`] to a chunk
//! (512 bytes), so one word reads at most seven chunks of each group.

use super::bloom::{self, probes};

/// Most blocks in one group: one bit each in a row.
pub const GROUP_BLOCKS: usize = 64;
/// Rows stored together as one chunk.
pub const CHUNK_ROWS: u64 = 64;

/// The transposed filters of a group, ready to be stored chunk by chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFilter {
    /// Rows, one per filter bit: a power of two, at least one chunk's worth.
    pub bits: u64,
    /// Probes per word, as in every member's filter.
    pub hashes: u8,
    /// Whether every member's filter holds word beginnings (see [`bloom`]): when one does not,
    /// the group is not asked about beginnings at all.
    pub word_starts: bool,
    rows: Vec<u64>,
}

impl GroupFilter {
    /// Lays `blooms` (stored filters, as [`bloom::Bloom`] writes them) side by side, member
    /// `i` at bit `i`. A damaged filter, or one probing a different number of times, admits
    /// every word, as [`bloom::Bloom::may_contain`] does with it alone.
    pub fn build(blooms: &[&[u8]]) -> GroupFilter {
        assert!(
            blooms.len() <= GROUP_BLOCKS,
            "a group holds at most 64 blocks"
        );
        let hashes = bloom::HASHES;
        let usable = |stored: &[u8]| -> Option<usize> {
            let (count, _, bits) = bloom::Bloom::header(stored)?;
            (count == hashes).then_some(bits.len() * 8)
        };
        // A damaged member admits everything, beginnings included.
        let word_starts = blooms.iter().all(|stored| {
            usable(stored).is_none() || bloom::Bloom::header(stored).is_some_and(|(_, s, _)| s)
        });
        let bits = blooms
            .iter()
            .filter_map(|b| usable(b))
            .max()
            .unwrap_or(0)
            .max(bloom::MIN_BYTES * 8)
            .max(CHUNK_ROWS as usize);
        let mut rows = vec![0u64; bits];
        for (member, stored) in blooms.iter().enumerate() {
            let bit = 1u64 << member;
            let Some(own) = usable(stored) else {
                rows.iter_mut().for_each(|row| *row |= bit);
                continue;
            };
            let filter = &stored[1..];
            for (byte_at, &byte) in filter.iter().enumerate().filter(|(_, b)| **b != 0) {
                for shift in (0..8).filter(|s| byte & (1 << s) != 0) {
                    // Repeated up to the group's size: position p answers as p mod own.
                    let position = byte_at * 8 + shift;
                    for row in rows[position..].iter_mut().step_by(own) {
                        *row |= bit;
                    }
                }
            }
        }
        GroupFilter {
            bits: bits as u64,
            hashes,
            word_starts,
            rows,
        }
    }

    /// The stored chunks: (chunk number, its rows as little-endian u64s).
    pub fn chunks(&self) -> impl Iterator<Item = (i64, Vec<u8>)> + '_ {
        self.rows
            .chunks(CHUNK_ROWS as usize)
            .enumerate()
            .map(|(n, rows)| {
                (
                    n as i64,
                    rows.iter().flat_map(|r| r.to_le_bytes()).collect(),
                )
            })
    }
}

/// The rows (filter bit positions) the words hashed to `words` probe in a group filter of
/// `bits` rows.
fn rows_probed(bits: u64, hashes: u8, words: &[u64]) -> impl Iterator<Item = u64> + '_ {
    let mask = bits - 1;
    words
        .iter()
        .flat_map(move |&hash| probes(hash, hashes).map(move |p| p & mask))
}

/// The chunks a search for `words` reads from a group filter of `bits` rows, in order.
pub fn chunks_read(bits: u64, hashes: u8, words: &[u64]) -> Vec<i64> {
    let mut chunks: Vec<i64> = rows_probed(bits, hashes, words)
        .map(|row| (row / CHUNK_ROWS) as i64)
        .collect();
    chunks.sort_unstable();
    chunks.dedup();
    chunks
}

/// The members (bit `i` for member `i`) whose filters admit every word of `words`, from the
/// chunks read (`chunk(n)` gives chunk `n`'s bytes). A chunk missing or damaged admits all.
pub fn members<'a>(
    bits: u64,
    hashes: u8,
    words: &[u64],
    chunk: impl Fn(i64) -> Option<&'a [u8]>,
) -> u64 {
    rows_probed(bits, hashes, words).fold(u64::MAX, |admitted, row| {
        let at = (row % CHUNK_ROWS) as usize * 8;
        let value = chunk((row / CHUNK_ROWS) as i64)
            .and_then(|bytes| bytes.get(at..at + 8))
            .map_or(u64::MAX, |b| {
                u64::from_le_bytes(b.try_into().expect("8 bytes"))
            });
        admitted & value
    })
}

#[cfg(test)]
mod tests {
    use super::super::bloom::Bloom;
    use super::*;
    use std::collections::HashMap;

    fn filter_of(words: impl Iterator<Item = String>) -> Vec<u8> {
        let mut builder = Bloom::builder();
        words.for_each(|w| builder.add(&w));
        builder.finish()
    }

    /// A group's chunks as stored, and what they answer for words, read as a search reads
    /// them: only the chunks [`chunks_read`] names.
    struct Stored(GroupFilter, HashMap<i64, Vec<u8>>);

    impl Stored {
        fn new(group: GroupFilter) -> Stored {
            let chunks = group.chunks().collect();
            Stored(group, chunks)
        }

        fn answer(&self, words: &[u64]) -> u64 {
            let Stored(group, stored) = self;
            let read = chunks_read(group.bits, group.hashes, words);
            members(group.bits, group.hashes, words, |n| {
                read.contains(&n)
                    .then(|| stored.get(&n).map(Vec::as_slice))
                    .flatten()
            })
        }
    }

    #[test]
    fn a_group_answers_exactly_what_each_members_filter_answers() {
        // Members of very different sizes (64 B to 16 KiB), so most are repeated.
        let blooms: Vec<Vec<u8>> = (0..GROUP_BLOCKS)
            .map(|i| filter_of((0..(i * i * 4 + 1)).map(move |w| format!("w{i}-{w}"))))
            .collect();
        let sizes: std::collections::BTreeSet<usize> = blooms.iter().map(Vec::len).collect();
        assert!(sizes.len() > 5, "{sizes:?}");
        let refs: Vec<&[u8]> = blooms.iter().map(Vec::as_slice).collect();
        let group = Stored::new(GroupFilter::build(&refs));
        assert_eq!(
            group.0.bits as usize,
            (blooms.iter().map(Vec::len).max().unwrap() - 1) * 8
        );
        let mut admitted_some = 0;
        for probe in 0..3_000 {
            let word = format!("w{}-{}", probe % 70, probe / 70);
            let hash = Bloom::hash(&word);
            let expected = refs
                .iter()
                .enumerate()
                .filter(|(_, b)| Bloom::may_contain(b, hash))
                .fold(0u64, |mask, (i, _)| mask | 1 << i);
            assert_eq!(group.answer(&[hash]), expected, "{word}");
            admitted_some += u32::from(expected != 0);
        }
        assert!(admitted_some > 1_000);
        // Two words: the members admitting both.
        let (a, b) = (Bloom::hash("w63-1"), Bloom::hash("w62-2"));
        let both = group.answer(&[a]) & group.answer(&[b]);
        assert_eq!(group.answer(&[a, b]), both);
        assert_eq!(both & (1 << 63 | 1 << 62), 0, "no member holds both words");
    }

    #[test]
    fn damaged_filters_and_missing_chunks_admit_every_word() {
        let good = filter_of((0..100).map(|w| format!("x{w}")));
        let group = Stored::new(GroupFilter::build(&[
            &good,
            &[],
            &[9, 1, 2, 3, 4],
            &[7, 1, 2, 3],
        ]));
        let hash = Bloom::hash("absent");
        assert_eq!(group.answer(&[hash]) & 0b1110, 0b1110);
        assert_eq!(
            members(group.0.bits, group.0.hashes, &[hash], |_| None),
            u64::MAX
        );
        // No words: every member.
        assert_eq!(group.answer(&[]), u64::MAX);
    }

    #[test]
    fn a_group_answers_for_beginnings_only_when_every_member_keeps_them() {
        let new = filter_of(["invoice".to_string()].into_iter());
        let mut old = new.clone();
        old[0] = bloom::HASHES;
        assert!(GroupFilter::build(&[&new, &new]).word_starts);
        assert!(
            GroupFilter::build(&[&new, &[]]).word_starts,
            "damaged admits all"
        );
        assert!(!GroupFilter::build(&[&new, &old]).word_starts);
    }

    #[test]
    fn a_word_reads_at_most_one_chunk_per_probe() {
        let group = GroupFilter::build(&[&filter_of((0..20_000).map(|w| format!("y{w}")))]);
        assert_eq!(group.chunks().count() as u64, group.bits / CHUNK_ROWS);
        assert!(group.chunks().all(|(_, bytes)| bytes.len() == 512));
        let read = chunks_read(group.bits, group.hashes, &[Bloom::hash("y7")]);
        assert!(!read.is_empty() && read.len() <= 7, "{read:?}");
    }
}
