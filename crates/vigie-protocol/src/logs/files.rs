//! Lines of existing log files, for `vigie import` and followed files: nginx's and Apache's
//! access and error logs, PostgreSQL, Postfix, syslog, journald's JSON and export formats,
//! Python logging and the layouts of its kind (Django, uvicorn, logback, Spring Boot, Node),
//! Celery worker and beat, gunicorn, Redis, logfmt and JSON lines (Docker's json-file, Caddy).
//!
//! An [`Importer`] takes a file's lines one by one and returns finished records. Formats whose
//! records span lines join them: a Python traceback's lines follow the line that logged it,
//! PostgreSQL's `DETAIL:`, `HINT:`, `STATEMENT:`, `CONTEXT:` lines and tab-indented
//! continuations follow their statement, an indented stack frame or a `Caused by:` follows
//! its line in every line format, and a journal entry's fields follow its `__CURSOR=`. A line
//! that belongs to no record and matches no pattern is kept whole as an `UNPARSED` record: an
//! import never drops a line.
//!
//! [`Format::detect`] picks the format from a file's first lines: the one that reads most of
//! them. Times without a zone (Python, nginx error log, syslog, Redis, Apache) are read in the
//! [`Zone`] given.

use super::{jsonlines, parse_time, syslog, unparsed, value_text};
use serde_json::Value;
use std::sync::Arc;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use vigie_core::log::{lossy_utf8, LogRecord, Text, MAX_MESSAGE_BYTES};
use vigie_core::Level;

/// The formats `vigie import --format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    NginxAccess,
    NginxError,
    Syslog,
    JournaldJson,
    Postgres,
    Postfix,
    Python,
    Celery,
    Gunicorn,
    Jsonl,
    Redis,
    ApacheError,
    Logfmt,
    JournaldExport,
}

impl Format {
    /// In order of preference when two formats read a sample equally well.
    pub const ALL: [Format; 14] = [
        Format::JournaldJson,
        Format::JournaldExport,
        Format::Jsonl,
        Format::NginxAccess,
        Format::NginxError,
        Format::ApacheError,
        Format::Postgres,
        Format::Celery,
        Format::Gunicorn,
        Format::Redis,
        Format::Logfmt,
        // Before syslog: a file both read whole has an ISO time, a level and a logger on
        // every line (Spring Boot, Node), which syslog would take for a host and a tag.
        Format::Python,
        Format::Syslog,
        Format::Postfix,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::NginxAccess => "nginx-access",
            Format::NginxError => "nginx-error",
            Format::Syslog => "syslog",
            Format::JournaldJson => "journald-json",
            Format::Postgres => "postgres",
            Format::Postfix => "postfix",
            Format::Python => "python",
            Format::Celery => "celery",
            Format::Gunicorn => "gunicorn",
            Format::Jsonl => "jsonl",
            Format::Redis => "redis",
            Format::ApacheError => "apache-error",
            Format::Logfmt => "logfmt",
            Format::JournaldExport => "journald-export",
        }
    }

    /// A format by its name, or by another name people know it by: Apache's and Caddy's
    /// common/combined access logs are nginx's layout; Docker's json-file logs, Caddy's and
    /// the JSON loggers' are JSON lines.
    pub fn from_name(name: &str) -> Option<Format> {
        let name = match name {
            "apache-access" | "combined" | "caddy-common" => "nginx-access",
            "docker" | "docker-json" | "caddy" | "json" => "jsonl",
            "django" | "java" | "node" => "python",
            other => other,
        };
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The format reading most of `sample` (a file's first lines); `None` if none reads any.
    pub fn detect(sample: &[&[u8]]) -> Option<Format> {
        let zone = Zone::utc();
        let now = vigie_core::time::now_ns();
        Format::ALL
            .into_iter()
            .map(|format| {
                let read = sample
                    .iter()
                    .filter(|line| !line.trim_ascii().is_empty())
                    .filter(|line| starts_record(format, line, &zone, now).is_some())
                    .count();
                (format, read)
            })
            .filter(|(_, read)| *read > 0)
            // Earlier (more specific) formats win ties: `max_by_key` keeps the last maximum.
            .rev()
            .max_by_key(|(_, read)| *read)
            .map(|(format, _)| format)
    }
}

/// How times written without a zone are read: a function from "the wall-clock time read as
/// if it were UTC" to the real instant, both in ns.
#[derive(Clone)]
pub struct Zone(Arc<dyn Fn(i64) -> i64 + Send + Sync>);

impl Zone {
    pub fn utc() -> Zone {
        Zone(Arc::new(|t| t))
    }

    pub fn new(convert: impl Fn(i64) -> i64 + Send + Sync + 'static) -> Zone {
        Zone(Arc::new(convert))
    }

    /// `UTC`, a fixed offset like `+01:00`, or an IANA name like `Europe/Paris` (from the
    /// bundled zone database, so it works on a machine without tzdata); the error says which
    /// spellings are accepted.
    pub fn named(name: &str) -> Result<Zone, String> {
        let tz = match name {
            "UTC" | "utc" | "Z" => return Ok(Zone::utc()),
            _ if name.starts_with('+') || name.starts_with('-') => {
                let bad = || format!("{name:?} is not an offset like +01:00");
                let sign = if name.starts_with('-') { -1 } else { 1 };
                let (hours, minutes) = name[1..].split_once(':').unwrap_or((&name[1..], "0"));
                let hours: i32 = hours.parse().map_err(|_| bad())?;
                let minutes: i32 = minutes.parse().map_err(|_| bad())?;
                let offset = jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60))
                    .map_err(|_| bad())?;
                jiff::tz::TimeZone::fixed(offset)
            }
            _ => jiff::tz::TimeZone::get(name).map_err(|_| {
                format!("{name:?}: unknown time zone (use UTC, +01:00 or a name like Europe/Paris)")
            })?,
        };
        Ok(Zone::new(move |naive_utc| {
            let civil = jiff::Timestamp::from_nanosecond(i128::from(naive_utc))
                .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).datetime());
            civil
                .ok()
                .and_then(|c| tz.to_ambiguous_timestamp(c).compatible().ok())
                .map_or(naive_utc, |t| t.as_nanosecond() as i64)
        }))
    }

    fn local(&self, naive_utc: i64) -> i64 {
        (self.0)(naive_utc)
    }

    /// A date and time written without a zone, read in this one.
    fn at(&self, naive: PrimitiveDateTime) -> i64 {
        self.local(vigie_core::time::saturating_ns(
            naive.assume_utc().unix_timestamp_nanos(),
        ))
    }
}

/// Turns a file's lines into records.
pub struct Importer {
    format: Format,
    source: String,
    zone: Zone,
    received: i64,
    pending: Option<LogRecord>,
    /// Whether the last line read began a record (rather than continuing one, or being blank).
    began: bool,
    /// `journalctl -o export`: a binary field being read (its name, bytes still to come, and
    /// what came so far).
    binary: Option<Binary>,
}

impl Importer {
    pub fn new(format: Format, source: &str, zone: Zone, received: i64) -> Importer {
        Importer {
            format,
            source: source.to_string(),
            zone,
            received,
            pending: None,
            began: false,
            binary: None,
        }
    }

