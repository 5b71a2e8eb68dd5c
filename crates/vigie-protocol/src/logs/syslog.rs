//! Syslog: RFC 5424 and RFC 3164 messages, and how they are framed on a TCP stream.
//!
//! Senders vary more than the RFCs suggest, so the parser is forgiving, in this order:
//!
//! ```text
//! <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG     RFC 5424 (rsyslog, syslog-ng)
//! <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG             RFC 3164 (BSD syslog, rsyslog forwarding)
//! <PRI>TAG: MSG  /  <PRI>MSG                          Python's logging.handlers.SysLogHandler
//! ```
//!
//! The priority's severity becomes the level; the app name or tag becomes the source (else
//! `syslog`); host, process id and message id become fields, and RFC 5424 structured data
//! becomes fields named `ID.PARAM`. A line without a `<PRI>` is kept whole as `UNPARSED`.
//! RFC 3164 timestamps have no year and no zone: the year is the one of `received` and the
//! time is read as UTC.
//!
//! rsyslog's `#012` escapes (a line break it received) are turned back into line breaks.
//!
//! On TCP, a frame is either octet-counted (`LEN SP MSG`, RFC 6587) or ends at LF or NUL;
//! [`Framer`] tells them apart per frame. Python's `SysLogHandler` ends each message with NUL
//! and sends a traceback's line breaks as they are: once a connection has ended a message with
//! NUL, its line feeds are part of messages, not ends. Before that, a line feed ends a frame
//! only when the next frame starts after it (`<PRI>` or a length) or nothing follows yet, so
//! the first such message is kept whole too (unless the stream is cut right after one of its
//! line feeds).

use super::{parse_time, unparsed};
use time::{Month, OffsetDateTime};
use vigie_core::log::{lossy_utf8, LogRecord, Text};
use vigie_core::Level;

/// The largest frame accepted on TCP; longer frames are cut here.
pub const MAX_FRAME: usize = 256 * 1024;

/// Parses one syslog message (a UDP datagram or a TCP frame).
pub fn parse(bytes: &[u8], received: i64) -> LogRecord {
    let mut record = parse_message(bytes, received);
    if record.source.is_empty() {
        record.source = "syslog".into();
    }
    record
}

/// [`parse`], leaving the source empty when the message names no program.
pub(crate) fn parse_message(bytes: &[u8], received: i64) -> LogRecord {
    let bytes = bytes.trim_ascii_end();
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes).trim_ascii_end();
    let (text, lossy) = lossy_utf8(bytes);
    let Some((pri, rest)) = priority(&text) else {
        return unparsed(bytes, "syslog", received);
    };
    let mut record = LogRecord {
        time: received,
        received,
        level: Level::from_syslog((pri % 8) as u8),
        level_raw: format!("<{pri}>").into(),
        flags: lossy,
        ..LogRecord::default()
    };
    record
        .fields
        .push(("facility".into(), facility(pri / 8).into()));
    if let Some(rest) = rest.strip_prefix("1 ") {
        rfc5424(rest, &mut record);
    } else {
        rfc3164(rest, received, &mut record);
    }
    if let Some(unescaped) = unescape_line_breaks(&record.message) {
        record.message = unescaped.into();
    }
    record.truncate_message();
    record
}

/// rsyslog writes the control characters of a message as `#` and three octal digits (its
/// default `EscapeControlCharactersOnReceive`), so a traceback sent through it arrives as one
/// line with `#012` where its line breaks were. Line feeds and tabs come back; other escapes
/// stay as written. `None` when there is nothing to unescape. (A message that holds `#012`
/// literally — "order #012" — loses it to a line break: rsyslog left no way to tell.)
pub(crate) fn unescape_line_breaks(message: &str) -> Option<String> {
    if !message.contains("#01") {
        return None;
    }
    Some(message.replace("#012", "\n").replace("#011", "\t"))
}

fn priority(text: &str) -> Option<(u32, &str)> {
    let rest = text.strip_prefix('<')?;
    let end = rest.find('>')?;
    let pri: u32 = rest[..end].parse().ok()?;
    (end <= 3 && pri < 192).then(|| (pri, &rest[end + 1..]))
}

fn facility(code: u32) -> &'static str {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    NAMES.get(code as usize).copied().unwrap_or("unknown")
}

fn nil(value: &str) -> Option<&str> {
    (value != "-" && !value.is_empty()).then_some(value)
}

