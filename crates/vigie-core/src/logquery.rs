//! The log search language: parsed once, then used twice — to prune blocks, and to match records.
//!
//! ```text
//! smtp timeout                words, all required (AND), whole words, any case
//! "too many messages"         a phrase: these words in this order
//! invoice*                    a word prefix
//! -healthcheck                any term can be negated with a leading -
//! /4\d\d [A-Z]+/              a regular expression on the message (case-sensitive)
//! level:error                 level:>=warning  level:<info  (trace debug info notice warning error critical)
//! source:nginx*               the record's source (glob: * matches anything, case-insensitive)
//! logger:invoices*            the logger name (glob)
//! job:01J9Z…                  records of one job       trace:4bf92f35…  records of one trace
//! field.user_id:42            a structured field (glob); field.user_id:* means "has the field"
//! since:1h                    the last hour (s, m, h, d, w)
//! from:2026-11-21T22:15:00Z   to:2026-11-21T22:30   RFC 3339, or a date and time read as UTC
//! ```
//!
//! Words are what [`crate::log::tokens`] yields: a word matches where it stands whole in the
//! message, the logger name, a field value, or the job or trace id. Every block of stored logs
//! carries a bloom filter of those words and of their beginnings, so [`LogQuery::word_hints`]
//! lets a search skip the blocks that cannot hold a match without reading them: the words a
//! match holds whole, and the words it holds beginnings of (a `word*` prefix; the word a
//! regex's literal runs into, as `00012…` for `/INV-00012\d/`). A filter name that Vigie does
//! not know (`levl:error`) is an error rather than a silent word search.
//!
//! A block that passes its bloom filter is decompressed, and [`TextFilter`] then asks of its
//! text as a whole what every match must contain (a regex's literal prefixes, a word in any of
//! its case forms, a job id, a field's name) before a single record of it is read.

use crate::log::{is_word_character, token_list, Level, LogRecord, RecordRef};
use regex::Regex;
use regex_syntax::hir::Hir;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Why a query could not be read; `position` is the byte offset of the offending term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position})")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

/// The filter names the language knows, for error messages and docs.
pub const FILTERS: &[&str] = &[
    "level",
    "source",
    "logger",
    "job",
    "trace",
    "field.NAME",
    "since",
    "from",
    "to",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// One thing a record must (or, negated, must not) satisfy.
#[derive(Clone, Debug)]
pub enum Test {
    /// A whole word; the string is the lower-cased word.
    Word(String, Regex),
    /// A word prefix (`invoice*`).
    Prefix(String, Regex),
    /// Words in order (`"too many messages"`).
    Phrase(Vec<String>, Regex),
    /// A regular expression on the message.
    Regex(Regex),
    Level(Cmp, Level),
    Source(Regex),
    Logger(Regex),
    Job(String),
    Trace(String),
    /// A field by name; `None` means "has the field".
    Field(String, Option<Regex>),
}

#[derive(Clone, Debug)]
pub struct Term {
    pub negated: bool,
    pub test: Test,
}

/// A parsed query. The empty query matches everything.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    pub terms: Vec<Term>,
    /// Earliest time wanted, ns since the epoch, inclusive.
    pub from: Option<i64>,
    /// Latest time wanted, ns since the epoch, exclusive.
    pub to: Option<i64>,
}

impl LogQuery {
    /// Parses `text`; relative times (`since:1h`) count back from `now` (ns since the epoch).
    pub fn parse(text: &str, now: i64) -> Result<LogQuery, QueryError> {
        let mut query = LogQuery::default();
        for raw in lex(text)? {
            query.add(raw, now)?;
        }
        check_range(query.from, query.to)?;
        Ok(query)
    }

    fn add(&mut self, raw: RawTerm, now: i64) -> Result<(), QueryError> {
        let error = |message: String| QueryError {
            position: raw.position,
            message,
        };
        let test = match raw.kind {
            RawKind::Phrase(text) => phrase(&text).map_err(error)?,
            RawKind::Regex(pattern) => {
                Test::Regex(Regex::new(&pattern).map_err(|e| error(format!("invalid regex: {e}")))?)
            }
            RawKind::Bare(text) => match split_filter(&text) {
                Some((name, value)) => {
                    let test = self.filter(name, value, now).map_err(error)?;
                    match test {
                        Some(test) => test,
                        None if raw.negated => {
                            return Err(error(format!("`{name}:` cannot be negated")))
                        }
                        None => return Ok(()),
                    }
                }
                None => word(&text).map_err(error)?,
            },
        };
        self.terms.push(Term {
            negated: raw.negated,
            test,
        });
        Ok(())
    }

    /// A `name:value` term; time filters set the range and return `None`.
    fn filter(&mut self, name: &str, value: &str, now: i64) -> Result<Option<Test>, String> {
        if value.is_empty() {
            return Err(format!("`{name}:` needs a value"));
        }
        Ok(Some(match name {
            "level" => {
                let (cmp, rest) = match value.as_bytes() {
                    [b'>', b'=', ..] => (Cmp::Ge, &value[2..]),
                    [b'<', b'=', ..] => (Cmp::Le, &value[2..]),
                    [b'>', ..] => (Cmp::Gt, &value[1..]),
                    [b'<', ..] => (Cmp::Lt, &value[1..]),
                    [b'=', ..] => (Cmp::Eq, &value[1..]),
                    _ => (Cmp::Eq, value),
                };
                let level = Level::parse(rest).ok_or_else(|| {
                    format!(
                        "unknown level `{rest}`: use trace, debug, info, notice, warning, error \
                         or critical"
                    )
                })?;
                Test::Level(cmp, level)
            }
            "source" => Test::Source(glob(value)?),
            "logger" => Test::Logger(glob(value)?),
            "job" => Test::Job(value.to_string()),
            "trace" => Test::Trace(value.to_ascii_lowercase()),
            "since" | "from" | "to" => {
                time_filter(name, value, now, &mut self.from, &mut self.to)?;
                return Ok(None);
            }
            _ => match name.strip_prefix("field.") {
                Some(field) if !field.is_empty() => Test::Field(
                    field.to_string(),
                    (value != "*").then(|| glob(value)).transpose()?,
                ),
                _ => {
                    return Err(format!(
                        "unknown filter `{name}:`; known filters: {} (quote the term to search \
                         for it as text)",
                        FILTERS.join(", ")
                    ))
                }
            },
        }))
    }