    /// Whether the last line given to [`line`](Self::line) began a record: a follower that
    /// stores a file's position keeps the place where the record still being built began, so
    /// that after a restart it reads that record again whole.
    pub fn last_line_began_record(&self) -> bool {
        self.began
    }

    /// The time lines read from now on were received (a follower reads for days).
    pub fn set_received(&mut self, received: i64) {
        self.received = received;
    }

    /// Whether a record is being built (lines that may continue it could still come).
    pub fn holds_record(&self) -> bool {
        self.pending.is_some()
    }

    /// Reads one line (without its newline); returns the record it finished, if any.
    pub fn line(&mut self, line: &[u8]) -> Option<LogRecord> {
        if self.format == Format::JournaldExport {
            if let Some(done) = self.export_field(line) {
                return done;
            }
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.began = false;
        if line.trim_ascii().is_empty() {
            return None;
        }
        self.began = true;
        if let Some(mut record) = starts_record(self.format, line, &self.zone, self.received) {
            if let Some(pending) = self.pending.as_mut() {
                if continues_container_trace(pending, &record) {
                    continue_message(pending, &record.message);
                    self.began = false;
                    return None;
                }
            }
            record.received = self.received;
            if record.time == 0 {
                record.time = self.received; // the line says no time
            }
            if record.source.is_empty() {
                record.source = self.source.as_str().into();
            }
            return self.pending.replace(record).map(|r| self.complete(r));
        }
        let (text, lossy) = lossy_utf8(line);
        if let Some(pending) = self.pending.as_mut() {
            if let Some(more) = continuation(self.format, &text) {
                continue_message(pending, more);
                pending.flags |= lossy;
                self.began = false;
                return None;
            }
        }
        let raw = unparsed(line, &self.source, self.received);
        self.pending.replace(raw).map(|r| self.complete(r))
    }

    /// The file ended: the record still being built, if any.
    pub fn finish(&mut self) -> Option<LogRecord> {
        self.binary = None;
        self.pending.take().map(|r| self.complete(r))
    }

    /// A record all of whose lines were read.
    fn complete(&self, record: LogRecord) -> LogRecord {
        match self.format {
            Format::JournaldExport if record.flags & LogRecord::UNPARSED == 0 => {
                let mut done = journald_export(record, &self.source);
                done.received = self.received;
                finish(done)
            }
            _ => finish(record),
        }
    }

    /// A line of `journalctl -o export` inside an entry: `KEY=value`, or a binary field (its
    /// name alone on a line, then a 64-bit little-endian length and that many bytes, which may
    /// hold line breaks: they come as several lines). `None` when the line is not one (a new
    /// entry's `__CURSOR=`, a blank line between entries, a line outside any entry).
    fn export_field(&mut self, line: &[u8]) -> Option<Option<LogRecord>> {
        if let Some(mut binary) = self.binary.take() {
            self.began = false;
            let more = match binary.length {
                Some(_) => {
                    binary.seen += 1; // the line break the split took
                    line
                }
                None => {
                    let (length, rest) = line.split_at_checked(8)?;
                    binary.length = Some(u64::from_le_bytes(length.try_into().ok()?) as usize);
                    rest
                }
            };
            let length = binary.length.unwrap_or(0);
            if binary.bytes.len() < MAX_MESSAGE_BYTES {
                if !binary.bytes.is_empty() || binary.seen > 0 {
                    binary.bytes.push(b'\n');
                }
                binary.bytes.extend_from_slice(more);
            }
            binary.seen += more.len();
            if binary.seen < length {
                self.binary = Some(binary);
            } else if let Some(pending) = self.pending.as_mut() {
                binary.bytes.truncate(length.min(MAX_MESSAGE_BYTES));
                let value = lossy_utf8(&binary.bytes).0;
                pending.fields.push((binary.key.into(), value.into()));
            }
            return Some(None);
        }
        let pending = self.pending.as_mut()?;
        if line.is_empty() || line.starts_with(b"__CURSOR=") {
            return None;
        }
        self.began = false;
        match line.iter().position(|b| *b == b'=') {
            Some(eq) => {
                let key = String::from_utf8_lossy(&line[..eq]).into_owned();
                let value = lossy_utf8(&line[eq + 1..]).0;
                pending.fields.push((key.into(), value.into()));
            }
            None => {
                self.binary = Some(Binary {
                    key: String::from_utf8_lossy(line).into_owned(),
                    length: None,
                    seen: 0,
                    bytes: Vec::new(),
                });
            }
        }
        Some(None)
    }
}

/// A binary field of `journalctl -o export` being read.
struct Binary {
    key: String,
    /// Its length, once its first line gave it.
    length: Option<usize>,
    /// Bytes of it read so far (line breaks included).
    seen: usize,
    /// What is kept of it (at most [`MAX_MESSAGE_BYTES`]).
    bytes: Vec<u8>,
}

/// Adds a line to a record's message, which stops growing once it is cut at the message
/// limit: a file whose every line continues the first (a runaway traceback, a binary file
/// read as Python) holds at most one message's worth in memory, never the whole file.
fn continue_message(record: &mut LogRecord, line: &str) {
    if record.flags & LogRecord::TRUNCATED != 0 {
        return;
    }
    record.message.push('\n');
    record.message.push_str(line);
    record.truncate_message();
}

fn finish(mut record: LogRecord) -> LogRecord {
    record.truncate_message();
    record
}

/// The part of `text` that continues the record before it, if it does.
fn continuation(format: Format, text: &str) -> Option<&str> {
    match format {
        // Tracebacks and anything else under a logged line.
        Format::Python | Format::Celery | Format::Gunicorn => Some(text),
        Format::Postgres if text.starts_with('\t') || text.starts_with(' ') => Some(text),
        Format::Postgres => postgres_detail(text),
        Format::Jsonl | Format::JournaldJson | Format::JournaldExport => None,
        _ if is_stack_line(text) => Some(text),
        _ => None,
    }
}

/// Docker's json-file driver writes each line a container printed as its own object, so a
/// traceback comes as many: a line of the same stream joins the record before it when it is a
/// stack frame, or when that record ends with one (the exception line closing a traceback).
fn continues_container_trace(pending: &LogRecord, next: &LogRecord) -> bool {
    let stream = |r: &LogRecord| r.field("stream").map(str::to_string);
    let same_stream = stream(pending).is_some() && stream(pending) == stream(next);
    let frame_above = pending
        .message
        .lines()
        .last()
        .is_some_and(|l| l.starts_with(' ') || l.starts_with('\t'));
    same_stream
        && next.fields.len() == 1
        && next.logger.is_empty()
        && (is_stack_line(&next.message) || frame_above)
}

/// A line of a stack trace under a logged line, in any line format: indented lines (Java's
/// `\tat …`, Node's `    at …`, Python's `  File …`), Java's `Caused by: …`, Node's closing `}`.
fn is_stack_line(text: &str) -> bool {
    text.starts_with('\t')
        || text.starts_with(' ')
        || text.starts_with("Caused by: ")
        || text.starts_with("Suppressed: ")
        || text == "}"
}

/// The record `line` starts, if it starts one in `format`.
/// (`received` is when the import runs: a JSON line's time is judged plausible against it.)
fn starts_record(format: Format, line: &[u8], zone: &Zone, received: i64) -> Option<LogRecord> {
    let (text, lossy) = lossy_utf8(line);
    let mut record = match format {
        Format::Jsonl => {
            let trimmed = line.trim_ascii();
            if !trimmed.starts_with(b"{") {
                return None;
            }
            let parsed = jsonlines::parse(trimmed, "", received);
            let r = parsed.records.into_iter().next()?;
            if r.flags & LogRecord::UNPARSED != 0 {
                return None;
            }
            r
        }
        Format::JournaldJson => journald(line)?,
        Format::NginxAccess => nginx_access(&text)?,
        Format::NginxError => nginx_error(&text, zone)?,
        Format::Postgres => postgres(&text, zone)?,
        Format::Gunicorn => gunicorn(&text).or_else(|| nginx_access(&text))?,
        Format::Syslog | Format::Postfix => {
            let time = syslog_time(&text, zone, received)?;
            let rest = match text.split_once(' ') {
                Some((first, rest)) if first.len() >= 19 => rest,
                _ => text.get(16..).unwrap_or(""),
            };
            // Reuse the network parser on "HOST TAG[PID]: MSG" with a neutral priority.
            let mut r = syslog::parse_message(format!("<14>Jan  1 00:00:00 {rest}").as_bytes(), 0);
            r.time = time;
            r.level_raw.clear();
            r.fields.retain(|(k, _)| k != "facility");
            // The file is the source (as for every format); the program that logged is the
            // logger. A file line carries no priority: the level is what the message says.
            r.logger = std::mem::take(&mut r.source);
            r.level = Level::from_message_start(&r.message).unwrap_or_default();
            if r.logger.starts_with("postfix") {
                postfix_details(&mut r);
            }
            r
        }
        Format::Python => python(&text, zone)?,
        Format::Celery => celery(&text, zone)?,
        Format::Redis => redis(&text, zone)?,
        Format::ApacheError => apache_error(&text, zone)?,
        Format::Logfmt => logfmt(&text, received)?,
        Format::JournaldExport => {
            // An entry's first field; the others follow on their own lines.
            line.strip_prefix(b"__CURSOR=")?;
            LogRecord::default()
        }
    };
    record.flags |= lossy;
    Some(record)
}

/// The time at the start of a syslog file line: RFC 3339 (rsyslog's high-precision format)
/// or `Nov 21 21:10:05` in the year of the import (`received`; December's lines imported in
/// January are last year's), read in `zone`.
fn syslog_time(text: &str, zone: &Zone, received: i64) -> Option<i64> {
    if let Some((first, _)) = text.split_once(' ') {
        if first.len() >= 19 && first.as_bytes().get(4) == Some(&b'-') {
            return parse_time(first);
        }
    }
    syslog::bsd_time(text, received).map(|(t, _)| zone.local(t))
}

/// `combined`: `addr - user [21/Nov/2026:21:15:00 +0000] "GET /x HTTP/1.1" 200 123 "ref" "ua"`.
fn nginx_access(text: &str) -> Option<LogRecord> {
    let (addr, rest) = text.split_once(' ')?;
    let open = rest.find('[')?;
    let close = rest.find(']')?;
    let stamp = rest.get(open + 1..close)?;
    let format = format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    let time = OffsetDateTime::parse(stamp, &format).ok()?;
    let after = rest.get(close + 1..)?.trim_start();
    let request_end = after.strip_prefix('"')?.find('"')? + 1;
    let request = &after[1..request_end];
    let mut tail = after[request_end + 1..].split_whitespace();
    let status: u16 = tail.next()?.parse().ok()?;
    let bytes = tail.next().unwrap_or("-");
    let quoted: Vec<&str> = after[request_end + 1..]
        .split('"')
        .skip(1)
        .step_by(2)
        .collect();
    let mut parts = request.splitn(3, ' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let level = match status {
        500.. => Level::Error,
        400..=499 => Level::Warning,
        _ => Level::Info,
    };
    let mut fields = vec![
        ("remote_addr".into(), addr.into()),
        ("method".into(), method.into()),
        ("path".into(), path.into()),
        ("status".into(), status.to_string().into()),
        ("bytes".into(), bytes.into()),
    ];
    if let Some(referer) = quoted.first().filter(|r| **r != "-") {
        fields.push(("referer".into(), (*referer).into()));
    }
    if let Some(agent) = quoted.get(1) {
        fields.push(("user_agent".into(), (*agent).into()));
    }
    Some(LogRecord {
        time: vigie_core::time::saturating_ns(time.unix_timestamp_nanos()),
        level,
        message: text.into(),
        fields,
        ..LogRecord::default()
    })
}

/// `2026/11/21 21:15:00 [error] 1234#0: *5 upstream timed out …`.
fn nginx_error(text: &str, zone: &Zone) -> Option<LogRecord> {
    let stamp = text.get(..19)?;
    let format = format_description!("[year]/[month]/[day] [hour]:[minute]:[second]");
    let naive = PrimitiveDateTime::parse(stamp, &format).ok()?;
    let rest = text.get(20..)?.strip_prefix('[')?;
    let (level_raw, rest) = rest.split_once("] ")?;
    let (pid, message) = rest.split_once(": ").unwrap_or(("", rest));
    let mut fields = Vec::new();
    if let Some((pid, _)) = pid.split_once('#') {
        fields.push(("pid".into(), (*pid).into()));
    }
    let (message, connection) = match message.strip_prefix('*').and_then(|m| m.split_once(' ')) {
        Some((id, rest)) if id.bytes().all(|b| b.is_ascii_digit()) => (rest, Some(id)),
        _ => (message, None),
    };
    if let Some(id) = connection {
        fields.push(("connection".into(), id.into()));
    }
    let (message, context) = nginx_context(message);
    fields.extend(context);
    Some(LogRecord {
        time: zone.at(naive),
        level: Level::parse(level_raw).unwrap_or_default(),
        level_raw: level_raw.into(),
        message: message.into(),
        fields,
        ..LogRecord::default()
    })
}

/// The request nginx names after an error — `…, client: 1.2.3.4, server: shop, request:
/// "GET /x HTTP/1.1", upstream: "http://…", host: "shop"` — as fields, and the message before it.
fn nginx_context(message: &str) -> (&str, Vec<(Text, Text)>) {
    const KEYS: [&str; 6] = [
        "client", "server", "request", "upstream", "host", "referrer",
    ];
    let Some(start) = message.find(", client: ") else {
        return (message, Vec::new());
    };
    let mut fields = Vec::new();
    let mut rest = &message[start + 2..];
    while let Some((key, after)) = rest.split_once(": ") {
        if !KEYS.contains(&key) {
            // Not nginx's list after all: the message stays whole.
            return (message, Vec::new());
        }
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find("\"") {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => return (message, Vec::new()),
            },
            None => after.split_once(',').map_or((after, ""), |(v, n)| (v, n)),
        };
        fields.push((key.into(), value.into()));
        rest = next.trim_start_matches(',').trim_start();
        if rest.is_empty() {
            return (&message[..start], fields);
        }
    }
    (message, Vec::new())
}

