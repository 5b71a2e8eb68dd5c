//! How pages show values: numbers, times, durations, text cut to fit, and the one map from a
//! state to its colour. Templates call these by path (`crate::web::format::thousands(n)`), and
//! so do the page modules, so a value reads the same on every page.
//!
//! Times are shown relative ("3 min ago", [`ago`]) with the exact time on hover (the `when`
//! macro in `macros.html`); where a relative time cannot carry its exact one (inside a line of
//! fields) it is shown in full ([`exact`]); feeds show the time of day ([`time_of_day`]).

use vigie_core::celery::TaskState;
use vigie_core::monitor::{MonitorState, RunStatus};
use vigie_core::numbers;
use vigie_core::Timestamp;

// --- numbers ---

/// A number however many references deep a template hands it over.
pub trait Number {
    fn get(&self) -> f64;
}
impl Number for i64 {
    fn get(&self) -> f64 {
        *self as f64
    }
}
impl Number for u64 {
    fn get(&self) -> f64 {
        *self as f64
    }
}
impl Number for usize {
    fn get(&self) -> f64 {
        *self as f64
    }
}
impl Number for f64 {
    fn get(&self) -> f64 {
        *self
    }
}
impl<T: Number + ?Sized> Number for &T {
    fn get(&self) -> f64 {
        (**self).get()
    }
}

/// `1234567` → `1,234,567` ([`vigie_core::numbers::thousands`], for any [`Number`]).
pub fn thousands(n: impl Number) -> String {
    numbers::thousands(n.get() as i64)
}

/// A count and its noun: "1 job", "2,041 jobs" ([`vigie_core::numbers::count`]).
pub fn count(n: impl Number, one: &str, many: &str) -> String {
    numbers::count(n.get() as i64, one, many)
}

// --- times ---

/// "3 min ago" (or "in 5 min") from now: what pages show of a time, the exact one on hover
/// (the `when` macro in `macros.html`).
pub fn ago(t: &Timestamp) -> String {
    t.relative_to(Timestamp::now())
}

/// [`ago`] of an RFC 3339 time from a view; nothing when it does not parse.
pub fn ago_text(rfc3339: &str) -> String {
    Timestamp::parse_rfc3339(rfc3339)
        .map(|t| ago(&t))
        .unwrap_or_default()
}

/// A time to come, for people: `in 5 min`, `in 3 h`; a past one reads "overdue".
pub fn until(t: &Timestamp) -> String {
    let ms = t.millis() - Timestamp::now().millis();
    let minutes = ms / 60_000;
    match ms {
        ms if ms < 0 => "overdue".into(),
        ms if ms < 60_000 => "in less than a minute".into(),
        _ if minutes < 120 => format!("in {minutes} min"),
        _ if minutes < 48 * 60 => format!("in {} h", minutes / 60),
        _ => format!("in {} days", minutes / 1440),
    }
}

/// The time of day (UTC) to the millisecond with every digit kept (`10:07:55.550`, not
/// `10:07:55.55`), so lines of a feed or a breadcrumb trail align; the date is on hover.
pub fn time_of_day(t: Timestamp) -> String {
    let ms = t.millis().rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `2026-11-21T10:40:05.123Z` → `10:40:05.123` ([`time_of_day`]), for the message feed; a
/// time that does not parse is shown as sent.
pub fn clock(rfc3339: &str) -> String {
    match Timestamp::parse_rfc3339(rfc3339) {
        Some(t) => time_of_day(t),
        None => rfc3339.to_string(),
    }
}

/// A time in full where a relative one cannot be shown with it (inside a line of fields):
/// `2026-11-23 01:23:51.253 UTC`.
pub fn exact(t: Timestamp) -> String {
    let iso = t.to_rfc3339();
    match iso.split_once('T') {
        Some((date, _)) => format!("{date} {} UTC", time_of_day(t)),
        None => iso,
    }
}

// --- durations ---

/// A latency: `12.3 ms`, `412 ms`, `1.24 s`, or an em dash.
pub fn ms(value: &Option<f64>) -> String {
    match value {
        Some(v) if *v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if *v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "—".into(),
    }
}

/// How long something ran: `850 ms` under a second, then `3m 27s`; nothing when unknown.
pub fn duration(ms: &Option<f64>) -> String {
    match ms {
        None => String::new(),
        Some(ms) if *ms < 1000.0 => format!("{ms:.0} ms"),
        Some(ms) => vigie_core::job::human_duration(*ms as i64),
    }
}

/// [`duration`] of a time in seconds (a Celery runtime).
pub fn runtime(seconds: &Option<f64>) -> String {
    duration(&seconds.map(|s| s * 1000.0))
}

/// Seconds as a job's page shows a duration (`3m 27s`).
pub fn seconds(s: impl Number) -> String {
    vigie_core::job::human_duration((s.get() * 1000.0) as i64)
}

/// `1536` → `1.5 KiB`, as `live.js` formats it, so a live update does not change the text shape.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut n, mut i) = (bytes as f64, 0);
    while n >= 1024.0 && i < UNITS.len() - 1 {
        n /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{n:.1} {}", UNITS[i])
    }
}

// --- text ---

/// `text` percent-encoded for a URL component.
pub fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, COMPONENT).to_string()
}

/// What a URL component must escape: all but letters, digits and RFC 3986's unreserved
/// `-._~`, so a slug such as `sync-stock` reads as typed in a URL (not `sync%2Dstock`).
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path-like name cut after each `/`, for a page to offer a line break there (`<wbr>`):
/// `/api/v1/invoices/{id}` wraps between its segments, never inside one, and reads and copies
/// as sent.
pub fn path_parts(name: &str) -> Vec<&str> {
    name.split_inclusive('/').collect()
}