    /// Narrows the query to one source, named exactly (as the sources page does).
    pub fn only_source(mut self, name: &str) -> LogQuery {
        let exact = Regex::new(&format!("^{}$", regex::escape(name)))
            .expect("an escaped literal is a valid regex");
        self.terms.push(Term {
            negated: false,
            test: Test::Source(exact),
        });
        self
    }

    /// Does `record` satisfy every term and the time range?
    pub fn matches(&self, record: &LogRecord) -> bool {
        self.matches_ref(&record.as_ref())
    }

    /// [`LogQuery::matches`] for a record read in place.
    pub fn matches_ref(&self, record: &RecordRef<'_>) -> bool {
        self.in_range(record.time)
            && self
                .terms
                .iter()
                .all(|term| term.test.matches(record) != term.negated)
    }

    pub fn in_range(&self, time: i64) -> bool {
        self.from.is_none_or(|from| time >= from) && self.to.is_none_or(|to| time < to)
    }

    /// Words every match must contain whole: a block whose bloom filter lacks one is skipped.
    pub fn required_words(&self) -> Vec<String> {
        self.word_hints().whole
    }

    /// What every match says about a record's words: those it holds whole, and beginnings of
    /// words it holds (a `word*` prefix, the word a regex's literal runs into). A block whose
    /// word filter lacks one cannot hold a match.
    pub fn word_hints(&self) -> WordHints {
        let mut hints = WordHints::default();
        for term in self.terms.iter().filter(|t| !t.negated) {
            match &term.test {
                Test::Word(w, _) => hints.whole.push(w.clone()),
                Test::Phrase(ws, _) => hints.whole.extend(ws.iter().cloned()),
                Test::Job(id) | Test::Trace(id) => hints.whole.extend(token_list(id)),
                Test::Prefix(start, _) => hints.starts.push(start.clone()),
                Test::Regex(re) => {
                    let of_regex = regex_hints(re.as_str());
                    hints.whole.extend(of_regex.whole);
                    hints.starts.extend(of_regex.starts);
                }
                _ => {}
            }
        }
        for list in [&mut hints.whole, &mut hints.starts] {
            list.sort();
            list.dedup();
        }
        hints
    }

    /// When nothing in the query names a word ([`Self::word_hints`] is empty) but a regex
    /// term would if it opened with `\b` (its first word may otherwise end a longer one):
    /// what it would name, so a page can suggest the `\b` rather than read every block.
    pub fn word_start_hints(&self) -> Option<WordHints> {
        let hints = self.word_hints();
        if !hints.whole.is_empty() || !hints.starts.is_empty() {
            return None;
        }
        self.terms
            .iter()
            .filter(|t| !t.negated)
            .find_map(|term| match &term.test {
                Test::Regex(re) => Some(regex_hints_opening(re.as_str(), true))
                    .filter(|h| !h.whole.is_empty() || !h.starts.is_empty()),
                _ => None,
            })
    }

    /// The levels a match can have, as a mask of [`Level::bit`]s.
    pub fn level_mask(&self) -> u8 {
        let mut mask = 0x7f;
        for term in &self.terms {
            if let Test::Level(cmp, level) = term.test {
                let allowed = Level::ALL
                    .iter()
                    .filter(|l| compare(**l, cmp, level))
                    .fold(0u8, |m, l| m | l.bit());
                mask &= if term.negated { !allowed } else { allowed };
            }
        }
        mask & 0x7f
    }

    /// Could a record from `source` match? (Lets a search skip whole sources.)
    pub fn admits_source(&self, source: &str) -> bool {
        self.terms.iter().all(|term| match &term.test {
            Test::Source(pattern) => pattern.is_match(source) != term.negated,
            _ => true,
        })
    }

    /// True when only time, level and source terms are present: block summaries then answer
    /// counts without reading records.
    pub fn has_text_terms(&self) -> bool {
        self.terms
            .iter()
            .any(|t| !matches!(t.test, Test::Level(..) | Test::Source(_)))
    }
}

impl Test {
    fn matches(&self, r: &RecordRef<'_>) -> bool {
        match self {
            Test::Word(_, re) | Test::Prefix(_, re) | Test::Phrase(_, re) => {
                re.is_match(r.message)
                    || re.is_match(r.logger)
                    || r.fields.any(&mut |_, v| re.is_match(v))
                    || re.is_match(r.job_id)
                    || re.is_match(r.trace_id)
            }
            Test::Regex(re) => re.is_match(r.message),
            Test::Level(cmp, level) => compare(r.level, *cmp, *level),
            Test::Source(re) => re.is_match(r.source),
            Test::Logger(re) => re.is_match(r.logger),
            Test::Job(id) => r.job_id == id,
            Test::Trace(id) => r.trace_id.eq_ignore_ascii_case(id),
            Test::Field(name, pattern) => match (r.field(name), pattern) {
                (Some(value), Some(re)) => re.is_match(value),
                (Some(_), None) => true,
                (None, _) => false,
            },
        }
    }
}

