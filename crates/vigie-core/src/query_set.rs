//! Many log queries against one stream of records, at about the cost of one: what alert rules
//! on log lines need, where a busy server stores hundreds of thousands of lines a second and a
//! project may have dozens of rules.
//!
//! ```text
//! record ─► level outside every query's levels? ─► skip
//!        ─► one Aho-Corasick pass over its text: which queries' required words are there
//!        ─► the full LogQuery::matches only for queries whose level and words fit
//! ```
//!
//! Identical query texts are tested once. The word pass is only a filter: a query's words
//! (whole words, any case) must appear in a match, so a record lacking one cannot match; the
//! full test decides. Each query gives the filter its longest word only — the likeliest to be
//! rare, and short words (`2`, `to`) would make the pass find something in every line. Words
//! with non-ASCII letters are left to the full test, since the filter folds ASCII case only.

use crate::logquery::LogQuery;
use crate::LogRecord;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder};
use std::collections::HashMap;

struct Entry {
    query: LogQuery,
    levels: u8,
    /// The pattern id of a word a match must contain.
    word: Option<usize>,
}

/// Compiled queries; [`QuerySet::matching`] answers which match a record.
pub struct QuerySet {
    entries: Vec<Entry>,
    /// For each query given to [`QuerySet::new`], its entry (equal texts share one).
    entry_of: Vec<usize>,
    words: Option<AhoCorasick>,
    word_count: usize,
    /// Levels any query can match.
    levels: u8,
}

/// Buffers [`QuerySet::matching`] reuses from one record to the next.
#[derive(Default)]
pub struct Scratch {
    present: Vec<bool>,
    entries: Vec<usize>,
}

impl QuerySet {
    /// The set of `queries` (text, parsed); their order is kept in the answers.
    pub fn new(queries: Vec<(String, LogQuery)>) -> QuerySet {
        let mut by_text: HashMap<String, usize> = HashMap::new();
        let mut entries: Vec<Entry> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut entry_of = Vec::with_capacity(queries.len());
        for (text, query) in queries {
            let next = entries.len();
            let at = *by_text.entry(text).or_insert(next);
            if at == next {
                let word = query
                    .required_words()
                    .into_iter()
                    .filter(|w| w.is_ascii())
                    .max_by_key(String::len)
                    .map(|w| {
                        let lower = w.to_ascii_lowercase();
                        match patterns.iter().position(|p| *p == lower) {
                            Some(i) => i,
                            None => {
                                patterns.push(lower);
                                patterns.len() - 1
                            }
                        }
                    });
                entries.push(Entry {
                    levels: query.level_mask(),
                    query,
                    word,
                });
            }
            entry_of.push(at);
        }
        let words = (!patterns.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(&patterns)
                .expect("plain words build an automaton")
        });
        QuerySet {
            levels: entries.iter().fold(0, |m, e| m | e.levels),
            entries,
            entry_of,
            words,
            word_count: patterns.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entry_of.is_empty()
    }

    /// Puts into `out` the positions (in the order given to [`QuerySet::new`]) of the queries
    /// `record` matches.
    pub fn matching(&self, record: &LogRecord, scratch: &mut Scratch, out: &mut Vec<usize>) {
        out.clear();
        let bit = record.level.bit();
        if bit & self.levels == 0 {
            return;
        }
        scratch.entries.clear();
        let mut scanned = false;
        for (i, entry) in self.entries.iter().enumerate() {
            if bit & entry.levels == 0 {
                continue;
            }
            if let Some(word) = entry.word {
                if !scanned {
                    self.scan(record, &mut scratch.present);
                    scanned = true;
                }
                if !scratch.present[word] {
                    continue;
                }
            }
            if entry.query.matches(record) {
                scratch.entries.push(i);
            }
        }
        if !scratch.entries.is_empty() {
            out.extend(
                self.entry_of
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| scratch.entries.contains(e))
                    .map(|(i, _)| i),
            );
        }
    }

    /// Marks which words appear in the record's searchable text.
    fn scan(&self, record: &LogRecord, present: &mut Vec<bool>) {
        present.clear();
        present.resize(self.word_count, false);
        let Some(words) = &self.words else { return };
        let texts = [
            record.message.as_str(),
            record.logger.as_str(),
            record.job_id.as_str(),
            record.trace_id.as_str(),
        ];
        let fields = record.fields.iter().map(|(_, v)| v.as_str());
        for text in texts.into_iter().chain(fields) {
            for found in words.find_overlapping_iter(text) {
                present[found.pattern().as_usize()] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    fn record(level: Level, logger: &str, message: &str) -> LogRecord {
        LogRecord {
            level,
            logger: logger.into(),
            message: message.into(),
            fields: vec![("customer".into(), "Ünïcode Café".into())],
            ..Default::default()
        }
    }

    #[test]
    fn answers_what_each_query_alone_answers() {
        let texts = [
            "level:>=error logger:invoices*",
            "\"gateway timeout\"",
            "level:>=error logger:invoices*",
            "smtp -retrying",
            "café",
            "level:debug",
            "",
        ];
        let parsed: Vec<(String, LogQuery)> = texts
            .iter()
            .map(|t| (t.to_string(), LogQuery::parse(t, 0).unwrap()))
            .collect();
        let singles: Vec<LogQuery> = parsed.iter().map(|(_, q)| q.clone()).collect();
        let set = QuerySet::new(parsed);
        let records = [
            record(Level::Error, "invoices.render", "KeyError 'vat_rate'"),
            record(Level::Info, "invoices.render", "rendered"),
            record(
                Level::Warning,
                "nginx",
                "upstream: Gateway   Timeout after 30 s",
            ),
            record(Level::Error, "mail", "SMTP 421, retrying"),
            record(Level::Error, "mail", "SMTP 421 given up"),
            record(Level::Debug, "cache", "miss"),
            record(
                Level::Info,
                "x",
                "gateway timeouts are not a gateway timeout? yes they are",
            ),
        ];
        let (mut scratch, mut out) = (Scratch::default(), Vec::new());
        for r in &records {
            set.matching(r, &mut scratch, &mut out);
            let alone: Vec<usize> = singles
                .iter()
                .enumerate()
                .filter(|(_, q)| q.matches(r))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(out, alone, "{}", r.message);
        }
        // The shared query answers for both of its rules; "café" is found in a field with
        // non-ASCII case folding left to the full test.
        set.matching(&records[0], &mut scratch, &mut out);
        assert!(out.contains(&0) && out.contains(&2) && out.contains(&4) && out.contains(&6));
    }
}
