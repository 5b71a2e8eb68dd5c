//! Log records: what every log protocol turns into, and the words search finds in them.
//!
//! A [`LogRecord`] is one event of an application's log, whatever wire it came over (JSON lines,
//! OTLP, Loki, syslog, an imported file). Its level is normalized to [`Level`] (the original
//! spelling is kept in `level_raw`), its multi-line body stays one record (a Python traceback is
//! one record, not thirty), and it may name the job and trace it belongs to, which is how a job
//! page finds its logs (`job:ID`).
//!
//! [`tokens`] is the one definition of a "word", shared by the block bloom filters that prune a
//! search and by the query terms that match: lower-cased runs of letters, digits and `_`.

use serde::{Deserialize, Serialize};

/// A record's text: kept inline when short (up to 24 bytes: most sources, loggers, levels as
/// sent, field names and values), on the heap otherwise. A record is built and dropped once per
/// line received; with `String`s, each of its texts cost an allocation and a free, and those were
/// a fifth of the CPU of log ingest (BENCHMARKS.md, "Log records with inline texts").
pub type Text = compact_str::CompactString;

/// The longest message kept, in bytes. Longer messages are cut at a character boundary and end
/// with [`TRUNCATION_MARKER`]; the record is flagged [`LogRecord::TRUNCATED`].
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// `text` cut to at most `max` bytes on a character boundary, ending with
/// [`TRUNCATION_MARKER`] when it was cut.
pub fn truncate_text(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max.saturating_sub(TRUNCATION_MARKER.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(TRUNCATION_MARKER);
    text
}

/// The field that keeps a replaced time as it was sent (see [`LogRecord::TIME_REPLACED`]).
pub const ORIGINAL_TIME_FIELD: &str = "original_time";
/// What a cut message ends with.
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// Normalized severity, ordered from least to most severe.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace = 0,
    Debug = 1,
    #[default]
    Info = 2,
    Notice = 3,
    Warning = 4,
    Error = 5,
    Critical = 6,
}

impl Level {
    pub const ALL: [Level; 7] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Notice,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    pub fn from_u8(value: u8) -> Level {
        Level::ALL[usize::from(value).min(6)]
    }