/// What the text of a block must contain for any of its records to match a query: for each
/// term that requires text, the literals one of which begins every match. Tested with one
/// Aho-Corasick pass per term over a whole decompressed block, it lets a search skip a block
/// without reading its records. It is only a filter: a record in a block it admits is still
/// tested by [`LogQuery::matches_ref`].
///
/// The literals come from the term's own regex (`regex_syntax`'s prefix extractor), so they
/// follow its semantics exactly, Unicode case folding included (`(?i)k` also finds the Kelvin
/// sign); a term whose matches can begin in too many ways gives no literal and filters nothing.
pub struct TextFilter {
    needles: Vec<aho_corasick::AhoCorasick>,
}

impl TextFilter {
    /// Shortest literal worth a pass: one-byte ones are in nearly every block.
    const MIN_LITERAL: usize = 2;

    pub fn of(query: &LogQuery) -> TextFilter {
        let needles = query
            .terms
            .iter()
            .filter(|t| !t.negated)
            .filter_map(|t| {
                let (literals, fold_ascii): (Vec<Vec<u8>>, bool) = match &t.test {
                    Test::Word(_, re)
                    | Test::Prefix(_, re)
                    | Test::Phrase(_, re)
                    | Test::Regex(re) => (prefix_literals(re.as_str())?, false),
                    Test::Job(id) => (vec![id.as_bytes().to_vec()], false),
                    // Trace ids are compared ignoring ASCII case (they are hex).
                    Test::Trace(id) => (vec![id.as_bytes().to_vec()], true),
                    Test::Field(name, _) => (vec![name.as_bytes().to_vec()], false),
                    Test::Level(..) | Test::Source(_) | Test::Logger(_) => return None,
                };
                if literals.iter().any(|l| l.len() < Self::MIN_LITERAL) {
                    return None;
                }
                aho_corasick::AhoCorasick::builder()
                    .ascii_case_insensitive(fold_ascii)
                    .build(&literals)
                    .ok()
            })
            .collect();
        TextFilter { needles }
    }

    /// Whether `text` (every string of a block, in any order) may hold a match.
    pub fn admits(&self, text: &[u8]) -> bool {
        self.needles.iter().all(|n| n.is_match(text))
    }

    /// Whether it can skip anything at all.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The records of a block's `text` that may hold a match, by index, oldest first: those
    /// in whose bytes every term's literal begins. `starts` are where each record's bytes
    /// begin in `text` (ascending, the first 0). `None` when there is no literal to look for:
    /// every record must be tested.
    ///
    /// A match lies within one string of one record, so the literal that begins it does too;
    /// a literal found across a record's end (length bytes happen to spell it) only adds a
    /// record to test. Once a record is picked the search goes on at the next record's
    /// start: one search per picked record, whatever the literal's count in it. That skips
    /// nothing: a search from a record's start reports the first literal to *end*
    /// (Aho-Corasick's standard semantics), which ends no later than a match's own literal
    /// and so begins in a record no later than the match's.
    pub fn records(&self, text: &[u8], starts: &[usize]) -> Option<Vec<u32>> {
        let mut picked: Option<Vec<u32>> = None;
        for needle in &self.needles {
            let mut found = Vec::new();
            let mut at = 0;
            while let Some(hit) = needle.find(aho_corasick::Input::new(text).range(at..)) {
                let record = starts
                    .partition_point(|&s| s <= hit.start())
                    .saturating_sub(1);
                found.push(record as u32);
                match starts.get(record + 1) {
                    Some(&next) => at = next,
                    None => break,
                }
            }
            let both = match picked {
                None => found,
                Some(before) => before
                    .into_iter()
                    .filter(|r| found.binary_search(r).is_ok())
                    .collect(),
            };
            let none_left = both.is_empty();
            picked = Some(both);
            if none_left {
                break;
            }
        }
        picked
    }
}

/// The literals one of which begins every match of `pattern`; `None` when there is no such
/// finite set (or the pattern does not parse, which a compiled regex's does).
fn prefix_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    prefix_literals_of(&regex_syntax::Parser::new().parse(pattern).ok()?)
}