/// `2026-11-21 21:15:00.123 UTC [1234] ERROR:  message` (the default `log_line_prefix`,
/// `%m [%p] `), with `user@db` or other prefixes tolerated before the level. `DETAIL:`, `HINT:`
/// and the like start no record: they join the one before (see [`Importer::line`]).
fn postgres(text: &str, zone: &Zone) -> Option<LogRecord> {
    let (date, rest) = text.split_once(' ')?;
    let (clock, rest) = rest.split_once(' ')?;
    if date.len() != 10 || date.as_bytes()[4] != b'-' {
        return None;
    }
    let (zone_name, rest) = rest.split_once(' ')?;
    let time = parse_time(&format!("{date}T{clock}"))?;
    // PostgreSQL writes its `log_timezone` as an abbreviation (CET, EST…) that names no offset
    // unambiguously: anything but UTC/GMT is read in the zone given to the import (`--tz`).
    let time = match zone_name {
        "UTC" | "GMT" | "Z" => time,
        _ => zone.local(time),
    };
    let (pid, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (pid, rest) = r.split_once(']')?;
            (Some(pid.to_string()), rest.trim_start())
        }
        None => (None, rest),
    };
    let colon = rest.find(":  ")?;
    let (head, message) = (&rest[..colon], &rest[colon + 3..]);
    let level_word = head.rsplit(' ').next()?;
    let level = match level_word {
        "LOG" | "INFO" => Level::Info,
        "NOTICE" => Level::Notice,
        "WARNING" => Level::Warning,
        "ERROR" => Level::Error,
        "FATAL" | "PANIC" => Level::Critical,
        w if w.starts_with("DEBUG") => Level::Debug,
        // DETAIL, HINT, STATEMENT, CONTEXT, …: they continue the record before.
        _ => return None,
    };
    let mut fields = Vec::new();
    if let Some(pid) = pid {
        fields.push(("pid".into(), pid.into()));
    }
    let user = head[..head.len() - level_word.len()].trim();
    if !user.is_empty() {
        fields.push(("session".into(), user.into()));
    }
    Some(LogRecord {
        time,
        level,
        level_raw: level_word.into(),
        logger: "postgres".into(),
        message: message.into(),
        fields,
        ..LogRecord::default()
    })
}