    /// This level's bit in a level mask (block summaries, query pruning).
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Reads the level names and abbreviations used by Python logging, syslog, OTLP, Loki
    /// shippers, nginx, PostgreSQL and the like. `None` when the text names no level.
    pub fn parse(text: &str) -> Option<Level> {
        let lower = text.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "trace" | "trc" | "finest" | "verbose" => Level::Trace,
            "debug" | "dbg" | "debug1" | "debug2" | "debug3" | "debug4" | "debug5" | "fine" => {
                Level::Debug
            }
            "info" | "inf" | "information" | "informational" | "log" | "ok" => Level::Info,
            "notice" | "note" => Level::Notice,
            "warning" | "warn" | "wrn" => Level::Warning,
            "error" | "err" | "erro" | "fail" | "failure" | "exception" => Level::Error,
            "critical" | "crit" | "fatal" | "panic" | "alert" | "emerg" | "emergency"
            | "severe" => Level::Critical,
            _ => return None,
        })
    }

    /// A level sent as a number: pino's (10 trace, 20 debug, 30 info, 40 warn, 50 error, 60
    /// fatal, and any custom level between) or a syslog severity (0–7). `None` for others.
    pub fn from_number(number: f64) -> Option<Level> {
        if number.fract() != 0.0 {
            return None;
        }
        Some(match number as i64 {
            n @ 0..=7 => Level::from_syslog(n as u8),
            10..=19 => Level::Trace,
            20..=29 => Level::Debug,
            30..=39 => Level::Info,
            40..=49 => Level::Warning,
            50..=59 => Level::Error,
            60..=69 => Level::Critical,
            _ => return None,
        })
    }

    /// The level a message names in its first word, when it says it plainly: an upper-case
    /// name (`ERROR shop.mail …`, `WARNING: …`), or any name followed by a colon or in brackets
    /// (`error: job failed`, `[warn] …`). What a line whose format carries no level (a syslog
    /// file) still tells.
    pub fn from_message_start(message: &str) -> Option<Level> {
        let word = message.split_whitespace().next()?;
        let bracketed = word.starts_with('[') && word.ends_with(']');
        let name = word.trim_start_matches('[').trim_end_matches([']', ':']);
        let plain = bracketed
            || word.ends_with(':')
            || (name.len() >= 3 && name.chars().all(|c| c.is_ascii_uppercase()));
        plain.then(|| Level::parse(name)).flatten()
    }

    /// The syslog severity (0 emergency … 7 debug) as a level.
    pub fn from_syslog(severity: u8) -> Level {
        match severity {
            0..=2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warning,
            5 => Level::Notice,
            6 => Level::Info,
            _ => Level::Debug,
        }
    }

    /// An OpenTelemetry severity number (1–24) as a level; 0 (unspecified) is `None`.
    pub fn from_otel(number: i32) -> Option<Level> {
        Some(match number {
            1..=4 => Level::Trace,
            5..=8 => Level::Debug,
            9 | 10 => Level::Info,
            11 | 12 => Level::Notice,
            13..=16 => Level::Warning,
            17..=20 => Level::Error,
            21..=24 => Level::Critical,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When it happened, nanoseconds since the epoch (the sender's clock).
    pub time: i64,
    /// When Vigie received it, nanoseconds since the epoch.
    pub received: i64,
    /// Where it came from: an application, a host, a file (`nginx-access`, `worker@web-1`).
    pub source: Text,
    pub level: Level,
    /// The level as the sender spelled it (`WARN`, `err`, `<3>`), when it differs.
    pub level_raw: Text,
    pub logger: Text,
    /// The text, possibly several lines (a traceback).
    pub message: Text,
    /// Structured fields, in the order received; values are text (JSON for non-strings).
    pub fields: Vec<(Text, Text)>,
    pub job_id: Text,
    pub trace_id: Text,
    pub span_id: Text,
    /// [`LogRecord::LOSSY_UTF8`], [`LogRecord::TRUNCATED`], [`LogRecord::UNPARSED`],
    /// [`LogRecord::TIME_REPLACED`].
    pub flags: u8,
}

impl LogRecord {
    /// The bytes were not valid UTF-8 and were decoded lossily.
    pub const LOSSY_UTF8: u8 = 1;
    /// The message was longer than [`MAX_MESSAGE_BYTES`] and was cut.
    pub const TRUNCATED: u8 = 2;
    /// No format recognized the line; it is kept whole as the message.
    pub const UNPARSED: u8 = 4;
    /// The sender's time was not plausible (see `time::plausible_ns`): the record is placed
    /// at its receive time and the time sent is in the field [`ORIGINAL_TIME_FIELD`].
    pub const TIME_REPLACED: u8 = 8;

    /// Places a record with an implausible time at its receive time, keeping what was sent
    /// in a field and the flag; answers whether it did. Every ingest path calls this before
    /// storing, so search order, stats buckets and retention only ever see sane times.
    pub fn place_in_time(&mut self) -> bool {
        let time = self.time;
        self.place_in_time_as(|| crate::time::describe_ns(time))
    }

    /// [`LogRecord::place_in_time`], keeping the time as the sender wrote it (`original`)
    /// rather than as a number of nanoseconds, which may have saturated.
    pub fn place_in_time_as<T: Into<Text>>(&mut self, original: impl FnOnce() -> T) -> bool {
        if crate::time::plausible_ns(self.time, self.received) {
            return false;
        }
        self.fields
            .push((ORIGINAL_TIME_FIELD.into(), original().into()));
        self.time = self.received;
        self.flags |= Self::TIME_REPLACED;
        true
    }

    /// The record as a [`RecordRef`], for what tests borrowed records.
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            time: self.time,
            received: self.received,
            source: &self.source,
            level: self.level,
            level_raw: &self.level_raw,
            logger: &self.logger,
            message: &self.message,
            fields: &self.fields,
            job_id: &self.job_id,
            trace_id: &self.trace_id,
            span_id: &self.span_id,
            flags: self.flags,
        }
    }

    /// A field's value by name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Enforces the size rule on the message (see [`MAX_MESSAGE_BYTES`]).
    pub fn truncate_message(&mut self) {
        if self.message.len() <= MAX_MESSAGE_BYTES {
            return;
        }
        let message = std::mem::take(&mut self.message).into_string();
        self.message = truncate_text(message, MAX_MESSAGE_BYTES).into();
        self.flags |= Self::TRUNCATED;
    }

    /// The record as a line of a log file, the way Python's logging writes one:
    /// `2026-11-21 21:15:00,123 ERROR    worker invoices.send: message` (UTC). A multi-line
    /// message continues on the following lines, as a traceback does.
    pub fn text_line(&self) -> String {
        let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.time))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let logger = if self.logger.is_empty() {
            "-"
        } else {
            &self.logger
        };
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03} {:<8} {} {}: {}",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour(),
            time.minute(),
            time.second(),
            time.millisecond(),
            self.level.as_str().to_uppercase(),
            self.source,
            logger,
            self.message
        )
    }

    /// Bytes of text the record carries, roughly its size as a log line.
    pub fn text_len(&self) -> usize {
        self.message.len()
            + self.logger.len()
            + self
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>()
    }

    /// Calls `each` with every word search can find in this record: its message, logger,
    /// field values, job, trace and span ids.
    pub fn each_token(&self, mut each: impl FnMut(&str)) {
        let mut scratch = String::new();
        for text in [
            self.message.as_str(),
            self.logger.as_str(),
            self.job_id.as_str(),
            self.trace_id.as_str(),
            self.span_id.as_str(),
        ] {
            tokens(text, &mut scratch, &mut each);
        }
        for (_, value) in &self.fields {
            tokens(value, &mut scratch, &mut each);
        }
    }
}

