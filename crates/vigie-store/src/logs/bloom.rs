//! The word bloom filter of a log block: "could this block hold the word?" in a few bit tests.
//!
//! Every word of every record in a block (see `vigie_core::log::tokens`) is hashed once with
//! xxh3; the filter sets `HASHES` bits per distinct word, derived from that one hash by double
//! hashing. About 10 bits per distinct word gives a false-positive rate near 1%: a search for a
//! rare word reads about one block in a hundred that does not hold it, and never misses one
//! that does.
//!
//! Stored form: one byte with the number of hashes, then the bit array (a power of two bytes).

use xxhash_rust::xxh3::xxh3_64;

pub(crate) const HASHES: u8 = 7;
const BITS_PER_WORD: usize = 10;
pub(crate) const MIN_BYTES: usize = 64;

pub struct Bloom;

/// How many recently added hashes a [`Builder`] remembers (32 KiB of them).
const RECENT: usize = 4096;

/// Collects word hashes, then sizes the filter for the distinct words seen.
///
/// A block's words repeat: its levels, loggers and sources, the words every message of a
/// kind shares. Sorting every hash to find the distinct ones was 3 % of a server's CPU under
/// log ingest, so a hash already in its slot of `recent` (indexed by its low bits) is not
/// collected again. A slot only ever holds a hash that was collected, so what `finish` sorts
/// and dedups holds every distinct hash: the filter is the one all of them make.
pub struct Builder {
    hashes: Vec<u64>,
    recent: Box<[u64; RECENT]>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            hashes: Vec::new(),
            recent: Box::new([0; RECENT]),
        }
    }
}

impl Bloom {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The hash a filter stores for `word` (already lower-cased, as tokens are).
    pub fn hash(word: &str) -> u64 {
        xxh3_64(word.as_bytes())
    }

    /// May the filter `stored` hold the word hashed to `hash`? Damaged or empty filters say yes.
    pub fn may_contain(stored: &[u8], hash: u64) -> bool {
        let Some((&hashes, bits)) = stored.split_first() else {
            return true;
        };
        if bits.is_empty() || !bits.len().is_power_of_two() {
            return true;
        }
        let mask = (bits.len() * 8 - 1) as u64;
        probes(hash, hashes).all(|bit| {
            let bit = (bit & mask) as usize;
            bits[bit / 8] & (1 << (bit % 8)) != 0
        })
    }
}

impl Builder {
    pub fn add(&mut self, word: &str) {
        self.add_hash(Bloom::hash(word));
    }

    fn add_hash(&mut self, hash: u64) {
        let slot = &mut self.recent[hash as usize % RECENT];
        // An empty slot reads 0: a word hashed to 0 is always collected.
        if *slot == hash && hash != 0 {
            return;
        }
        *slot = hash;
        self.hashes.push(hash);
    }

    pub fn finish(self) -> Vec<u8> {
        filter_of(self.hashes)
    }
}

/// The filter of the words hashed to `hashes` (in any order, repeated or not).
fn filter_of(mut hashes: Vec<u64>) -> Vec<u8> {
    hashes.sort_unstable();
    hashes.dedup();
    let bytes = (hashes.len() * BITS_PER_WORD / 8)
        .max(MIN_BYTES)
        .next_power_of_two();
    let mut out = vec![0u8; bytes + 1];
    out[0] = HASHES;
    let mask = (bytes * 8 - 1) as u64;
    for hash in hashes {
        for bit in probes(hash, HASHES) {
            let bit = (bit & mask) as usize;
            out[1 + bit / 8] |= 1 << (bit % 8);
        }
    }
    out
}

/// Bit positions for `hash` (Kirsch–Mitzenmacher double hashing), before they are taken
/// modulo a filter's size.
pub(crate) fn probes(hash: u64, count: u8) -> impl Iterator<Item = u64> {
    let (h1, h2) = (hash & 0xffff_ffff, (hash >> 32) | 1);
    (0..u64::from(count)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_misses_and_rarely_lies() {
        let mut builder = Bloom::builder();
        let words: Vec<String> = (0..5000).map(|i| format!("word{i}")).collect();
        for w in &words {
            builder.add(w);
        }
        let filter = builder.finish();
        assert!(words
            .iter()
            .all(|w| Bloom::may_contain(&filter, Bloom::hash(w))));
        let false_positives = (0..10_000)
            .filter(|i| Bloom::may_contain(&filter, Bloom::hash(&format!("other{i}"))))
            .count();
        assert!(false_positives < 300, "{false_positives} of 10000");
    }

    #[test]
    fn remembering_recent_words_makes_the_same_filter() {
        // Streams of hashes with heavy repeats, slot collisions (hashes that differ by a
        // multiple of RECENT) and the hash 0, against the filter of every hash collected.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let distinct = 1 + (next() % 3000) as usize;
            let pool: Vec<u64> = (0..distinct)
                .map(|i| match i % 5 {
                    0 => (next() % 8) * RECENT as u64 + (round % 3),
                    1 if i < 5 => 0,
                    _ => next(),
                })
                .collect();
            let stream: Vec<u64> = (0..(next() % 20_000))
                .map(|_| pool[(next() as usize) % pool.len()])
                .collect();
            let mut builder = Bloom::builder();
            for &hash in &stream {
                builder.add_hash(hash);
            }
            assert_eq!(builder.finish(), filter_of(stream), "round {round}");
        }
    }

    #[test]
    fn damaged_filters_admit_everything() {
        assert!(Bloom::may_contain(&[], 42));
        assert!(Bloom::may_contain(&[7, 1, 2, 3], 42));
    }
}