/// Joins PostgreSQL's detail lines: called by the importer for lines that start no record.
/// (They carry the same prefix, so they are recognized here by their label.)
fn postgres_detail(text: &str) -> Option<&str> {
    [
        "DETAIL:  ",
        "HINT:  ",
        "STATEMENT:  ",
        "CONTEXT:  ",
        "QUERY:  ",
        "LOCATION:  ",
    ]
    .iter()
    .find_map(|label| text.find(label).map(|at| &text[at..]))
}

/// `[2026-11-21 21:15:00 +0000] [1234] [ERROR] Worker timeout (pid:5678)`.
fn gunicorn(text: &str) -> Option<LogRecord> {
    let rest = text.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] [")?;
    let format = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    let time = OffsetDateTime::parse(stamp, &format).ok()?;
    let (pid, rest) = rest.split_once("] [")?;
    let (level_raw, message) = rest.split_once("] ")?;
    Some(LogRecord {
        time: vigie_core::time::saturating_ns(time.unix_timestamp_nanos()),
        level: Level::parse(level_raw).unwrap_or_default(),
        level_raw: level_raw.into(),
        logger: "gunicorn".into(),
        message: message.into(),
        fields: vec![("pid".into(), pid.into())],
        ..LogRecord::default()
    })
}

/// Python logging's common layouts, and the many others of the same shape (Django's,
/// logback's, Spring Boot's, Node's): a time (`2026-11-21 21:15:00,123`, ISO 8601 with `T` and
/// a zone, optionally in brackets; Django's `verbose` puts the level first), then a level name
/// and a logger name around it — `%(asctime)s %(levelname)s %(name)s: %(message)s`,
/// `… - %(name)s - %(levelname)s - …`, `[…] ERROR in module: …` (Flask), `[main] ERROR
/// com.shop.Mailer - …` (logback), `ERROR 4711 --- [main] com.shop.Mailer : …` (Spring Boot),
/// `info: …` (Node) — or no time at all: `ERROR:invoices:message` (`basicConfig`'s default),
/// and Django's server lines `[25/Nov/2026 12:18:22] "GET / HTTP/1.1" 200 2`. A thread in
/// brackets and a process id become fields.
fn python(text: &str, zone: &Zone) -> Option<LogRecord> {
    if let Some((level_raw, rest)) = text.split_once(':') {
        if let Some(level) =
            Level::parse(level_raw).filter(|_| level_raw.chars().all(|c| c.is_ascii_uppercase()))
        {
            if rest.starts_with(' ') {
                return Some(uvicorn(level, level_raw, rest.trim_start()));
            }
            let (logger, message) = rest.split_once(':')?;
            return Some(LogRecord {
                level,
                level_raw: level_raw.into(),
                logger: logger.into(),
                message: message.into(),
                ..LogRecord::default()
            });
        }
    }
    if let Some(record) = django_server(text, zone) {
        return Some(record);
    }
    // Django's `verbose`: `{levelname} {asctime} {module} {process:d} {thread:d} {message}`.
    let (level_first, body) = match text.split_once(' ') {
        Some((word, rest))
            if is_level_name(word) && rest.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            (Some(word), rest)
        }
        _ => (None, text),
    };
    let bracketed = body.starts_with('[');
    let body = body.trim_start_matches('[');
    let stamp_len = leading_stamp(body)?;
    let naive = parse_time(&body[..stamp_len])?;
    let mut rest = &body[stamp_len..];
    // A zone written after the time makes it an instant; without one it is local.
    let time = match zone_suffix(rest) {
        Some((offset, len)) => {
            rest = &rest[len..];
            naive.saturating_sub(offset)
        }
        None => zone.local(naive),
    };
    if bracketed {
        rest = rest.split_once(']').map_or(rest, |(_, r)| r);
    }
    let words = word_spans(rest);
    let mut fields = Vec::new();
    let (level_at, logger_at, message_from) = match level_first {
        Some(_) => {
            // module, then the process and thread ids.
            let logger_at = words.first().filter(|(_, w)| is_name(w)).map(|_| 0);
            let mut from = logger_at.map_or(0, |_| 1);
            for name in ["pid", "thread"] {
                match words.get(from) {
                    Some((_, w)) if w.bytes().all(|b| b.is_ascii_digit()) => {
                        fields.push((name.into(), (*w).into()));
                        from += 1;
                    }
                    _ => break,
                }
            }
            (
                None,
                logger_at,
                words.get(from).map_or(rest.len(), |(at, _)| *at),
            )
        }
        None => {
            let level_at = words.iter().take(6).position(|(_, w)| {
                let bare = w.trim_matches(|c: char| !c.is_ascii_alphabetic());
                let upper = bare.len() >= 4 && bare.chars().all(|c| c.is_ascii_uppercase());
                // Node's and others' lower-case `info:` right after the time.
                let first = words.first().is_some_and(|(_, f)| f == w) && w.ends_with(':');
                (upper || first) && Level::parse(bare).is_some()
            })?;
            let (logger_at, end) = logger_around(&words, level_at, &mut fields);
            (Some(level_at), logger_at, end)
        }
    };
    let level_raw = level_first
        .or_else(|| level_at.map(|i| words[i].1))?
        .trim_matches(|c: char| !c.is_ascii_alphabetic());
    let logger = logger_at
        .map(|i| words[i].1.trim_end_matches(':'))
        .unwrap_or("");
    let message = rest[message_from.min(rest.len())..]
        .trim_start()
        .trim_start_matches(['-', ':', '|'])
        .trim_start();
    Some(LogRecord {
        time,
        level: Level::parse(level_raw).unwrap_or_default(),
        level_raw: level_raw.into(),
        logger: logger.into(),
        message: message.into(),
        fields,
        ..LogRecord::default()
    })
}