/// `key=value` pairs as logfmt writes them: a value with a space, a quote or an `=` (or
/// empty) in double quotes, its quotes and backslashes escaped.
pub fn logfmt<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| {
            let plain = !v.is_empty() && !v.contains([' ', '"', '=', '\\', '\n']);
            if plain {
                format!("{k}={v}")
            } else {
                format!(
                    "{k}=\"{}\"",
                    v.replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n")
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first `n` characters, for a table cell.
pub fn short(text: &Option<String>, n: usize) -> String {
    let text = text.as_deref().unwrap_or("");
    match text.char_indices().nth(n) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

// --- colours ---

/// The one map from a state to its colour: each names one of the stylesheet's tones —
/// `running` blue, `completed` green, `stalled` amber, `failed` red, `pending` grey. (A job's
/// status is its own tone: its names are these.)
pub trait Tone {
    fn tone(&self) -> &'static str;
}

/// The tone of `state`, for a template's `class="badge {{ … }}"`.
pub fn tone(state: &impl Tone) -> &'static str {
    state.tone()
}

impl Tone for TaskState {
    fn tone(&self) -> &'static str {
        match self {
            TaskState::Success => "completed",
            TaskState::Failure | TaskState::Rejected => "failed",
            TaskState::Started | TaskState::Custom(_) => "running",
            TaskState::Retry | TaskState::Revoked => "stalled",
            TaskState::Pending | TaskState::Received => "pending",
        }
    }
}

impl Tone for MonitorState {
    fn tone(&self) -> &'static str {
        match self {
            MonitorState::Up => "completed",
            MonitorState::Late => "stalled",
            MonitorState::Down => "failed",
            MonitorState::New | MonitorState::Paused => "pending",
        }
    }
}

impl Tone for RunStatus {
    fn tone(&self) -> &'static str {
        match self {
            RunStatus::InProgress => "running",
            RunStatus::Ok => "completed",
            RunStatus::Error | RunStatus::Missed | RunStatus::TimedOut => "failed",
        }
    }
}

/// The badge class of a log level (levels have colours of their own in the stylesheet).
pub fn level_badge(level: &str) -> &'static str {
    match level {
        "critical" | "error" => "error",
        "warning" => "warn",
        "notice" | "info" => "info",
        _ => "pending",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0i64), "0");
        assert_eq!(thousands(999u64), "999");
        assert_eq!(thousands(1_234_567i64), "1,234,567");
        assert_eq!(thousands(-4_500i64), "-4,500");
    }

    #[test]
    fn a_count_names_one_thing_or_many() {
        assert_eq!(count(1u64, "job", "jobs"), "1 job");
        assert_eq!(count(0u64, "job", "jobs"), "0 jobs");
        assert_eq!(count(2_041i64, "issue", "issues"), "2,041 issues");
    }

    #[test]
    fn the_feed_shows_the_time_of_day() {
        assert_eq!(clock("2026-11-21T10:40:05.123Z"), "10:40:05.123");
        // Every digit kept, so the feed's times line up.
        assert_eq!(clock("2026-11-21T10:40:05.76Z"), "10:40:05.760");
        assert_eq!(clock("2026-11-21T10:40:05Z"), "10:40:05.000");
        assert_eq!(clock("yesterday"), "yesterday");
    }

    #[test]
    fn url_components_keep_unreserved_characters() {
        assert_eq!(encode("sync-stock_v1.2~b"), "sync-stock_v1.2~b");
        assert_eq!(encode("a/b c?d&e=é"), "a%2Fb%20c%3Fd%26e%3D%C3%A9");
    }

    #[test]
    fn path_like_names_break_after_each_slash_and_lose_nothing() {
        assert_eq!(
            path_parts("GET /api/v1/invoices/{id}"),
            ["GET /", "api/", "v1/", "invoices/", "{id}"]
        );
        assert_eq!(path_parts("send_invoices"), ["send_invoices"]);
        assert_eq!(path_parts("/Reports/").concat(), "/Reports/");
    }

    #[test]
    fn an_exact_time_reads_without_the_rfc3339_t() {
        assert_eq!(
            exact(Timestamp(1_800_000_000_550)),
            "2027-01-15 08:00:00.550 UTC"
        );
    }

    #[test]
    fn time_of_day_keeps_every_millisecond_digit() {
        assert_eq!(time_of_day(Timestamp(1_800_000_000_550)), "08:00:00.550");
        assert_eq!(time_of_day(Timestamp(-1)), "23:59:59.999");
    }

    #[test]
    fn durations_read_in_the_unit_that_fits() {
        assert_eq!(ms(&Some(1.24)), "1.2 ms");
        assert_eq!(ms(&Some(412.4)), "412 ms");
        assert_eq!(ms(&Some(1240.0)), "1.24 s");
        assert_eq!(ms(&None), "—");
        assert_eq!(duration(&Some(850.0)), "850 ms");
        assert_eq!(runtime(&Some(0.009)), "9 ms");
        assert_eq!(duration(&None), "");
    }

    #[test]
    fn bytes_read_like_the_browser_shows_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
    }

    #[test]
    fn every_state_has_a_tone_the_stylesheet_colours() {
        let tones = ["running", "completed", "stalled", "failed", "pending"];
        for t in [TaskState::Success, TaskState::Retry, TaskState::Failure] {
            assert!(tones.contains(&tone(&t)));
        }
        assert_eq!(tone(&MonitorState::Late), "stalled");
        assert_eq!(tone(&RunStatus::Missed), "failed");
    }
}