/// A record's fields wherever they are kept: a record's own list, or a stored block's bytes
/// read in place (a search tests those without copying them, see [`RecordRef`]).
pub trait FieldList<'a> {
    /// Calls `visit` with each (name, value) in order until it answers true; answers whether
    /// it did.
    fn any(&'a self, visit: &mut dyn FnMut(&'a str, &'a str) -> bool) -> bool;
}

impl<'a> FieldList<'a> for Vec<(Text, Text)> {
    fn any(&'a self, visit: &mut dyn FnMut(&'a str, &'a str) -> bool) -> bool {
        self.iter().any(|(k, v)| visit(k, v))
    }
}

/// A log record read in place, its texts borrowed from wherever they are kept: what a query
/// tests ([`crate::LogQuery::matches_ref`]). Searching a stored block this way copies only the
/// records that match.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    pub time: i64,
    pub received: i64,
    pub source: &'a str,
    pub level: Level,
    pub level_raw: &'a str,
    pub logger: &'a str,
    pub message: &'a str,
    pub fields: &'a dyn FieldList<'a>,
    pub job_id: &'a str,
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub flags: u8,
}

impl<'a> RecordRef<'a> {
    /// A field's value by name (the first of that name).
    pub fn field(&self, name: &str) -> Option<&'a str> {
        let mut found = None;
        self.fields.any(&mut |k, v| {
            if k == name {
                found = Some(v);
            }
            found.is_some()
        });
        found
    }

    /// The record, owned.
    pub fn to_record(&self) -> LogRecord {
        let mut fields = Vec::new();
        self.fields.any(&mut |k, v| {
            fields.push((k.into(), v.into()));
            false
        });
        LogRecord {
            time: self.time,
            received: self.received,
            source: self.source.into(),
            level: self.level,
            level_raw: self.level_raw.into(),
            logger: self.logger.into(),
            message: self.message.into(),
            fields,
            job_id: self.job_id.into(),
            trace_id: self.trace_id.into(),
            span_id: self.span_id.into(),
            flags: self.flags,
        }
    }
}

/// Decodes bytes as UTF-8, replacing invalid sequences; the flag says whether any were.
pub fn lossy_utf8(bytes: &[u8]) -> (String, u8) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), 0),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            LogRecord::LOSSY_UTF8,
        ),
    }
}

/// What a character is to [`tokens`]: not in a word, or in one as a lower-case ASCII letter,
/// digit or `_`, an upper-case ASCII letter, or a non-ASCII word character.
const SEPARATOR: u8 = 0;
const PLAIN: u8 = 1;
const UPPER: u8 = 2;
const NON_ASCII: u8 = 4;