/// The logger named next to the level at `level_at`, and where the message starts (a byte
/// offset in the text the words were taken from). After the level: a process id, `---` and a
/// `[thread]` may come first (Spring Boot); the logger is a name ending with `:`, or followed by
/// a separator (`-`, `:`, `|`), or after `in` (Flask). Before it: a name between separators
/// (`- billing - WARNING -`). A `[thread]` before the level (logback) is a field too.
fn logger_around(
    words: &[(usize, &str)],
    level_at: usize,
    fields: &mut Vec<(Text, Text)>,
) -> (Option<usize>, usize) {
    let end_of = |i: usize| words.get(i).map_or(usize::MAX, |(at, w)| at + w.len());
    let is_separator = |w: &str| matches!(w, "-" | "--" | "---" | ":" | "|");
    let thread_before = words[..level_at]
        .iter()
        .find(|(_, w)| w.starts_with('[') && w.ends_with(']') && w.len() > 2);
    if let Some((_, thread)) = thread_before {
        fields.push(("thread".into(), thread.trim_matches(['[', ']']).into()));
    }
    if words[level_at].1.ends_with(':') {
        return (None, end_of(level_at));
    }
    let mut i = level_at + 1;
    // Spring Boot: `ERROR 4711 --- [           main] com.shop.Mailer : …`.
    if let Some((_, pid)) = words
        .get(i)
        .filter(|(_, w)| w.bytes().all(|b| b.is_ascii_digit()))
    {
        fields.push(("pid".into(), (*pid).into()));
        i += 1;
    }
    if words.get(i).is_some_and(|(_, w)| *w == "---") {
        i += 1;
    }
    if words.get(i).is_some_and(|(_, w)| w.starts_with('[')) {
        let close = (i..words.len()).find(|j| words[*j].1.ends_with(']'));
        if let Some(close) = close {
            let thread: Vec<&str> = words[i..=close].iter().map(|(_, w)| *w).collect();
            let thread = thread.join(" ");
            fields.push(("thread".into(), thread.trim_matches(['[', ']', ' ']).into()));
            i = close + 1;
        }
    }
    if words.get(i).is_some_and(|(_, w)| *w == "in") {
        i += 1; // Flask: `ERROR in app: …`
    }
    match (words.get(i), words.get(i + 1)) {
        (Some((_, w)), _) if w.len() > 1 && w.ends_with(':') && is_name(&w[..w.len() - 1]) => {
            return (Some(i), end_of(i));
        }
        (Some((_, w)), Some((_, next))) if is_name(w) && is_separator(next) => {
            return (Some(i), end_of(i + 1));
        }
        _ => {}
    }
    // `- billing - WARNING - retrying`: the logger before the level.
    if level_at >= 2 && is_separator(words[level_at - 1].1) && is_name(words[level_at - 2].1) {
        return (Some(level_at - 2), end_of(level_at));
    }
    (
        None,
        words
            .get(i)
            .map_or(usize::MAX, |(at, _)| *at)
            .min(end_of(i - 1)),
    )
}

/// Words and where each starts.
fn word_spans(text: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
        if words.len() >= 16 {
            return words;
        }
    }
    if let Some(s) = start {
        words.push((s, &text[s..]));
    }
    words
}

/// A logger or module name: letters, digits, `._-$/`, with a letter.
fn is_name(word: &str) -> bool {
    !word.is_empty()
        && word.chars().any(|c| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '$' | '/'))
}

/// A level name written in capitals (`WARNING`, `INFO`), as level-first layouts write it.
fn is_level_name(word: &str) -> bool {
    word.len() >= 4 && word.chars().all(|c| c.is_ascii_uppercase()) && Level::parse(word).is_some()
}

/// The length of the time at the start of `text`: `2026-11-21 21:15:00` or with `T`, and a
/// fraction after `,` or `.` if any.
fn leading_stamp(text: &str) -> Option<usize> {
    let head = text.get(..19)?;
    let b = head.as_bytes();
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') || b[13] != b':' {
        return None;
    }
    let mut len = 19;
    let rest = text.as_bytes();
    if matches!(rest.get(19), Some(b',' | b'.')) {
        let digits = rest[20..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            len = 20 + digits;
        }
    }
    Some(len)
}

/// A zone written right after a time: `Z`, `+01:00` or `+0100`; its offset (ns) and length.
fn zone_suffix(text: &str) -> Option<(i64, usize)> {
    let b = text.as_bytes();
    match b.first()? {
        b'Z' => Some((0, 1)),
        sign @ (b'+' | b'-') => {
            let digits: Vec<i64> = b[1..]
                .iter()
                .filter(|c| **c != b':')
                .take(4)
                .take_while(|c| c.is_ascii_digit())
                .map(|c| i64::from(c - b'0'))
                .collect();
            if digits.len() != 4 {
                return None;
            }
            let len = if b.get(3) == Some(&b':') { 6 } else { 5 };
            let minutes = (digits[0] * 10 + digits[1]) * 60 + digits[2] * 10 + digits[3];
            let sign = if *sign == b'-' { -1 } else { 1 };
            Some((sign * minutes * 60_000_000_000, len))
        }
        _ => None,
    }
}

/// Django's server lines: `[25/Nov/2026 12:18:22] "GET /ok HTTP/1.1" 200 2` (`django.server`'s
/// default formatter), with the request as fields like an access log's.
fn django_server(text: &str, zone: &Zone) -> Option<LogRecord> {
    let rest = text.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] \"")?;
    let format = format_description!("[day]/[month repr:short]/[year] [hour]:[minute]:[second]");
    let naive = PrimitiveDateTime::parse(stamp, &format).ok()?;
    let (request, after) = rest.split_once('"')?;
    let mut tail = after.split_whitespace();
    let status: u16 = tail.next()?.parse().ok()?;
    let bytes = tail.next().unwrap_or("-");
    let mut parts = request.splitn(3, ' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    Some(LogRecord {
        time: zone.at(naive),
        level: status_level(status),
        logger: "django.server".into(),
        message: text.get(stamp.len() + 3..).unwrap_or(text).into(),
        fields: vec![
            ("method".into(), method.into()),
            ("path".into(), path.into()),
            ("status".into(), status.to_string().into()),
            ("bytes".into(), bytes.into()),
        ],
        ..LogRecord::default()
    })
}

/// An HTTP status as a level: 5xx error, 4xx warning, else info.
fn status_level(status: u16) -> Level {
    match status {
        500.. => Level::Error,
        400..=499 => Level::Warning,
        _ => Level::Info,
    }
}

