//! Lines of existing log files, for `vigie import`: nginx, PostgreSQL, Postfix, syslog,
//! journald's JSON export, Python logging, gunicorn and JSON lines.
//!
//! An [`Importer`] takes a file's lines one by one and returns finished records. Formats whose
//! records span lines join them: a Python traceback's lines follow the line that logged it,
//! and PostgreSQL's `DETAIL:`, `HINT:`, `STATEMENT:`, `CONTEXT:` lines and tab-indented
//! continuations follow their statement. A line that belongs to no record and matches no
//! pattern is kept whole as an `UNPARSED` record: an import never drops a line.
//!
//! [`Format::detect`] picks the format from a file's first lines: the one that reads most of
//! them. Times without a zone (Python, nginx error log, syslog) are read in the [`Zone`] given.

use super::{jsonlines, parse_time, syslog, unparsed, value_text};
use serde_json::Value;
use std::sync::Arc;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use vigie_core::log::{lossy_utf8, LogRecord};
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
}

impl Format {
    /// In order of preference when two formats read a sample equally well.
    pub const ALL: [Format; 10] = [
        Format::JournaldJson,
        Format::Jsonl,
        Format::NginxAccess,
        Format::NginxError,
        Format::Postgres,
        Format::Celery,
        Format::Gunicorn,
        Format::Syslog,
        Format::Postfix,
        Format::Python,
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
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
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
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.began = false;
        if line.trim_ascii().is_empty() {
            return None;
        }
        self.began = true;
        if let Some(mut record) = starts_record(self.format, line, &self.zone, self.received) {
            record.received = self.received;
            if record.time == 0 {
                record.time = self.received; // the line says no time
            }
            if record.source.is_empty() {
                record.source.clone_from(&self.source);
            }
            return self.pending.replace(record).map(finish);
        }
        let (text, lossy) = lossy_utf8(line);
        if let Some(pending) = self.pending.as_mut() {
            if let Some(more) = continuation(self.format, &text) {
                pending.message.push('\n');
                pending.message.push_str(more);
                pending.flags |= lossy;
                self.began = false;
                return None;
            }
        }
        let raw = unparsed(line, &self.source, self.received);
        self.pending.replace(raw).map(finish)
    }

    /// The file ended: the record still being built, if any.
    pub fn finish(&mut self) -> Option<LogRecord> {
        self.pending.take().map(finish)
    }
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
        _ => None,
    }
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
        ("remote_addr".to_string(), addr.to_string()),
        ("method".into(), method.into()),
        ("path".into(), path.into()),
        ("status".into(), status.to_string()),
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
        message: text.to_string(),
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
        fields.push(("pid".into(), pid.to_string()));
    }
    let (message, connection) = match message.strip_prefix('*').and_then(|m| m.split_once(' ')) {
        Some((id, rest)) if id.bytes().all(|b| b.is_ascii_digit()) => (rest, Some(id)),
        _ => (message, None),
    };
    if let Some(id) = connection {
        fields.push(("connection".into(), id.to_string()));
    }
    let (message, context) = nginx_context(message);
    fields.extend(context);
    Some(LogRecord {
        time: zone.local(vigie_core::time::saturating_ns(
            naive.assume_utc().unix_timestamp_nanos(),
        )),
        level: Level::parse(level_raw).unwrap_or_default(),
        level_raw: level_raw.to_string(),
        message: message.to_string(),
        fields,
        ..LogRecord::default()
    })
}

/// The request nginx names after an error — `…, client: 1.2.3.4, server: shop, request:
/// "GET /x HTTP/1.1", upstream: "http://…", host: "shop"` — as fields, and the message before it.
fn nginx_context(message: &str) -> (&str, Vec<(String, String)>) {
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
        fields.push((key.to_string(), value.to_string()));
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
        fields.push(("pid".to_string(), pid));
    }
    let user = head[..head.len() - level_word.len()].trim();
    if !user.is_empty() {
        fields.push(("session".into(), user.into()));
    }
    Some(LogRecord {
        time,
        level,
        level_raw: level_word.to_string(),
        logger: "postgres".into(),
        message: message.to_string(),
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
        level_raw: level_raw.to_string(),
        logger: "gunicorn".into(),
        message: message.to_string(),
        fields: vec![("pid".into(), pid.to_string())],
        ..LogRecord::default()
    })
}