const BYTE_CLASS: [u8; 256] = {
    let mut class = [SEPARATOR; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        class[b] = if c >= 0x80 {
            NON_ASCII
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            PLAIN
        } else {
            SEPARATOR
        };
        b += 1;
    }
    class
};

/// Whether `c` belongs to a word: what a regex's `\w` matches (ASCII letters, digits and `_`,
/// and the Unicode letters, marks and digits), so words and a search's `\b` agree.
pub fn is_word_character(c: char) -> bool {
    regex_syntax::is_word_character(c)
}

/// Calls `each` with every word of `text`, lower-cased: maximal runs of word characters as a
/// regex's `\w` has them (ASCII letters, digits and `_`, and the Unicode letters, marks and
/// digits), so a word a search's `\bword\b` finds is always a word here: `Retrying…` holds
/// `retrying`. `scratch` is reused so the common case allocates nothing. One pass: an ASCII
/// byte's class (a table) both ends words and says whether a word needs lowering; a non-ASCII
/// character is looked up.
pub fn tokens(text: &str, scratch: &mut String, each: &mut impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut seen = SEPARATOR;
    let mut i = 0;
    loop {
        // `i` always lies on a character boundary: it moves by whole characters.
        let (class, len) = match bytes.get(i) {
            None => (SEPARATOR, 0),
            Some(&b) if b.is_ascii() => (BYTE_CLASS[b as usize], 1),
            Some(_) => {
                let c = text[i..].chars().next().expect("a character starts here");
                let in_word = is_word_character(c);
                (if in_word { NON_ASCII } else { SEPARATOR }, c.len_utf8())
            }
        };
        if class != SEPARATOR {
            if seen == SEPARATOR {
                start = i;
            }
            seen |= class;
            i += len;
            continue;
        }
        if seen != SEPARATOR {
            let word = &text[start..i];
            if seen & NON_ASCII != 0 {
                scratch.clear();
                scratch.extend(word.chars().flat_map(char::to_lowercase));
                each(scratch);
            } else if seen & UPPER != 0 {
                scratch.clear();
                scratch.push_str(word);
                scratch.make_ascii_lowercase();
                each(scratch);
            } else {
                each(word);
            }
            seen = SEPARATOR;
        }
        if len == 0 {
            return;
        }
        i += len;
    }
}

