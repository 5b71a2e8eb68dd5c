//! The word bloom filter of a log block: "could this block hold the word?" in a few bit tests.
//!
//! Every word of every record in a block (see `vigie_core::log::tokens`) is hashed once with
//! xxh3; the filter sets `HASHES` bits per distinct word, derived from that one hash by double
//! hashing. About 10 bits per distinct word gives a false-positive rate near 1%: a search for a
//! rare word reads about one block in a hundred that does not hold it, and never misses one
//! that does.
//!
//! Beside its words the filter holds their beginnings: the first [`START_BYTES`] bytes of every
//! longer word, hashed as a word of that length is, so a `word*` prefix or a regex whose literal
//! runs into a word (`/INV-00012\d/` needs a word beginning `00012`) skips blocks too. Hashed
//! as words, a beginning adds nothing to the filter for words of exactly that length, and a
//! block's filter stays within its size more often (measured in BENCHMARKS.md: a filter that
//! passes a power of two doubles); the price is that a search for a word of five bytes also
//! reads blocks that hold only longer words beginning with it, which their records then rule
//! out.
//!
//! Stored form: one byte with the number of hashes (low six bits) and [`WORD_STARTS`] when
//! the filter holds beginnings, then the bit array (a power of two bytes). Filters written
//! before beginnings were kept lack the flag, and admit every beginning.

use xxhash_rust::xxh3::xxh3_64;

pub(crate) const HASHES: u8 = 7;
/// The header bit of a filter that holds word beginnings.
pub(crate) const WORD_STARTS: u8 = 0x40;
/// Bytes of a word's beginning kept: long enough to tell ids apart (four bytes of a hex or
/// zero-padded id are shared by a block's worth of others), short enough that `invoi*` finds it.
pub const START_BYTES: usize = 5;
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

    /// The hash a filter stores for the beginning of a word starting with `start` (lower-cased);
    /// `None` when `start` is shorter than a kept beginning.
    pub fn start_hash(start: &str) -> Option<u64> {
        start.as_bytes().get(..START_BYTES).map(xxh3_64)
    }

    /// The number of hashes and whether the filter holds word beginnings, for a filter that
    /// is not damaged, with its bit array.
    pub(crate) fn header(stored: &[u8]) -> Option<(u8, bool, &[u8])> {
        let (&header, bits) = stored.split_first()?;
        let usable = !bits.is_empty() && bits.len().is_power_of_two();
        usable.then_some((header & !WORD_STARTS, header & WORD_STARTS != 0, bits))
    }

    /// May the filter `stored` hold the word hashed to `hash`? Damaged or empty filters say yes.
    pub fn may_contain(stored: &[u8], hash: u64) -> bool {
        let Some((hashes, _, bits)) = Bloom::header(stored) else {
            return true;
        };
        let mask = (bits.len() * 8 - 1) as u64;
        probes(hash, hashes).all(|bit| {
            let bit = (bit & mask) as usize;
            bits[bit / 8] & (1 << (bit % 8)) != 0
        })
    }
}

/// What a search looks up in word filters: the hashes of the words every match holds whole,
/// then those of the beginnings of words it holds (see [`vigie_core::LogQuery::word_hints`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probes {
    hashes: Vec<u64>,
    /// How many of `hashes` are whole words; the rest are beginnings.
    whole: usize,
}

impl Probes {
    /// The probes for words held whole and beginnings of words held (lower-cased); a
    /// beginning shorter than [`START_BYTES`] is not kept in filters, so it is left out.
    ///
    /// A word held whole also holds its beginning: probing both, where filters keep
    /// beginnings, makes a rare word's false positives rarer than the word's probes alone
    /// (two unrelated entries must both seem present), which more than offsets the entries
    /// beginnings add to a filter.
    pub fn new(whole: &[impl AsRef<str>], starts: &[impl AsRef<str>]) -> Probes {
        let mut hashes: Vec<u64> = whole.iter().map(|w| Bloom::hash(w.as_ref())).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let whole_count = hashes.len();
        let longer_words = whole
            .iter()
            .map(AsRef::as_ref)
            .filter(|w| w.len() > START_BYTES);
        let mut beginnings: Vec<u64> = starts
            .iter()
            .map(AsRef::as_ref)
            .chain(longer_words)
            .filter_map(Bloom::start_hash)
            .collect();
        beginnings.sort_unstable();
        beginnings.dedup();
        beginnings.retain(|h| !hashes[..whole_count].contains(h));
        hashes.extend(beginnings);
        Probes {
            hashes,
            whole: whole_count,
        }
    }