/// Redis's log: `10753:M 25 Nov 2026 12:18:26.145 * Ready to accept connections`. The letter
/// after the process id is its role (M master, S replica, C a forked child, X sentinel); the
/// mark before the message its level (`.` debug, `-` verbose, `*` notice, `#` warning).
fn redis(text: &str, zone: &Zone) -> Option<LogRecord> {
    let (pid, rest) = text.split_once(':')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (role, rest) = rest.split_once(' ')?;
    let role = match role {
        "M" => "master",
        "S" => "replica",
        "C" => "child",
        "X" => "sentinel",
        _ => return None,
    };
    let stamp = rest.get(..24)?;
    let format = format_description!(
        "[day] [month repr:short] [year] [hour]:[minute]:[second].[subsecond digits:3]"
    );
    let naive = PrimitiveDateTime::parse(stamp, &format).ok()?;
    let (mark, message) = rest.get(25..)?.split_once(' ')?;
    let (level, level_raw) = match mark {
        "." => (Level::Debug, "debug"),
        "-" => (Level::Debug, "verbose"),
        "*" => (Level::Info, "notice"),
        "#" => (Level::Warning, "warning"),
        _ => return None,
    };
    Some(LogRecord {
        time: zone.at(naive),
        level,
        level_raw: level_raw.into(),
        logger: "redis".into(),
        message: message.into(),
        fields: vec![("pid".into(), pid.into()), ("role".into(), role.into())],
        ..LogRecord::default()
    })
}

/// Apache's error log (2.4): `[Wed Nov 25 12:18:49.682809 2026] [authz_core:error] [pid
/// 12356:tid 12390] [client 127.0.0.1:56922] AH01630: client denied …, referer: …`. The
/// module, process, thread, client, the `AH` code and the referer become fields.
fn apache_error(text: &str, zone: &Zone) -> Option<LogRecord> {
    let rest = text.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] [")?;
    let mut parts = stamp.split_whitespace();
    let (_weekday, month, day, clock, year) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let naive = PrimitiveDateTime::parse(
        &format!("{day:0>2} {month} {year} {clock}"),
        &format_description!(
            "[day] [month repr:short] [year] [hour]:[minute]:[second][optional [.[subsecond]]]"
        ),
    )
    .ok()?;
    let (module_level, mut rest) = rest.split_once("] ")?;
    let (module, level_raw) = module_level.rsplit_once(':').unwrap_or(("", module_level));
    let level = Level::parse(level_raw)
        .or_else(|| level_raw.starts_with("trace").then_some(Level::Trace))?;
    let mut fields = Vec::new();
    if !module.is_empty() {
        fields.push(("module".into(), module.into()));
    }
    while let Some(group) = rest.strip_prefix('[') {
        let Some((inside, after)) = group.split_once("] ") else {
            break;
        };
        if let Some(ids) = inside.strip_prefix("pid ") {
            let (pid, tid) = ids.split_once(":tid ").unwrap_or((ids, ""));
            fields.push(("pid".into(), (*pid).into()));
            if !tid.is_empty() {
                fields.push(("tid".into(), tid.into()));
            }
        } else if let Some(client) = inside.strip_prefix("client ") {
            fields.push(("client".into(), client.into()));
        } else {
            fields.push(("context".into(), inside.into()));
        }
        rest = after;
    }
    let mut message = rest;
    if let Some((code, said)) = message.split_once(": ") {
        if code.len() == 7
            && code.starts_with("AH")
            && code[2..].bytes().all(|b| b.is_ascii_digit())
        {
            fields.push(("code".into(), code.into()));
            message = said;
        }
    }
    if let Some((said, referer)) = message.rsplit_once(", referer: ") {
        fields.push(("referer".into(), referer.into()));
        message = said;
    }
    Some(LogRecord {
        time: zone.at(naive),
        level,
        level_raw: level_raw.into(),
        logger: "apache".into(),
        message: message.into(),
        fields,
        ..LogRecord::default()
    })
}

/// logfmt (Go's slog and logrus text output, Heroku's router, Python's logfmter): `key=value`
/// pairs, values quoted when they hold spaces. Read with the JSON lines' key names (`msg`,
/// `level`, `time`, `logger`, `exc_info` …; `at` is the level as Heroku and logfmter write it);
/// every other key is a field. At least two pairs, one of them a message, level or time.
fn logfmt(text: &str, received: i64) -> Option<LogRecord> {
    let pairs = logfmt_pairs(text)?;
    let known = [
        "msg",
        "message",
        "level",
        "lvl",
        "at",
        "time",
        "ts",
        "timestamp",
        "severity",
    ];
    if pairs.len() < 2 || !pairs.iter().any(|(k, _)| known.contains(&k.as_str())) {
        return None;
    }
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        let key = if key == "at" && Level::parse(&value).is_some() {
            "level".to_string()
        } else {
            key
        };
        map.entry(key).or_insert(Value::String(value));
    }
    let mut record = super::record_from_object(map, "", received);
    if record.time == received {
        record.time = 0; // the importer's own rule for a line without a time
    }
    Some(record)
}

/// `key=value key2="quoted \"value\""`; `None` when the text is not only pairs.
fn logfmt_pairs(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() || key.contains(char::is_whitespace) || key.contains('"') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        't' => value.push('\t'),
                        other => value.push(other),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return None;
            }
            if chars.next().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else {
            value = chars.by_ref().take_while(|c| !c.is_whitespace()).collect();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        pairs.push((key, value));
    }
    Some(pairs)
}

/// uvicorn's default log (its level name, a colon, padding, the message): `INFO:     Started
/// server process [7]` from `uvicorn.error`, and its access lines `INFO:     127.0.0.1:5000 -
/// "GET /x HTTP/1.1" 500 Internal Server Error` from `uvicorn.access`, with the request as fields.
fn uvicorn(level: Level, level_raw: &str, message: &str) -> LogRecord {
    let access = (|| {
        let (client, rest) = message.split_once(" - \"")?;
        let (request, status) = rest.split_once("\" ")?;
        let (method, rest) = request.split_once(' ')?;
        let path = rest.rsplit_once(' ').map_or(rest, |(path, _)| path);
        let code = status
            .split(' ')
            .next()
            .filter(|c| c.parse::<u16>().is_ok())?;
        let client = client.rsplit_once(':').map_or(client, |(addr, _)| addr);
        Some(vec![
            ("remote_addr".into(), client.into()),
            ("method".into(), method.into()),
            ("path".into(), path.into()),
            ("status".into(), code.into()),
        ])
    })();
    LogRecord {
        level,
        level_raw: level_raw.into(),
        logger: if access.is_some() {
            "uvicorn.access"
        } else {
            "uvicorn.error"
        }
        .into(),
        message: message.into(),
        fields: access.unwrap_or_default(),
        ..LogRecord::default()
    }
}

/// A Celery worker's or beat's log file (`--logfile`): `[2026-11-25 11:43:28,817:
/// INFO/ForkPoolWorker-1] message`. A task's lines — `app.send_invoice[<task id>]: message` from
/// its task logger, `Task app.send_invoice[<task id>] succeeded in …` from the worker — name the
/// task: its name is the logger and its id the job, so they show on the task's page. Other lines
/// are the worker's (`celery`); the process is a field. Tracebacks join the line above them.
fn celery(text: &str, zone: &Zone) -> Option<LogRecord> {
    let body = text.strip_prefix('[')?;
    let (head, message) = body.split_once("] ")?;
    let (stamp, rest) = head.split_once(": ")?;
    let (level_raw, process) = rest.split_once('/')?;
    let level = Level::parse(level_raw)?;
    let time = zone.local(parse_time(stamp)?);
    let task = |text: &str| -> Option<(String, String)> {
        let text = text.strip_prefix("Task ").unwrap_or(text);
        let (name, rest) = text.split_once('[')?;
        let (id, _) = rest.split_once(']')?;
        let is_id = id.len() >= 8 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        (is_id && !name.is_empty() && !name.contains(' ')).then(|| (name.into(), id.into()))
    };
    let (logger, job_id, message) = match task(message) {
        // The task logger's prefix says nothing the logger and job do not.
        Some((name, id)) => match message.split_once("]: ") {
            Some((_, said)) if !message.starts_with("Task ") => (name, id, said),
            _ => (name, id, message),
        },
        None => ("celery".into(), String::new(), message),
    };
    Some(LogRecord {
        time,
        level,
        level_raw: level_raw.into(),
        logger: logger.into(),
        message: message.into(),
        job_id: job_id.into(),
        fields: vec![("process".into(), process.into())],
        ..LogRecord::default()
    })
}