/// The words of `text` as owned strings (for queries; records use [`LogRecord::each_token`]).
pub fn token_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    tokens(text, &mut String::new(), &mut |w: &str| {
        out.push(w.to_string())
    });
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn implausible_times_are_placed_at_arrival_with_the_original_kept() {
        let received = 1_795_300_000_000_000_000;
        let at = |time| LogRecord {
            time,
            received,
            ..LogRecord::default()
        };
        let mut fine = at(received - 3_600_000_000_000);
        assert!(!fine.place_in_time());
        assert_eq!(fine.time, received - 3_600_000_000_000);
        for (time, kept) in [
            (i64::MAX, "beyond the year 2262"),
            (-5_000_000_000, "1969-12-31T23:59:55Z"),
            (
                received + 2 * crate::time::MAX_AHEAD_NS,
                "2026-11-23T22:26:40Z",
            ),
        ] {
            let mut r = at(time);
            assert!(r.place_in_time(), "{time}");
            assert_eq!(r.time, received);
            assert_eq!(r.flags & LogRecord::TIME_REPLACED, LogRecord::TIME_REPLACED);
            assert_eq!(r.field(ORIGINAL_TIME_FIELD), Some(kept));
            assert!(!r.place_in_time(), "once placed, it stays");
        }
    }
    use super::*;

    /// Words as the definition says them: split on every character that is not a regex's
    /// word character, then lower-cased.
    fn words_by_definition(text: &str) -> Vec<String> {
        text.split(|c: char| !is_word_character(c))
            .filter(|w| !w.is_empty())
            .map(|w| w.chars().flat_map(char::to_lowercase).collect())
            .collect()
    }

    #[test]
    fn words_are_the_runs_of_word_characters_lower_cased() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let pieces = [
            "a", "Z", "0", "_", " ", "-", ".", "É", "ß", "日本", "İ", "\n", "\"", "INV", "x9", "…",
            "—", "«", "€", "\u{301}", "٣",
        ];
        for _ in 0..5_000 {
            let text: String = (0..rng.gen_range(0..24))
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            assert_eq!(token_list(&text), words_by_definition(&text), "{text:?}");
        }
        assert_eq!(
            token_list("Invoice INV-000042 sent to Zoë_B@example.com"),
            ["invoice", "inv", "000042", "sent", "to", "zoë_b", "example", "com"]
        );
    }

    #[test]
    fn levels_parse_from_every_dialect() {
        assert_eq!(Level::parse("WARN"), Some(Level::Warning));
        assert_eq!(Level::parse("err"), Some(Level::Error));
        assert_eq!(Level::parse(" Fatal "), Some(Level::Critical));
        assert_eq!(Level::parse("DEBUG2"), Some(Level::Debug));
        assert_eq!(Level::parse("banana"), None);
        assert_eq!(Level::from_syslog(3), Level::Error);
        assert_eq!(Level::from_syslog(0), Level::Critical);
        assert_eq!(Level::from_otel(13), Some(Level::Warning));
        assert_eq!(Level::from_otel(0), None);
        assert!(Level::Error > Level::Warning);
    }

    #[test]
    fn numeric_levels_are_pino_or_syslog() {
        let pino: Vec<_> = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 35.0]
            .map(Level::from_number)
            .to_vec();
        use Level::*;
        let expected = [Trace, Debug, Info, Warning, Error, Critical, Info];
        assert_eq!(pino, expected.map(Some).to_vec());
        assert_eq!(Level::from_number(3.0), Some(Error), "a syslog severity");
        assert_eq!(Level::from_number(70.0), None);
        assert_eq!(Level::from_number(30.5), None);
        assert_eq!(Level::from_number(-1.0), None);
    }

    #[test]
    fn a_message_that_says_its_level_first() {
        for (message, level) in [
            ("ERROR shop.mail send failed", Some(Level::Error)),
            ("WARNING: invoice 9 retried", Some(Level::Warning)),
            ("error: job backup failed", Some(Level::Error)),
            ("[warn] disk at 91 %", Some(Level::Warning)),
            ("error handling is hard", None),
            ("Info about the run", None),
            ("OK", None),
            ("", None),
            ("4BQWf2nZ3Lz1: to=<a@b.c>", None),
        ] {
            assert_eq!(Level::from_message_start(message), level, "{message:?}");
        }
    }

    #[test]
    fn words_are_lowercased_runs() {
        assert_eq!(
            token_list("SMTP 421 too-many messages (job_id=a1B2)"),
            ["smtp", "421", "too", "many", "messages", "job_id", "a1b2"]
        );
        assert_eq!(token_list("Été déjà"), ["été", "déjà"]);
        // Non-ASCII punctuation and symbols separate words, as they do for a regex's `\b`.
        assert_eq!(
            token_list("Retrying… «invoice»—sent €5"),
            ["retrying", "invoice", "sent", "5"]
        );
        assert!(token_list("  -- ").is_empty());
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary_with_a_marker() {
        let mut record = LogRecord {
            message: "é".repeat(MAX_MESSAGE_BYTES).into(),
            ..LogRecord::default()
        };
        record.truncate_message();
        assert!(record.message.len() <= MAX_MESSAGE_BYTES);
        assert!(record.message.ends_with(TRUNCATION_MARKER));
        assert_eq!(record.flags, LogRecord::TRUNCATED);
    }

    #[test]
    fn text_lines_read_like_python_logging() {
        let record = LogRecord {
            time: 1_795_295_700_123_000_000,
            source: "worker".into(),
            level: Level::Error,
            logger: "invoices".into(),
            message: "failed\nTraceback".into(),
            ..LogRecord::default()
        };
        assert_eq!(
            record.text_line(),
            "2026-11-21 21:15:00,123 ERROR    worker invoices: failed\nTraceback"
        );
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily_and_flagged() {
        let (text, flag) = lossy_utf8(b"ok \xff end");
        assert_eq!(text, "ok \u{fffd} end");
        assert_eq!(flag, LogRecord::LOSSY_UTF8);
        assert_eq!(lossy_utf8(b"fine"), ("fine".to_string(), 0));
    }
}
