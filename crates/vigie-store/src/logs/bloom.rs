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

/// Collects word hashes, then sizes the filter for the distinct words seen.
#[derive(Default)]
pub struct Builder {
    hashes: Vec<u64>,
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
        self.hashes.push(Bloom::hash(word));
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.hashes.sort_unstable();
        self.hashes.dedup();
        let bytes = (self.hashes.len() * BITS_PER_WORD / 8)
            .max(MIN_BYTES)
            .next_power_of_two();
        let mut out = vec![0u8; bytes + 1];
        out[0] = HASHES;
        let mask = (bytes * 8 - 1) as u64;
        for hash in self.hashes {
            for bit in probes(hash, HASHES) {
                let bit = (bit & mask) as usize;
                out[1 + bit / 8] |= 1 << (bit % 8);
            }
        }
        out
    }
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
    fn damaged_filters_admit_everything() {
        assert!(Bloom::may_contain(&[], 42));
        assert!(Bloom::may_contain(&[7, 1, 2, 3], 42));
    }
}