fn prefix_literals_of(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let literals = seq.literals()?;
    (!literals.is_empty()).then(|| literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// Does every match begin where no word character comes before it: the pattern opens with
/// `^` or a Unicode word boundary (`\b`, `\b{start}`, `\<`)? Then a literal that begins
/// the match and opens with a word character opens a word of the text, as the tokenizer
/// splits it (Unicode `\w`, and a record's message is tokenized on its own). An ASCII-only
/// boundary (`(?-u:\b)`) does not count: `é` is no ASCII word character, but a word one.
fn opens_at_word_start(hir: &Hir) -> bool {
    use regex_syntax::hir::{HirKind, Look};
    match hir.kind() {
        HirKind::Concat(parts) => parts.first().is_some_and(opens_at_word_start),
        HirKind::Capture(capture) => opens_at_word_start(&capture.sub),
        HirKind::Look(look) => matches!(
            look,
            Look::Start
                | Look::StartLF
                | Look::StartCRLF
                | Look::WordUnicode
                | Look::WordStartUnicode
                | Look::WordStartHalfUnicode
        ),
        _ => false,
    }
}

/// Words a record holds, as [`crate::log::tokens`] yields them (lower-cased), for every
/// match of a query: see [`LogQuery::word_hints`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WordHints {
    /// Words held whole.
    pub whole: Vec<String>,
    /// Words held that begin with these (or are these).
    pub starts: Vec<String>,
}

/// The words every match of a regex holds, read from the literals one of which begins every
/// match ([`prefix_literals`]); what all of them say is what the regex says.
fn regex_hints(pattern: &str) -> WordHints {
    regex_hints_opening(pattern, false)
}

/// [`regex_hints`], as if the pattern opened at a word start when `assume_word_start`.
fn regex_hints_opening(pattern: &str, assume_word_start: bool) -> WordHints {
    let Ok(hir) = regex_syntax::Parser::new().parse(pattern) else {
        return WordHints::default();
    };
    let Some(literals) = prefix_literals_of(&hir) else {
        return WordHints::default();
    };
    let at_word_start = assume_word_start || opens_at_word_start(&hir);
    let mut hints = literals.iter().map(|l| literal_hints(l, at_word_start));
    let first = hints.next().unwrap_or_default();
    hints.fold(first, |common, next| WordHints {
        whole: common
            .whole
            .into_iter()
            .filter(|w| next.whole.contains(w))
            .collect(),
        starts: common
            .starts
            .into_iter()
            .filter(|w| next.starts.contains(w))
            .collect(),
    })
}

/// What a literal that begins a match says about the text's words. The text holds the
/// literal's bytes, so a word of the literal with a separator on both sides within it is a
/// word of the text; its last word, after a separator, begins one (the text may go on with
/// more word characters); its first, touching the literal's start, may end a longer word and
/// says nothing, unless the match opens `at_word_start` (see [`opens_at_word_start`]).
fn literal_hints(literal: &[u8], at_word_start: bool) -> WordHints {
    // A literal may end inside a character: its whole characters, and a word that goes on.
    let valid_up_to = std::str::from_utf8(literal).map_or_else(|e| e.valid_up_to(), str::len);
    let text = std::str::from_utf8(&literal[..valid_up_to]).expect("checked above");
    let opens_inside_a_word = !at_word_start && text.chars().next().is_some_and(is_word_character);
    let runs_on =
        valid_up_to < literal.len() || text.chars().next_back().is_some_and(is_word_character);
    let mut words = token_list(text);
    let mut hints = WordHints::default();
    if runs_on {
        let last = words.pop();
        // A literal of one word touches both ends: a piece of a word, nothing to look up.
        if let Some(last) = last.filter(|_| !(opens_inside_a_word && words.is_empty())) {
            hints.starts.push(last);
        }
    }
    if opens_inside_a_word && !words.is_empty() {
        words.remove(0);
    }
    hints.whole = words;
    hints
}

fn compare(have: Level, cmp: Cmp, want: Level) -> bool {
    match cmp {
        Cmp::Eq => have == want,
        Cmp::Ge => have >= want,
        Cmp::Gt => have > want,
        Cmp::Le => have <= want,
        Cmp::Lt => have < want,
    }
}

/// `name:value` when the bare term starts with a filter-shaped name (letters, `_`, `.`).
pub(crate) fn split_filter(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.split_once(':')?;
    let filter_shaped = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    // `https://…` and `12:30:01` are text, not filters.
    if !filter_shaped || value.starts_with("//") || name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, value))
}

fn word_regex(body: &str) -> Result<Regex, String> {
    Regex::new(&format!("(?i){body}")).map_err(|e| format!("cannot search for this: {e}"))
}

/// A bare term: a word, a prefix (`word*`), or — when it holds punctuation — the phrase of its
/// words (`user@example.org` finds the words `user example org` in that order).
fn word(text: &str) -> Result<Test, String> {
    if let Some(stem) = text.strip_suffix('*') {
        let words = token_list(stem);
        if let [only] = words.as_slice() {
            if stem.to_lowercase() == *only {
                let re = word_regex(&format!(r"\b{}", regex::escape(only)))?;
                return Ok(Test::Prefix(only.clone(), re));
            }
        }
    }
    let words = token_list(text);
    match words.as_slice() {
        [] => Err(format!(
            "`{text}` holds no word to search for; use a /regex/ for punctuation"
        )),
        [only] if *only == text.to_lowercase() => {
            let re = word_regex(&format!(r"\b{}\b", regex::escape(only)))?;
            Ok(Test::Word(only.clone(), re))
        }
        _ => phrase(text),
    }
}

/// The words of `text` in order, separated by anything that is not a word.
fn phrase(text: &str) -> Result<Test, String> {
    let words = token_list(text);
    if words.is_empty() {
        return Err("an empty phrase matches nothing; use a /regex/ for punctuation".into());
    }
    let body = words
        .iter()
        .map(|w| regex::escape(w))
        .collect::<Vec<_>>()
        .join(r"\W+");
    Ok(Test::Phrase(words, word_regex(&format!(r"\b{body}\b"))?))
}

/// A glob (`*` = anything) as an anchored, case-insensitive regex.
pub(crate) fn glob(pattern: &str) -> Result<Regex, String> {
    let body = pattern
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    Regex::new(&format!("(?is)^{body}$")).map_err(|e| format!("invalid pattern: {e}"))
}

/// Applies a time filter of both search languages: `since:1h` (counted back from `now`),
/// `from:` and `to:` (instants), narrowing `from` and `to`.
pub(crate) fn time_filter(
    name: &str,
    value: &str,
    now: i64,
    from: &mut Option<i64>,
    to: &mut Option<i64>,
) -> Result<(), String> {
    match name {
        "since" => {
            let start = now - parse_span(value)?;
            *from = Some(from.map_or(start, |f| f.max(start)));
        }
        "from" => *from = Some(parse_instant(value)?),
        _ => *to = Some(parse_instant(value)?),
    }
    Ok(())
}