fn rfc5424(rest: &str, record: &mut LogRecord) {
    let mut parts = rest.splitn(6, ' ');
    let (time, host, app, procid, msgid) = (
        parts.next().unwrap_or("-"),
        parts.next().unwrap_or("-"),
        parts.next().unwrap_or("-"),
        parts.next().unwrap_or("-"),
        parts.next().unwrap_or("-"),
    );
    let after = parts.next().unwrap_or("");
    if let Some(t) = nil(time).and_then(parse_time) {
        record.time = t;
    }
    record.source = nil(app).unwrap_or_default().into();
    for (name, value) in [("host", host), ("pid", procid), ("msgid", msgid)] {
        if let Some(v) = nil(value) {
            record.fields.push((name.into(), v.into()));
        }
    }
    let message = structured_data(after, &mut record.fields);
    let message = message.trim_start_matches('\u{feff}');
    // rsyslog's forwarding templates put a space before the message it keeps from the tag.
    record.message = message.strip_prefix(' ').unwrap_or(message).into();
}

/// Reads `[id k="v" …]…` into fields; returns the message after it.
fn structured_data<'a>(text: &'a str, fields: &mut Vec<(Text, Text)>) -> &'a str {
    if let Some(rest) = text.strip_prefix("- ") {
        return rest;
    }
    if text == "-" {
        return "";
    }
    let mut rest = text;
    while let Some(element) = rest.strip_prefix('[') {
        let (id, mut params) = element.split_at(element.find([' ', ']']).unwrap_or(element.len()));
        loop {
            params = params.trim_start_matches(' ');
            if let Some(after) = params.strip_prefix(']') {
                rest = after;
                break;
            }
            let Some(eq) = params.find("=\"") else {
                return text;
            };
            let name = &params[..eq];
            let mut value = String::new();
            let mut chars = params[eq + 2..].char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(eq + 2 + i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let Some(end) = end else { return text };
            fields.push((format!("{id}.{name}").into(), value.into()));
            params = &params[end..];
        }
    }
    rest.strip_prefix(' ').unwrap_or(rest)
}

fn rfc3164(rest: &str, received: i64, record: &mut LogRecord) {
    let mut rest = rest;
    if let Some((time, after)) = bsd_time(rest, received) {
        record.time = time;
        rest = after;
        // A hostname follows the timestamp, unless the sender skipped it (`TAG:` comes next,
        // or the message itself: Python's handler without a tag sends `ERROR app: …`, which
        // rsyslog then writes with the level where the host goes).
        if let Some((host, after)) = rest.split_once(' ') {
            let level_word = host.len() >= 4
                && host.bytes().all(|b| b.is_ascii_uppercase())
                && Level::parse(host).is_some();
            if !host.ends_with(':') && !host.contains('[') && !level_word {
                record.fields.push(("host".into(), host.into()));
                rest = after;
            }
        }
    }
    // `TAG[PID]: message` or `TAG: message`, the tag being a short run without spaces.
    if let Some((tag, message)) = rest.split_once(": ") {
        if !tag.is_empty() && tag.len() <= 64 && !tag.contains(' ') {
            let (name, pid) = match tag.split_once('[') {
                Some((name, pid)) => (name, pid.strip_suffix(']')),
                None => (tag, None),
            };
            record.source = name.into();
            if let Some(pid) = pid {
                record.fields.push(("pid".into(), pid.into()));
            }
            record.message = message.into();
            return;
        }
    }
    record.message = rest.into();
}

/// `Mmm dd hh:mm:ss ` (day space-padded), in the year of `received` (the year before when
/// that would put it more than a day after `received`).
pub(crate) fn bsd_time(text: &str, received: i64) -> Option<(i64, &str)> {
    let stamp = text.get(..15)?;
    let month = match stamp.get(..3)? {
        "Jan" => Month::January,
        "Feb" => Month::February,
        "Mar" => Month::March,
        "Apr" => Month::April,
        "May" => Month::May,
        "Jun" => Month::June,
        "Jul" => Month::July,
        "Aug" => Month::August,
        "Sep" => Month::September,
        "Oct" => Month::October,
        "Nov" => Month::November,
        "Dec" => Month::December,
        _ => return None,
    };
    let day: u8 = stamp.get(4..6)?.trim().parse().ok()?;
    let hour: u8 = stamp.get(7..9)?.parse().ok()?;
    let minute: u8 = stamp.get(10..12)?.parse().ok()?;
    let second: u8 = stamp.get(13..15)?.parse().ok()?;
    let year = OffsetDateTime::from_unix_timestamp_nanos(i128::from(received))
        .ok()?
        .year();
    // A date more than a day ahead of its arrival is last year's: December's lines read in
    // January (a file imported, or a message a day late at new year).
    let at = |year| {
        let date = time::Date::from_calendar_date(year, month, day).ok()?;
        Some(date.with_hms(hour, minute, second).ok()?.assume_utc())
    };
    let t = at(year)?;
    let ahead = t.unix_timestamp_nanos() - i128::from(received);
    let t = if ahead > i128::from(vigie_core::time::MAX_AHEAD_NS) {
        at(year - 1)?
    } else {
        t
    };
    let rest = text.get(15..)?.strip_prefix(' ').unwrap_or(&text[15..]);
    Some((
        vigie_core::time::saturating_ns(t.unix_timestamp_nanos()),
        rest,
    ))
}