    /// The probes for words held whole.
    pub fn words(whole: &[impl AsRef<str>]) -> Probes {
        Probes::new(whole, &[] as &[&str])
    }

    /// What a query's matches hold.
    pub fn of(query: &vigie_core::LogQuery) -> Probes {
        let hints = query.word_hints();
        Probes::new(&hints.whole, &hints.starts)
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The hashes to look up in a filter that holds word beginnings or not (one written before
    /// they were kept admits every beginning).
    pub fn for_filter(&self, with_starts: bool) -> &[u64] {
        if with_starts {
            &self.hashes
        } else {
            &self.hashes[..self.whole]
        }
    }

    /// Whether a block's filter as stored may hold every probe.
    pub fn admitted_by(&self, stored: &[u8]) -> bool {
        let with_starts = Bloom::header(stored).is_some_and(|(_, starts, _)| starts);
        self.for_filter(with_starts)
            .iter()
            .all(|&hash| Bloom::may_contain(stored, hash))
    }
}

impl Builder {
    /// Adds a word (lower-cased) and, when it is longer than one, its beginning.
    pub fn add(&mut self, word: &str) {
        self.add_hash(Bloom::hash(word));
        // A word of exactly START_BYTES is its own beginning, already added.
        if word.len() > START_BYTES {
            self.add_hash(Bloom::start_hash(word).expect("a longer word has a beginning"));
        }
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
    out[0] = HASHES | WORD_STARTS;
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
    fn beginnings_of_words_are_probed_apart_from_words() {
        let mut builder = Bloom::builder();
        for w in ["invoice", "000123", "sent", "ok"] {
            builder.add(w);
        }
        let filter = builder.finish();
        let starts = |s: &[&str]| Probes::new(&[] as &[&str], s);
        assert!(starts(&["invoi"]).admitted_by(&filter));
        assert!(
            starts(&["invoices"]).admitted_by(&filter),
            "kept to 5 bytes"
        );
        assert!(starts(&["00012", "000123"]).admitted_by(&filter));
        assert!(!starts(&["00022"]).admitted_by(&filter));
        assert!(!starts(&["invoke"]).admitted_by(&filter));
        // A word of five bytes is its own beginning: no entry of its own.
        let mut five = Bloom::builder();
        five.add("sent");
        five.add("abcde");
        assert_eq!(five.hashes.len(), 2);
        assert!(starts(&["abcde"]).admitted_by(&five.finish()));
        // Too short to be kept: no probe at all, so nothing is ruled out.
        assert!(starts(&["ok", "sent"]).is_empty());
        assert!(Probes::new(&["sent"], &["xyzwv"]).for_filter(false) == [Bloom::hash("sent")]);
        // A longer word is also probed by its beginning, where filters keep beginnings.
        let word = Probes::words(&["invoice"]);
        assert_eq!(word.for_filter(false), [Bloom::hash("invoice")]);
        assert_eq!(
            word.for_filter(true),
            [Bloom::hash("invoice"), Bloom::hash("invoi")]
        );
        assert!(word.admitted_by(&filter));
    }

    #[test]
    fn a_filter_written_before_beginnings_were_kept_admits_every_beginning() {
        let mut builder = Bloom::builder();
        builder.add("invoice");
        let mut filter = builder.finish();
        assert_eq!(filter[0], HASHES | WORD_STARTS);
        filter[0] = HASHES;
        let probes = Probes::new(&["invoice"], &["zzzzz"]);
        assert!(probes.admitted_by(&filter));
        assert!(!Probes::new(&["other"], &["zzzzz"]).admitted_by(&filter));
    }

    #[test]
    fn damaged_filters_admit_everything() {
        assert!(Bloom::may_contain(&[], 42));
        assert!(Bloom::may_contain(&[7, 1, 2, 3], 42));
    }
}