/// A range whose start is not before its end is a mistake, not an empty answer.
pub(crate) fn check_range(from: Option<i64>, to: Option<i64>) -> Result<(), QueryError> {
    match (from, to) {
        (Some(from), Some(to)) if from >= to => Err(QueryError {
            position: 0,
            message: "the time range is empty: `from` must be before `to`".into(),
        }),
        _ => Ok(()),
    }
}

/// `90s`, `15m`, `1h`, `2d`, `1w` in nanoseconds.
pub fn parse_span(text: &str) -> Result<i64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: i64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30m, 1h, 2d"))?;
    let unit_ns: i64 = match unit {
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 7 * 86_400_000_000_000,
        _ => return Err(format!("`{text}` is not a duration such as 30m, 1h, 2d")),
    };
    amount
        .checked_mul(unit_ns)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// RFC 3339, or `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` (also with a space) read as UTC.
pub fn parse_instant(text: &str) -> Result<i64, String> {
    let nanos = |t: OffsetDateTime| t.unix_timestamp_nanos() as i64;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(nanos(t));
    }
    let text_t = text.replacen(' ', "T", 1);
    let formats = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ];
    for format in formats {
        if let Ok(t) = PrimitiveDateTime::parse(&text_t, &format) {
            return Ok(nanos(t.assume_utc()));
        }
    }
    if let Ok(date) = time::Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Ok(nanos(date.midnight().assume_utc()));
    }
    Err(format!(
        "`{text}` is not a time: use 2026-11-21T22:15:00Z, 2026-11-21 22:15 (UTC) or 2026-11-21"
    ))
}

pub(crate) struct RawTerm {
    pub(crate) position: usize,
    pub(crate) negated: bool,
    pub(crate) kind: RawKind,
}

pub(crate) enum RawKind {
    Bare(String),
    Phrase(String),
    Regex(String),
}