/// Python logging's common layouts: a leading time (`2026-11-21 21:15:00,123`, optionally in
/// brackets), then within the next few words a level name, and a logger name around it —
/// `%(asctime)s %(levelname)s %(name)s: %(message)s`, `… - %(name)s - %(levelname)s - …`,
/// `[…] ERROR in module: …` (Flask) — or no time at all: `ERROR:invoices:message`
/// (`basicConfig`'s default).
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
                level_raw: level_raw.to_string(),
                logger: logger.to_string(),
                message: message.to_string(),
                ..LogRecord::default()
            });
        }
    }
    let bracketed = text.starts_with('[');
    let body = text.trim_start_matches('[');
    let stamp = body
        .get(..23)
        .filter(|s| s.as_bytes().get(4) == Some(&b'-'))
        .or_else(|| body.get(..19))?;
    let naive = parse_time(stamp)?;
    let mut rest = body.get(stamp.len()..)?;
    if bracketed {
        rest = rest.split_once(']').map_or(rest, |(_, r)| r);
    }
    let words: Vec<&str> = rest.split_whitespace().take(6).collect();
    let level_at = words.iter().position(|w| {
        let w = w.trim_matches(|c: char| !c.is_ascii_alphabetic());
        w.len() >= 4 && w.chars().all(|c| c.is_ascii_uppercase()) && Level::parse(w).is_some()
    })?;
    let level_raw = words[level_at].trim_matches(|c: char| !c.is_ascii_alphabetic());
    // The logger: the first word after the time that is not the level or a separator.
    let logger = words
        .iter()
        .enumerate()
        .filter(|(i, w)| *i != level_at && **w != "-" && **w != "in" && **w != "|")
        .map(|(_, w)| w.trim_matches(|c: char| c == ':' || c == '[' || c == ']'))
        .find(|w| {
            !w.is_empty()
                && (w.contains('.') || w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        })
        .unwrap_or("");
    // The message: after the header words (level, logger, separators and a trailing `:`).
    let mut message = rest.trim_start();
    for _ in 0..6 {
        let Some((word, after)) = message.split_once(' ') else {
            break;
        };
        let bare = word.trim_matches(|c: char| c == ':' || c == '[' || c == ']');
        if bare == level_raw || bare == logger || word == "-" || word == "in" || word == "|" {
            message = after.trim_start();
        } else {
            break;
        }
    }
    Some(LogRecord {
        time: zone.local(naive),
        level: Level::parse(level_raw).unwrap_or_default(),
        level_raw: level_raw.to_string(),
        logger: logger.to_string(),
        message: message.to_string(),
        ..LogRecord::default()
    })
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
            ("remote_addr".to_string(), client.to_string()),
            ("method".into(), method.into()),
            ("path".into(), path.into()),
            ("status".into(), code.into()),
        ])
    })();
    LogRecord {
        level,
        level_raw: level_raw.to_string(),
        logger: if access.is_some() {
            "uvicorn.access"
        } else {
            "uvicorn.error"
        }
        .into(),
        message: message.to_string(),
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
        level_raw: level_raw.to_string(),
        logger,
        message: message.to_string(),
        job_id,
        fields: vec![("process".into(), process.to_string())],
        ..LogRecord::default()
    })
}

/// `journalctl -o json`: one object per line with `MESSAGE`, `PRIORITY`,
/// `__REALTIME_TIMESTAMP` (µs), `SYSLOG_IDENTIFIER` / `_SYSTEMD_UNIT`, `_HOSTNAME`, `_PID`.
fn journald(line: &[u8]) -> Option<LogRecord> {
    let Value::Object(map) = serde_json::from_slice::<Value>(line.trim_ascii()).ok()? else {
        return None;
    };
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
            fields.push((name.to_string(), v));
        }
    }
    Some(LogRecord {
        time: micros.saturating_mul(1000),
        source,
        level: Level::from_syslog(priority),
        message,
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