/// `journalctl -o json`: one object per line with `MESSAGE`, `PRIORITY`,
/// `__REALTIME_TIMESTAMP` (µs), `SYSLOG_IDENTIFIER` / `_SYSTEMD_UNIT`, `_HOSTNAME`, `_PID`.
fn journald(line: &[u8]) -> Option<LogRecord> {
    let Value::Object(map) = serde_json::from_slice::<Value>(line.trim_ascii()).ok()? else {
        return None;
    };
    journald_entry(&map)
}

/// An entry of `journalctl -o export` whose fields were read (see `Importer::export_field`):
/// the same fields as its JSON form. An entry without a time keeps the import's.
fn journald_export(entry: LogRecord, file_source: &str) -> LogRecord {
    let map: serde_json::Map<String, Value> = entry
        .fields
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    match journald_entry(&map) {
        Some(record) => record,
        None => LogRecord {
            source: file_source.into(),
            message: entry.field("MESSAGE").unwrap_or_default().into(),
            ..entry
        },
    }
}

/// A journal entry's fields as a record.
fn journald_entry(map: &serde_json::Map<String, Value>) -> Option<LogRecord> {
    map.get("__REALTIME_TIMESTAMP")?;
    let text = |k: &str| map.get(k).map(value_text);
    let message = match map.get("MESSAGE") {
        // Binary messages come as arrays of byte values.
        Some(Value::Array(bytes)) => {
            let raw: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64())
                .map(|b| b as u8)
                .collect();
            lossy_utf8(&raw).0
        }
        Some(v) => value_text(v),
        None => String::new(),
    };
    let micros: i64 = text("__REALTIME_TIMESTAMP")?.parse().ok()?;
    let priority: u8 = text("PRIORITY").and_then(|p| p.parse().ok()).unwrap_or(6);
    let source = text("SYSLOG_IDENTIFIER")
        .or_else(|| text("_SYSTEMD_UNIT"))
        .or_else(|| text("_COMM"))
        .unwrap_or_else(|| "journald".into());
    let mut fields = Vec::new();
    for (name, key) in [
        ("host", "_HOSTNAME"),
        ("pid", "_PID"),
        ("unit", "_SYSTEMD_UNIT"),
    ] {
        if let Some(v) = text(key) {
            fields.push((name.into(), v.into()));
        }
    }
    Some(LogRecord {
        time: micros.saturating_mul(1000),
        source: source.into(),
        level: Level::from_syslog(priority),
        message: message.into(),
        fields,
        ..LogRecord::default()
    })
}