/// Splits the text into terms: `-`? then `"phrase"`, `/regex/`, or a bare run in which a
/// `"quoted part"` may hold spaces (`logger:"my app"`).
pub(crate) fn lex(text: &str) -> Result<Vec<RawTerm>, QueryError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut terms = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1.is_whitespace() {
            i += 1;
            continue;
        }
        let position = chars[i].0;
        let negated = chars[i].1 == '-' && chars.get(i + 1).is_some_and(|c| !c.1.is_whitespace());
        if negated {
            i += 1;
        }
        let unclosed = |what: &str| QueryError {
            position,
            message: format!("unclosed {what}"),
        };
        let kind = match chars[i].1 {
            quote @ ('"' | '/') => {
                let mut body = String::new();
                i += 1;
                loop {
                    let Some(&(_, c)) = chars.get(i) else {
                        return Err(unclosed(if quote == '"' { "quote" } else { "regex" }));
                    };
                    i += 1;
                    match c {
                        '\\' if chars.get(i).is_some_and(|n| n.1 == quote) => {
                            body.push(quote);
                            i += 1;
                        }
                        c if c == quote => break,
                        c => body.push(c),
                    }
                }
                if quote == '"' {
                    RawKind::Phrase(body)
                } else {
                    RawKind::Regex(body)
                }
            }
            _ => {
                let mut body = String::new();
                let mut quoted = false;
                while let Some(&(_, c)) = chars.get(i) {
                    if c.is_whitespace() && !quoted {
                        break;
                    }
                    i += 1;
                    if c == '"' {
                        quoted = !quoted;
                    } else {
                        body.push(c);
                    }
                }
                if quoted {
                    return Err(unclosed("quote"));
                }
                RawKind::Bare(body)
            }
        };
        terms.push(RawTerm {
            position,
            negated,
            kind,
        });
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn record(message: &str) -> LogRecord {
        LogRecord {
            time: NOW - 1_000_000_000,
            source: "worker".into(),
            logger: "invoices.send".into(),
            level: Level::Warning,
            message: message.into(),
            fields: vec![("user_id".into(), "42".into())],
            job_id: "nightly-7".into(),
            ..LogRecord::default()
        }
    }

    fn hits(query: &str, message: &str) -> bool {
        LogQuery::parse(query, NOW)
            .unwrap()
            .matches(&record(message))
    }

    /// Every string of `records` as a block keeps them: one after the other, in any order.
    fn block_text(records: &[LogRecord]) -> Vec<u8> {
        let mut text = Vec::new();
        for r in records {
            for s in [
                &r.level_raw,
                &r.logger,
                &r.message,
                &r.job_id,
                &r.trace_id,
                &r.span_id,
            ] {
                text.push(0x8f); // a length byte that is no character
                text.extend_from_slice(s.as_bytes());
            }
            for (k, v) in &r.fields {
                text.extend_from_slice(k.as_bytes());
                text.extend_from_slice(v.as_bytes());
            }
        }
        text
    }

    /// Queries of every kind with a literal, and some with none.
    const SAMPLE_QUERIES: &[&str] = &[
        "/INV-00012\\d/",
        "/INV-0001[23]\\d/",
        "/(?i)keyerror/",
        "/\\d+ ms/",
        "/^SMTP/",
        "invoice",
        "invoic*",
        "\"too many messages\"",
        "ok",
        "ÉTAT",
        "job:nightly-7",
        "trace:4bf92f3577b34da6a3ce929d0e0e4736",
        "field.customer:acme",
        "-invoice",
        "level:error",
        "nothing-like-this",
    ];

    /// Records the text filter is tried on: case forms, Unicode folding, ids and fields.
    fn sample_records() -> Vec<LogRecord> {
        let messages = [
            "invoice INV-000123 sent to customer7@example.com in 42 ms",
            "could not render invoice INV-000131: KeyError 'vat_rate'",
            "SMTP 421 too many messages, retrying",
            "Invoice Sent",
            "status O\u{212a} from the Kelvin-signed upstream", // U+212A folds to k
            "état réinitialisé",
            "ok",
        ];
        let mut records: Vec<LogRecord> = messages.iter().map(|m| record(m)).collect();
        records[2].trace_id = "4BF92F3577B34DA6A3CE929D0E0E4736".into();
        records[3].fields.push(("customer".into(), "ACME".into()));
        records
    }

    #[test]
    fn the_text_filter_never_skips_a_block_holding_a_match() {
        let records = sample_records();
        for &q in SAMPLE_QUERIES {
            let query = LogQuery::parse(q, NOW).unwrap();
            let filter = TextFilter::of(&query);
            for (i, r) in records.iter().enumerate() {
                if query.matches(r) {
                    assert!(
                        filter.admits(&block_text(std::slice::from_ref(r))),
                        "{q:?} matches record {i} but its filter skips it"
                    );
                }
            }
        }
        // The cases that would catch an ASCII-only filter out.
        let q = |text: &str| LogQuery::parse(text, NOW).unwrap();
        assert!(q("ok").matches(&records[4]), "the Kelvin sign folds to k");
        assert!(q("ÉTAT").matches(&records[5]));
        // And it does skip what cannot match.
        let skips = |q: &str, text: &str| {
            !TextFilter::of(&LogQuery::parse(q, NOW).unwrap()).admits(text.as_bytes())
        };
        assert!(skips("/INV-00012\\d/", "INV-000131 INV-00013"));
        assert!(skips("invoice", "an in-voice message"));
        assert!(skips("job:nightly-7", "job nightly 7"));
        assert!(skips("field.customer:*", "no such field"));
        assert!(!skips(
            "trace:4BF92F3577B34DA6A3CE929D0E0E4736",
            "4bf92f3577b34da6a3ce929d0e0e4736"
        ));
        for unfiltered in ["level:error", "-invoice", "/\\d+ ms/", "source:web*"] {
            assert!(
                TextFilter::of(&LogQuery::parse(unfiltered, NOW).unwrap()).is_empty(),
                "{unfiltered}"
            );
        }
    }

    #[test]
    fn the_records_picked_in_a_block_hold_every_match() {
        let mut records = sample_records();
        records.push(record("invoice invoice invoice INV-000124 INV-000125"));
        records.push(record("invoiceinvoice"));
        records[6].job_id = "other".into();
        // Each record's bytes begin where the previous one's end, as in a block.
        let mut text = Vec::new();
        let mut starts = Vec::new();
        for r in &records {
            starts.push(text.len());
            text.extend(block_text(std::slice::from_ref(r)));
        }
        for &q in SAMPLE_QUERIES.iter().chain(&["invoice /INV-000124/"]) {
            let query = LogQuery::parse(q, NOW).unwrap();
            let filter = TextFilter::of(&query);
            let Some(picked) = filter.records(&text, &starts) else {
                assert!(filter.is_empty(), "{q:?}: a literal, yet no records picked");
                continue;
            };
            let matching: Vec<u32> = (0..records.len() as u32)
                .filter(|i| query.matches(&records[*i as usize]))
                .collect();
            for i in &matching {
                assert!(picked.contains(i), "{q:?}: record {i} matches, not picked");
            }
            assert!(picked.windows(2).all(|w| w[0] < w[1]), "{q:?}: {picked:?}");
        }
        // It does leave records out: the point of it.
        let picked = |q: &str| {
            TextFilter::of(&LogQuery::parse(q, NOW).unwrap())
                .records(&text, &starts)
                .unwrap()
        };
        assert_eq!(picked("/INV-00012\\d/"), [0, 7]);
        // Every record holds "invoice" (its logger): the other term decides.
        assert_eq!(picked("invoice /INV-000124/"), [7]);
        assert_eq!(picked("nothing-like-this"), Vec::<u32>::new());
        assert_eq!(picked("job:nightly-7").len(), records.len() - 1);
        for unfiltered in ["level:error", "-invoice"] {
            let filter = TextFilter::of(&LogQuery::parse(unfiltered, NOW).unwrap());
            assert_eq!(filter.records(&text, &starts), None, "{unfiltered}");
        }
    }

    #[test]
    fn words_match_whole_words_in_any_case() {
        assert!(hits("smtp", "SMTP 421 too many messages"));
        assert!(hits("smtp 421", "SMTP 421 too many messages"));
        assert!(!hits("smt", "SMTP 421 too many messages"));
        assert!(hits("smt*", "SMTP 421 too many messages"));
        assert!(!hits("smtp timeout", "SMTP 421 too many messages"));
        assert!(hits("invoices", "anything"), "logger names are searched");
        assert!(hits("42", "anything"), "field values are searched");
    }

    #[test]
    fn phrases_negation_and_regex() {
        assert!(hits("\"too many\"", "421 Too  many messages"));
        assert!(!hits("\"many too\"", "421 too many messages"));
        assert!(!hits("-smtp", "SMTP 421"));
        assert!(hits("-smtp", "connection reset"));
        assert!(hits(r"/4\d\d too/", "SMTP 421 too many"));
        assert!(!hits(r"/^too/", "SMTP 421 too many"));
        assert!(hits("user@example.org", "sent to User@Example.org ok"));
    }

    #[test]
    fn filters() {
        assert!(hits("level:warning", "x"));
        assert!(hits("level:>=warning", "x"));
        assert!(!hits("level:>=error", "x"));
        assert!(hits("level:<error", "x"));
        assert!(hits("source:work*", "x"));
        assert!(!hits("source:nginx", "x"));
        assert!(hits("logger:invoices*", "x"));
        assert!(hits("logger:INVOICES.SEND", "x"));
        assert!(hits("job:nightly-7", "x"));
        assert!(!hits("job:nightly", "x"));
        assert!(hits("field.user_id:42", "x"));
        assert!(hits("field.user_id:*", "x"));
        assert!(!hits("field.order:*", "x"));
        assert!(hits("-level:debug", "x"));
        assert!(hits(
            "https://example.org/a",
            "see https://example.org/a now"
        ));
        assert!(hits("12:30", "at 12:30 it broke"));
    }

    #[test]
    fn time_filters_set_the_range() {
        let q = LogQuery::parse("since:1h error", NOW).unwrap();
        assert_eq!(q.from, Some(NOW - 3_600_000_000_000));
        assert!(!q.in_range(NOW - 7_200_000_000_000));
        let q = LogQuery::parse("from:\"2026-11-21 22:15\" to:2026-11-21T22:30:00Z", NOW).unwrap();
        assert_eq!(q.to.unwrap() - q.from.unwrap(), 15 * 60_000_000_000);
        assert_eq!(
            LogQuery::parse("from:2026-11-21", NOW).unwrap().from,
            Some(parse_instant("2026-11-21T00:00:00Z").unwrap())
        );
    }

    /// The words a record holds, as its block's word filter has them.
    fn record_words(r: &LogRecord) -> Vec<String> {
        let mut words = Vec::new();
        r.each_token(|w| words.push(w.to_owned()));
        words
    }

    /// Whether a record holds every word the hints name, and a word beginning with each start.
    fn holds(r: &LogRecord, hints: &WordHints) -> bool {
        let words = record_words(r);
        hints.whole.iter().all(|w| words.contains(w))
            && hints
                .starts
                .iter()
                .all(|s| words.iter().any(|w| w.starts_with(s.as_str())))
    }

    #[test]
    fn regexes_and_prefixes_name_the_words_their_matches_hold() {
        let hints = |q: &str| LogQuery::parse(q, NOW).unwrap().word_hints();
        let starts = |s: &[&str]| WordHints {
            whole: vec![],
            starts: s.iter().map(|s| s.to_string()).collect(),
        };
        // The literal's first word may end a longer one; the word after the dash begins one.
        assert_eq!(hints("/INV-00012\\d/"), starts(&["00012"]));
        assert_eq!(
            hints("/could not render invoice INV-\\d+/").whole,
            ["inv", "invoice", "not", "render"]
        );
        assert_eq!(hints("invoic*"), starts(&["invoic"]));
        assert_eq!(hints("/Straße-Über\\d/"), starts(&["über"]));
        // A literal of one word, or literals that share nothing, say nothing.
        assert_eq!(hints("/KeyError/"), WordHints::default());
        assert_eq!(hints("/foo-bar|baz-qux/"), WordHints::default());
        assert_eq!(hints("/\\d+ ms/"), WordHints::default());
        // What every alternative says is kept; case forms of one word agree.
        assert_eq!(hints("/(err|warn)-code 42/").whole, ["code"]);
        assert_eq!(
            hints("/(?i)x-abc-def/"),
            WordHints {
                whole: vec!["abc".into()],
                starts: vec!["def".into()],
            }
        );
        // Negated terms hold nothing.
        assert_eq!(hints("-/x-abc-def/ -invoic*"), WordHints::default());
        // Opening at a word start (`^`, `\b`), the first word is whole, or begins one.
        assert_eq!(
            hints("/\\bmailbox \\w+ full/"),
            WordHints {
                whole: vec!["mailbox".into()],
                starts: vec![],
            }
        );
        assert_eq!(hints("/^INV-\\d+/").whole, ["inv"]);
        assert_eq!(hints("/(?m)^(Retrying) in/").whole, ["retrying"]);
        assert_eq!(hints("/\\bquasar/"), starts(&["quasar"]));
        // Not after an ASCII-only boundary (`é` ends no ASCII word), nor after anything else.
        assert_eq!(hints("/(?-u:\\b)mailbox \\w+/"), WordHints::default());
        assert_eq!(hints("/x?\\bmailbox \\w+/"), WordHints::default());
    }

    #[test]
    fn a_regex_that_could_name_its_first_word_says_so() {
        let tip = |q: &str| LogQuery::parse(q, NOW).unwrap().word_start_hints();
        let named = |whole: &[&str], starts: &[&str]| {
            Some(WordHints {
                whole: whole.iter().map(|w| w.to_string()).collect(),
                starts: starts.iter().map(|w| w.to_string()).collect(),
            })
        };
        assert_eq!(tip("/mailbox \\w+ full/"), named(&["mailbox"], &[]));
        assert_eq!(tip("/quasar\\d+/"), named(&[], &["quasar"]));
        // Already opening at a word start, or narrowed by a word: nothing to suggest.
        assert_eq!(tip("/\\bmailbox \\w+ full/"), None);
        assert_eq!(tip("mailbox /\\w+ full/"), None);
        assert_eq!(tip("/timeout after \\d+/"), None);
        // No literal word to name; a negated regex narrows nothing.
        assert_eq!(tip("/\\d+ ms/"), None);
        assert_eq!(tip("-/mailbox \\w+/ level:error"), None);
    }

    /// For random messages and regexes cut from them (escaped, with what may follow), every
    /// message a regex matches holds the words its hints name: a block the hints rule out
    /// holds no match.
    #[test]
    fn the_word_hints_of_a_regex_hold_in_every_match() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let pieces = [
            "INV", "-", "000123", " ", "Inv", "_", "é", "Über", "ß", ".", "42", "a", "K",
            "\u{212a}", "x", ":", "/", "\u{2014}", "…", "«", "€", "Retrying",
        ];
        let tails = ["", "\\d", "\\d+", "\\w", ".", "[a-z]", "\\s", "x?"];
        // What may open the pattern: nothing, or an assertion of where the match starts.
        let heads = [
            "",
            "",
            "\\b",
            "^",
            "(?m)^",
            "(?-u:\\b)",
            "\\b{start}",
            "(\\b)",
        ];
        let mut checked = 0;
        for _ in 0..3_000 {
            let message: String = (0..rng.gen_range(1..14))
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            let chars: Vec<char> = message.chars().collect();
            let from = rng.gen_range(0..chars.len());
            let to = rng.gen_range(from..=chars.len());
            let cut: String = chars[from..to].iter().collect();
            let fold = if rng.gen_bool(0.3) { "(?i)" } else { "" };
            let tail = tails[rng.gen_range(0..tails.len())];
            let head = heads[rng.gen_range(0..heads.len())];
            let pattern = format!("{fold}{head}{}{tail}", regex::escape(&cut));
            let Ok(query) = LogQuery::parse(&format!("/{pattern}/"), NOW) else {
                continue;
            };
            let hints = query.word_hints();
            for text in [
                message.clone(),
                message.to_uppercase(),
                message.to_lowercase(),
            ] {
                let r = record(&text);
                if query.matches(&r) {
                    assert!(holds(&r, &hints), "/{pattern}/ matches {text:?}: {hints:?}");
                    checked += usize::from(!hints.whole.is_empty() || !hints.starts.is_empty());
                }
            }
        }
        assert!(checked > 300, "only {checked} matches had hints to check");
    }

    /// A word or phrase a record matches is among the record's words: a word glued to
    /// punctuation outside ASCII (`Retrying…`, `—sent`) is still found in the word filters.
    #[test]
    fn the_words_a_term_finds_are_the_records_words() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pieces = [
            "Retrying", "…", "—", "«", "»", "€", " ", "-", "invoice", "Über", "ß", "5", "日本",
            "\u{301}", "é", "_", "x",
        ];
        let terms = [
            "retrying",
            "invoice",
            "über",
            "5",
            "x",
            "日本",
            "\"retrying invoice\"",
            "invoi*",
            "ß",
            "retrying…",
        ];
        let mut found = 0;
        for _ in 0..3_000 {
            let message: String = (0..rng.gen_range(1..10))
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            let r = record(&message);
            for term in terms {
                let query = LogQuery::parse(term, NOW).unwrap();
                if query.matches(&r) {
                    let hints = query.word_hints();
                    assert!(holds(&r, &hints), "{term} finds {message:?}: {hints:?}");
                    found += 1;
                }
            }
        }
        assert!(found > 1_000, "{found}");
    }

    #[test]
    fn pruning_hints() {
        let q = LogQuery::parse("smtp \"Too many\" -retry job:abc-1 level:>=warning", NOW).unwrap();
        assert_eq!(q.required_words(), ["1", "abc", "many", "smtp", "too"]);
        assert_eq!(
            q.level_mask(),
            Level::Warning.bit() | Level::Error.bit() | Level::Critical.bit()
        );
        assert_eq!(
            LogQuery::parse("-level:debug", NOW).unwrap().level_mask(),
            0x7f & !Level::Debug.bit()
        );
        let q = LogQuery::parse("source:nginx*", NOW).unwrap();
        assert!(q.admits_source("nginx-access"));
        assert!(!q.admits_source("worker"));
        assert!(!q.has_text_terms());
        assert!(LogQuery::parse("", NOW).unwrap().matches(&record("x")));
    }

    #[test]
    fn errors_say_what_to_do() {
        let err = |q: &str| LogQuery::parse(q, NOW).unwrap_err();
        assert!(err("levl:error").message.contains("known filters"));
        assert!(err("level:loud").message.contains("unknown level"));
        assert!(err("\"open").message.contains("unclosed quote"));
        assert!(err("/[a-/").message.contains("invalid regex"));
        assert!(err("since:5 years").message.contains("duration"));
        assert!(err("from:yesterday").message.contains("not a time"));
        assert!(err("-since:1h").message.contains("cannot be negated"));
        assert!(err("from:2026-11-22 to:2026-11-21")
            .message
            .contains("empty"));
        assert_eq!(err("ok -- ?").position, 3);
    }

    /// Untrusted text: random queries parse or fail with a position inside the text, and a
    /// parsed one evaluates without panicking. (`fuzz/` runs the same property guided.)
    #[test]
    fn random_queries_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pieces = [
            "level:",
            "source:",
            "logger:",
            "job:",
            "trace:",
            "field.",
            "since:",
            "from:",
            "to:",
            ">=",
            "<",
            "-",
            "\"",
            "/",
            "*",
            " ",
            "error",
            "warn",
            "1h",
            "2026-11-21",
            "T22:15",
            "(?i)",
            "[",
            "\\",
            ":",
            "é",
            "x",
            "0",
        ];
        // Each parsed term compiles a regex, slow in debug builds: 2,000 queries is enough here.
        for _ in 0..2_000 {
            let text: String = (0..rng.gen_range(0..12))
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            match LogQuery::parse(&text, NOW) {
                Ok(query) => {
                    let _ = query.matches(&record(&text));
                    let _ = query.required_words();
                }
                Err(e) => assert!(e.position <= text.len(), "{e:?} for {text:?}"),
            }
        }
    }
}