/// Whether the message at the start of `rest` ends with NUL rather than LF: a NUL comes before
/// the end of the buffer, followed by nothing or by the next message's `<PRI>` (a stray NUL
/// inside a line-framed message does not switch the connection).
fn ends_with_nul(rest: &[u8]) -> bool {
    let Some(nul) = rest.iter().position(|b| *b == 0) else {
        return false;
    };
    let starts_message = |after: &[u8]| after.is_empty() || after.starts_with(b"<");
    rest[..nul].starts_with(b"<") && starts_message(&rest[nul + 1..])
}

/// Splits a TCP byte stream into syslog frames, octet-counted or LF/NUL-terminated.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// The sender ends messages with NUL: a line feed is part of a message.
    nul_terminated: bool,
}

impl Framer {
    /// Adds bytes read from the stream; calls `frame` with every complete frame.
    pub fn push(&mut self, data: &[u8], mut frame: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let Some(first) = rest.first() else { break };
            if first.is_ascii_digit() {
                // Octet counting: "123 <PRI>…". Only when digits are followed by a space.
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                if digits < rest.len() && rest[digits] == b' ' && digits <= 6 {
                    let len: usize = std::str::from_utf8(&rest[..digits])
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(0);
                    let len = len.min(MAX_FRAME);
                    if rest.len() < digits + 1 + len {
                        break;
                    }
                    frame(&rest[digits + 1..digits + 1 + len]);
                    start += digits + 1 + len;
                    continue;
                }
                if digits == rest.len() {
                    break; // the length is still arriving
                }
            }
            if !self.nul_terminated {
                self.nul_terminated = ends_with_nul(rest);
            }
            let nul_terminated = self.nul_terminated;
            // A line feed ends a frame when the next one starts (`<PRI>` or a length) or when
            // nothing follows yet; one followed by anything else is inside a message whose end
            // is still to come (a NUL-terminated traceback whose NUL has not arrived).
            let ends_here = |i: usize| match rest[i] {
                0 => true,
                b'\n' if !nul_terminated => rest
                    .get(i + 1)
                    .is_none_or(|next| *next == b'<' || next.is_ascii_digit()),
                _ => false,
            };
            match (0..rest.len()).find(|i| ends_here(*i)) {
                Some(end) => {
                    if end > 0 {
                        frame(&rest[..end]);
                    }
                    start += end + 1;
                }
                None if rest.len() >= MAX_FRAME => {
                    frame(&rest[..MAX_FRAME]);
                    start += MAX_FRAME;
                }
                None => break,
            }
        }
        self.buf.drain(..start);
    }

    /// The stream ended: whatever is left is the last frame.
    pub fn finish(&mut self, mut frame: impl FnMut(&[u8])) {
        if !self.buf.trim_ascii().is_empty() {
            frame(&self.buf);
        }
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_295_700_000_000_000; // 2026-11-21T21:15:00Z

    #[test]
    fn rfc5424_with_structured_data() {
        let r = parse(
            br#"<165>1 2026-11-21T21:14:00.5Z web-1 billing 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App\"x\""] invoice run started"#,
            NOW,
        );
        assert_eq!(r.level, Level::Notice);
        assert_eq!(r.source, "billing");
        assert_eq!(r.time, NOW - 59_500_000_000);
        assert_eq!(r.message, "invoice run started");
        assert_eq!(r.field("host"), Some("web-1"));
        assert_eq!(r.field("pid"), Some("4242"));
        assert_eq!(r.field("facility"), Some("local4"));
        assert_eq!(r.field("exampleSDID@32473.eventSource"), Some("App\"x\""));
        let r = parse(b"<11>1 - - - - - - \xef\xbb\xbfplain", NOW);
        assert_eq!((r.message.as_str(), r.source.as_str()), ("plain", "syslog"));
    }

    #[test]
    fn rfc3164_and_python_handler() {
        let r = parse(
            b"<34>Nov 21 21:10:05 mail-1 postfix/smtp[991]: 421 too many messages",
            NOW,
        );
        assert_eq!(r.level, Level::Critical);
        assert_eq!(r.source, "postfix/smtp");
        assert_eq!(r.field("host"), Some("mail-1"));
        assert_eq!(r.field("pid"), Some("991"));
        assert_eq!(r.message, "421 too many messages");
        assert_eq!(r.time, NOW - 295_000_000_000);
        // Python's SysLogHandler: no timestamp, no host, NUL-terminated.
        let r = parse(b"<11>invoices: smtp refused\0", NOW);
        assert_eq!((r.source.as_str(), r.level), ("invoices", Level::Error));
        assert_eq!(r.message, "smtp refused");
        assert_eq!(r.time, NOW);
        let r = parse(b"<14>Just a message with: a colon later", NOW);
        assert_eq!(r.source, "syslog");
        assert_eq!(r.message, "Just a message with: a colon later");
    }

    #[test]
    fn no_priority_is_kept_raw() {
        let r = parse(b"garbage line", NOW);
        assert_eq!(r.flags, LogRecord::UNPARSED);
        assert_eq!(r.message, "garbage line");
        assert_eq!(parse(b"<999>x", NOW).flags, LogRecord::UNPARSED);
    }

    #[test]
    fn framing_octet_counted_and_terminated() {
        let mut framer = Framer::default();
        let mut frames: Vec<String> = Vec::new();
        let stream = b"11 <13>hello\n a<14>two\n<15>three\0<16>fo";
        for chunk in stream.chunks(3) {
            framer.push(chunk, |f| frames.push(String::from_utf8_lossy(f).into()));
        }
        framer.push(b"ur", |f| frames.push(String::from_utf8_lossy(f).into()));
        framer.finish(|f| frames.push(String::from_utf8_lossy(f).into()));
        assert_eq!(
            frames,
            ["<13>hello\n ", "a<14>two", "<15>three", "<16>four"]
        );
    }

    /// Python's `SysLogHandler` over TCP: NUL ends each message, and a traceback's line feeds
    /// stay inside it, even when the stream arrives in small pieces.
    #[test]
    fn a_nul_terminated_sender_keeps_its_line_feeds() {
        let stream = b"<11>shop: send failed\nTraceback (most recent call last):\n  File \"x.py\", line 8\nZeroDivisionError: division by zero\0<14>shop: next\nline\0";
        let mut framer = Framer::default();
        let mut records = Vec::new();
        framer.push(&stream[..60], |f| records.push(parse(f, NOW)));
        framer.push(&stream[60..], |f| records.push(parse(f, NOW)));
        framer.finish(|f| records.push(parse(f, NOW)));
        let messages: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "send failed\nTraceback (most recent call last):\n  File \"x.py\", line 8\nZeroDivisionError: division by zero",
                "next\nline"
            ]
        );
        assert_eq!(records[0].level, Level::Error);
        // A stray NUL inside a line-framed message does not change the framing.
        let mut framer = Framer::default();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        framer.push(b"<13>a\0b\n<13>c\n", |f| frames.push(f.to_vec()));
        assert_eq!(
            frames,
            [b"<13>a".to_vec(), b"b".to_vec(), b"<13>c".to_vec()]
        );
    }

    /// What rsyslog forwards: its escaped line breaks, and the space its RFC 5424 template
    /// leaves before the message.
    #[test]
    fn rsyslog_forwarding_reads_as_sent() {
        let r = parse(
            b"<11>1 2026-11-25T11:45:39.791701+00:00 localhost shop - - -  ERROR shop.mail send failed#012Traceback (most recent call last):#012  File \"<stdin>\", line 7, in <module>#012ZeroDivisionError: division by zero",
            NOW,
        );
        assert_eq!(r.source, "shop");
        assert_eq!(
            r.message,
            "ERROR shop.mail send failed\nTraceback (most recent call last):\n  File \"<stdin>\", line 7, in <module>\nZeroDivisionError: division by zero"
        );
        let r = parse(
            b"<75>Nov 25 11:45:39 vm cron: error: job backup failed\n",
            NOW,
        );
        assert_eq!(
            (r.source.as_str(), r.message.as_str()),
            ("cron", "error: job backup failed")
        );
        assert_eq!(r.field("host"), Some("vm"));
    }
}