/// Postfix lines: the queue id, recipient and delivery status become fields; deferred mail is
/// a warning, bounced mail an error, as are Postfix's own `warning:`/`error:`/`fatal:` lines.
fn postfix_details(record: &mut LogRecord) {
    let message = record.message.clone();
    let mut body = message.as_str();
    if let Some((queue_id, rest)) = body.split_once(": ") {
        if queue_id.len() >= 5 && queue_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            record.fields.push(("queue_id".into(), queue_id.into()));
            body = rest;
        }
    }
    for part in body.split(", ") {
        if let Some((key, value)) = part.split_once('=') {
            if matches!(key, "to" | "from" | "relay" | "status" | "dsn") {
                let value = value.split(' ').next().unwrap_or(value);
                record
                    .fields
                    .push((key.into(), value.trim_matches(['<', '>']).into()));
            }
        }
    }
    record.level = match record.field("status") {
        Some("bounced") => Level::Error,
        Some("deferred") => Level::Warning,
        _ if body.starts_with("fatal:") || body.starts_with("panic:") => Level::Critical,
        _ if body.starts_with("error:") => Level::Error,
        _ if body.starts_with("warning:") => Level::Warning,
        _ => record.level,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn import(format: Format, text: &str) -> Vec<LogRecord> {
        let mut importer = Importer::new(format, "file", Zone::utc(), NOW);
        let mut out: Vec<LogRecord> = text
            .lines()
            .filter_map(|l| importer.line(l.as_bytes()))
            .collect();
        out.extend(importer.finish());
        out
    }

    #[test]
    fn nginx_access_and_error() {
        let r = import(
            Format::NginxAccess,
            r#"10.0.0.1 - - [21/Nov/2026:22:15:00 +0100] "POST /api/send HTTP/1.1" 502 157 "-" "curl/8""#,
        );
        assert_eq!(r[0].time, 1_795_295_700_000_000_000);
        assert_eq!(r[0].level, Level::Error);
        assert_eq!(r[0].field("path"), Some("/api/send"));
        assert_eq!(r[0].field("user_agent"), Some("curl/8"));
        assert_eq!(r[0].source, "file");
        let r = import(
            Format::NginxError,
            "2026/11/21 21:15:00 [error] 31#0: *9 upstream timed out\nnot a line",
        );
        assert_eq!(
            (r[0].level, r[0].message.as_str()),
            (Level::Error, "upstream timed out")
        );
        assert_eq!(r[0].field("pid"), Some("31"));
        assert_eq!(r[0].field("connection"), Some("9"));
        assert_eq!(r[1].flags, LogRecord::UNPARSED, "kept, not dropped");
    }

    #[test]
    fn python_tracebacks_stay_one_record() {
        let text = "2026-11-21 21:15:00,250 ERROR invoices.send: smtp failed\nTraceback (most recent call last):\n  File \"send.py\", line 3, in <module>\nsmtplib.SMTPDataError: (421, b'too many messages')\n2026-11-21 21:15:01,000 - billing - WARNING - retrying\nERROR:root:bare config";
        let r = import(Format::Python, text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].logger, "invoices.send");
        assert_eq!(r[0].level, Level::Error);
        assert_eq!(r[0].time, 1_795_295_700_250_000_000);
        assert!(r[0].message.starts_with("smtp failed\nTraceback"));
        assert!(r[0].message.ends_with("too many messages')"));
        assert_eq!(
            (r[1].logger.as_str(), r[1].level),
            ("billing", Level::Warning)
        );
        assert_eq!(r[1].message, "retrying");
        assert_eq!(
            (r[2].logger.as_str(), r[2].message.as_str()),
            ("root", "bare config")
        );
    }

    #[test]
    fn postgres_joins_detail_lines() {
        let text = "2026-11-21 21:15:00.123 UTC [4242] ERROR:  duplicate key value violates unique constraint \"invoices_pkey\"\n2026-11-21 21:15:00.123 UTC [4242] DETAIL:  Key (id)=(7) already exists.\n2026-11-21 21:15:00.123 UTC [4242] STATEMENT:  INSERT INTO invoices VALUES (7)\n\tcontinued\n2026-11-21 21:15:01.000 UTC [4243] LOG:  checkpoint starting: time";
        let r = import(Format::Postgres, text);
        assert_eq!(r.len(), 2, "{r:#?}");
        assert_eq!(r[0].level, Level::Error);
        assert!(r[0]
            .message
            .contains("\nDETAIL:  Key (id)=(7) already exists."));
        assert!(r[0].message.contains("\nSTATEMENT:  INSERT"));
        assert!(r[0].message.ends_with("\tcontinued"));
        assert_eq!(r[1].level, Level::Info);
    }

    #[test]
    fn postgres_zone_names_other_than_utc_are_read_in_the_import_zone() {
        let one_hour_east = || Zone::new(|t| t - 3_600_000_000_000);
        let mut importer = Importer::new(Format::Postgres, "pg", one_hour_east(), NOW);
        let mut out = Vec::new();
        for line in [
            "2026-11-21 22:15:00.000 CET [1] LOG:  local",
            "2026-11-21 22:15:00.000 UTC [1] LOG:  utc",
        ] {
            out.extend(importer.line(line.as_bytes()));
        }
        out.extend(importer.finish());
        let at = |s: &str| parse_time(s).unwrap();
        assert_eq!(out[0].time, at("2026-11-21T21:15:00Z"));
        assert_eq!(out[1].time, at("2026-11-21T22:15:00Z"));
    }

    #[test]
    fn syslog_postfix_journald_gunicorn() {
        let r = import(Format::Postfix, "Nov 21 21:10:05 mail postfix/smtp[991]: 4F9D21C2: to=<a@b.org>, relay=mx[1.2.3.4]:25, delay=1, status=deferred (host said: 421 too many messages)");
        assert_eq!(r[0].source, "file", "the file is the source");
        assert_eq!(r[0].logger, "postfix/smtp", "the program, its logger");
        assert_eq!(r[0].level, Level::Warning);
        assert_eq!(r[0].field("queue_id"), Some("4F9D21C2"));
        assert_eq!(r[0].field("to"), Some("a@b.org"));
        assert_eq!(r[0].field("host"), Some("mail"));
        let r = import(
            Format::JournaldJson,
            r#"{"__REALTIME_TIMESTAMP":"1795295700000000","PRIORITY":"3","MESSAGE":"worker killed","SYSLOG_IDENTIFIER":"kernel","_HOSTNAME":"web-1"}"#,
        );
        assert_eq!((r[0].source.as_str(), r[0].level), ("kernel", Level::Error));
        assert_eq!(r[0].time, 1_795_295_700_000_000_000);
        let r = import(
            Format::Gunicorn,
            "[2026-11-21 21:15:00 +0000] [77] [CRITICAL] WORKER TIMEOUT (pid:78)",
        );
        assert_eq!(
            (r[0].level, r[0].field("pid")),
            (Level::Critical, Some("77"))
        );
    }

    #[test]
    fn journald_export_binary_fields_with_line_breaks_and_lying_lengths() {
        let mut text =
            b"__CURSOR=a\n__REALTIME_TIMESTAMP=1795295700000000\nPRIORITY=3\nMESSAGE\n".to_vec();
        let message = b"first\nsecond";
        text.extend_from_slice(&(message.len() as u64).to_le_bytes());
        text.extend_from_slice(message);
        text.extend_from_slice(b"\nSYSLOG_IDENTIFIER=app\n\n");
        // A length far past the data: what follows is read as its bytes, kept up to the
        // message limit, and the file still ends in a record.
        text.extend_from_slice(b"__CURSOR=b\n__REALTIME_TIMESTAMP=1795295701000000\nMESSAGE\n");
        text.extend_from_slice(&u64::MAX.to_le_bytes());
        for _ in 0..20_000 {
            text.extend_from_slice(b"0123456789\n");
        }
        let mut importer = Importer::new(Format::JournaldExport, "j", Zone::utc(), NOW);
        let mut out: Vec<LogRecord> = text
            .split(|b| *b == b'\n')
            .filter_map(|l| importer.line(l))
            .collect();
        out.extend(importer.finish());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].message, "first\nsecond");
        assert_eq!(
            (out[0].source.as_str(), out[0].level),
            ("app", Level::Error)
        );
        assert_eq!(out[0].time, 1_795_295_700_000_000_000);
        assert_eq!(out[1].time, 1_795_295_701_000_000_000);
        assert!(
            out[1].message.is_empty(),
            "the unfinished field is not made up"
        );
    }

    #[test]
    fn logfmt_pairs_and_lines_that_are_not_logfmt() {
        let r = import(
            Format::Logfmt,
            r#"time=2026-11-21T21:15:00Z level=warn msg="smtp \"slow\"" took=2.3s"#,
        );
        assert_eq!(
            (r[0].level, r[0].message.as_str()),
            (Level::Warning, r#"smtp "slow""#)
        );
        assert_eq!(r[0].time, 1_795_295_700_000_000_000);
        assert_eq!(r[0].field("took"), Some("2.3s"));
        for line in ["just words here", "a=1", r#"msg="unclosed"#, "k=v x"] {
            assert_eq!(
                import(Format::Logfmt, line)[0].flags,
                LogRecord::UNPARSED,
                "{line}"
            );
        }
    }

    #[test]
    fn a_record_continued_without_end_stays_within_the_message_limit() {
        let mut importer = Importer::new(Format::Python, "f", Zone::utc(), NOW);
        assert!(importer
            .line(b"2026-11-21 21:15:00,000 ERROR app: the start")
            .is_none());
        let line = vec![b'x'; 1000];
        for _ in 0..20_000 {
            // 20 MB of lines that all continue the first record.
            assert!(importer.line(&line).is_none());
            let held = importer.pending.as_ref().map_or(0, |r| r.message.len());
            assert!(held <= MAX_MESSAGE_BYTES + 1000, "{held} bytes held");
        }
        let record = importer.finish().unwrap();
        assert!(record.message.starts_with("the start\nxxx"));
        assert_ne!(record.flags & LogRecord::TRUNCATED, 0);
        assert!(record.message.len() <= MAX_MESSAGE_BYTES + 32);
    }

    #[test]
    fn detection() {
        let detect = |text: &str| {
            let lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
            Format::detect(&lines)
        };
        assert_eq!(
            detect(r#"1.2.3.4 - - [21/Nov/2026:22:15:00 +0100] "GET / HTTP/1.1" 200 5 "-" "x""#),
            Some(Format::NginxAccess)
        );
        assert_eq!(
            detect("2026-11-21 21:15:00.123 UTC [1] LOG:  x"),
            Some(Format::Postgres)
        );
        assert_eq!(
            detect(r#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":"x"}"#),
            Some(Format::JournaldJson)
        );
        assert_eq!(detect(r#"{"event":"x"}"#), Some(Format::Jsonl));
        assert_eq!(detect("Nov 21 21:10:05 h sshd[1]: x"), Some(Format::Syslog));
        assert_eq!(
            detect("2026-11-21 21:15:00,250 INFO app: x"),
            Some(Format::Python)
        );
        assert_eq!(detect("nothing recognizable"), None);
    }
}
