//! The Logs pages: search with a histogram and a live tail, and the sources page (each
//! source's size and lines, its last lines, downloads, and clearing it).
//!
//! Pages render the first page of results on the server, so they work without JavaScript;
//! `assets/logs.js` adds the live tail (SSE from `/api/v1/logs/tail`, polling
//! `/api/v1/logs/search?after=` when streams are unavailable).

use crate::auth::AdminUser;
use crate::http::{paging, AppError, PageError};
use crate::logs::api::{parse_query, run_search, run_stats, source_of, SearchParams};
use crate::logs::view::rfc3339_ns;
use crate::state::AppState;
use crate::web::chart::{self, Bar};
use crate::web::format::{encode, level_badge, logfmt};
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use vigie_core::{Level, LogQuery, LogRecord, Project, Text, Timestamp};
use vigie_store::logs::{self, LogSource, LogStats};

const PAGE: usize = 100;
/// Time ranges offered, as `since:` spans; "" is all time.
const RANGES: [(&str, &str); 7] = [
    ("15m", "15 min"),
    ("1h", "1 hour"),
    ("6h", "6 hours"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("", "all time"),
];

#[derive(Deserialize, Default)]
pub struct LogsQuery {
    #[serde(default)]
    q: String,
    /// Lowest level shown ("" = all).
    #[serde(default)]
    level: String,
    /// A `since:` span, or "" for all time; absent means the last 24 hours.
    range: Option<String>,
    before: Option<String>,
}

/// One row of the results table.
pub struct Row {
    /// RFC 3339 with nanoseconds, UTC: shown whole on hover, as [`Row::day`] and
    /// [`Row::clock`] in the cell.
    pub time: String,
    pub level: &'static str,
    pub source: Text,
    pub logger: Text,
    pub first_line: String,
    pub rest: String,
    pub fields: Vec<(Text, Text)>,
    pub job_id: Text,
    pub trace_id: Text,
    pub flags: u8,
}

impl Row {
    /// The month and day ("11-28"); on a phone the cell shows it above the clock.
    pub fn day(&self) -> &str {
        &self.time[5..10]
    }

    /// The time of day to the millisecond ("12:23:43.930").
    pub fn clock(&self) -> &str {
        &self.time[11..23]
    }

    pub fn new(r: &LogRecord) -> Row {
        let (first, rest) = r.message.split_once('\n').unwrap_or((&r.message, ""));
        let time = rfc3339_ns(r.time);
        Row {
            time,
            level: r.level.as_str(),
            source: r.source.clone(),
            logger: r.logger.clone(),
            first_line: first.to_string(),
            rest: rest.to_string(),
            fields: r.fields.clone(),
            job_id: r.job_id.clone(),
            trace_id: r.trace_id.clone(),
            flags: r.flags,
        }
    }

    /// The fields after the message, logfmt-style (`user=ada status=550`; a value with spaces
    /// or quotes is quoted), so a reader sees why a line matched without opening it. The
    /// emitting process's OpenTelemetry resource (`resource.*`: its SDK, its instance id,
    /// the same on every line it sends) is shown only when the line is opened; `logs.js`
    /// leaves out the same for live lines.
    pub fn fields_inline(&self) -> String {
        logfmt(
            self.fields
                .iter()
                .filter(|(k, _)| !k.starts_with(vigie_protocol::logs::otlp::RESOURCE_PREFIX))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// The lines around this one from the same source: a minute either side.
    pub fn context_link(&self) -> String {
        let Some(at) = vigie_protocol::jobs::parse_time(&self.time) else {
            return String::new();
        };
        let from = Timestamp(at.millis() - 30_000).to_rfc3339();
        let to = Timestamp(at.millis() + 30_000).to_rfc3339();
        let q = format!("source:{} from:{from} to:{to}", self.source);
        format!("/logs?range=&q={}", encode(&q))
    }

    pub fn badge(&self) -> &'static str {
        level_badge(self.level)
    }

    pub fn unparsed(&self) -> bool {
        self.flags & LogRecord::UNPARSED != 0
    }
}

fn bars(stats: &LogStats) -> Vec<Bar> {
    let counts: Vec<i64> = stats.buckets.iter().map(|c| *c as i64).collect();
    chart::bars(&counts, 1000.0, 100.0, |i, count| {
        let start = rfc3339_ns(stats.start + stats.bucket * i as i64);
        format!("{} — {count} records", &start[..19].replace('T', " "))
    })
}

#[derive(Template)]
#[template(path = "logs/logs.html")]
struct LogsPage {
    chrome: Chrome,
    project: Project,
    q: String,
    level: String,
    range: String,
    /// The query actually run: the text plus the level and range choices.
    effective: String,
    error: Option<String>,
    /// The word a regex of the query would let the word filters look up, were it to open
    /// with `\b` (see [`word_start_tip`]).
    word_start_tip: Option<String>,
    rows: Vec<Row>,
    next: Option<String>,
    stats: LogStats,
    bars: Vec<Bar>,
    ranges: [(&'static str, &'static str); 7],
    levels: [Level; 7],
    has_logs: bool,
    base_url: String,
    axis_start: String,
    axis_end: String,
    /// The tallest bar's count, the histogram's scale ("1,204 per bar").
    y_max: String,
}

impl LogsPage {
    /// The search narrowed to bar `i`'s span of time: a click on the histogram zooms in.
    fn zoom(&self, i: &usize) -> String {
        let from = self.stats.start + self.stats.bucket * *i as i64;
        let to = from + self.stats.bucket;
        let words: Vec<&str> = self
            .q
            .split_whitespace()
            .filter(|w| !is_time_term(w))
            .collect();
        let q = format!(
            "{} from:{} to:{}",
            words.join(" "),
            rfc3339_ns(from),
            rfc3339_ns(to)
        );
        format!(
            "/logs?q={}&level={}&range=",
            encode(q.trim()),
            encode(&self.level)
        )
    }
    fn level_count(&self, level: &Level) -> u64 {
        self.stats.per_level[*level as usize]
    }
    fn link(&self, level: &str, range: &str) -> String {
        format!(
            "/logs?q={}&level={}&range={}",
            encode(&self.q),
            encode(level),
            encode(range)
        )
    }
    fn older(&self, cursor: &str) -> String {
        format!(
            "{}&before={}",
            self.link(&self.level, &self.range),
            encode(cursor)
        )
    }
    fn tail_url(&self) -> String {
        format!(
            "/api/v1/logs/tail?project={}&q={}",
            self.project.id.0,
            encode(&self.effective)
        )
    }
    fn poll_url(&self) -> String {
        format!(
            "/api/v1/logs/search?project={}&q={}",
            self.project.id.0,
            encode(&self.effective)
        )
    }
    fn key(&self) -> &str {
        self.project.public_key.as_str()
    }
}

/// Whether a word of a query bounds its time (`since:`, `from:`, `to:`).
fn is_time_term(word: &str) -> bool {
    ["from:", "to:", "since:"]
        .iter()
        .any(|p| word.starts_with(p))
}

/// `GET /logs`.
pub async fn search(
    State(state): State<AppState>,
    request: PageRequest,
    Query(params): Query<LogsQuery>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "logs").await?;
    let project = chrome.project_or_404()?;
    // A trace id alone opens its trace, which shows its log lines beside its spans (a word
    // search would find the same lines, without the rest of the trace).
    if let Some(to_trace) = crate::web::related::open_trace(&state, project.id, &params.q).await? {
        return Ok(to_trace);
    }
    // A time typed in the box is the search's own: the range menu adds none beside it (its
    // 24 hours would otherwise narrow a typed `since:7d` to the last day, silently).
    let range = if params.q.split_whitespace().any(is_time_term) {
        String::new()
    } else {
        params.range.clone().unwrap_or_else(|| "24h".into())
    };
    let mut effective = params.q.trim().to_string();
    if !params.level.is_empty() {
        effective.push_str(&format!(" level:>={}", params.level));
    }
    if !range.is_empty() {
        effective.push_str(&format!(" since:{range}"));
    }
    let effective = effective.trim().to_string();
    let search = SearchParams {
        q: effective.clone(),
        limit: Some(PAGE),
        before: params.before.clone(),
        after: None,
    };
    let (rows, next, stats, error) = match run_search(&state, &project, &search).await {
        Ok(page) => {
            let mut stats = run_stats(&state, &project, &effective, 60).await?;
            // Matches only in the last part of the range: draw the span that holds them, not
            // one bar at the right edge (the level counts and total stay the range's).
            if let Some(first) = stats.buckets.iter().position(|n| *n > 0) {
                if first >= stats.buckets.len() / 2 {
                    let from = rfc3339_ns(stats.start + stats.bucket * first as i64);
                    let narrowed = format!("{effective} from:{from}");
                    if let Ok(closer) = run_stats(&state, &project, &narrowed, 60).await {
                        stats.start = closer.start;
                        stats.bucket = closer.bucket;
                        stats.buckets = closer.buckets;
                    }
                }
            }
            let rows = page.hits.iter().map(|h| Row::new(&h.record)).collect();
            (rows, page.next.map(|c| c.to_string()), stats, None)
        }
        Err(AppError::Invalid { message, .. }) => {
            (Vec::new(), None, LogStats::default(), Some(message))
        }
        Err(other) => return Err(other.into()),
    };
    let word_start_tip = word_start_tip(&effective);
    let has_logs = !state.store.log_sources(project.id).await?.is_empty();
    let end = stats.start + stats.bucket * stats.buckets.len() as i64;
    let page = LogsPage {
        bars: bars(&stats),
        y_max: crate::web::format::thousands(stats.buckets.iter().copied().max().unwrap_or(0)),
        axis_start: short_time(stats.start),
        axis_end: short_time(end),
        project,
        q: params.q,
        level: params.level,
        range,
        effective,
        error,
        word_start_tip,
        rows,
        next,
        stats,
        ranges: RANGES,
        levels: Level::ALL,
        has_logs,
        base_url: state.base_url.to_string(),
        chrome,
    };
    render(&page, &page.chrome)
}

/// When the query names no word the word filters can look up but one of its regexes would
/// if it opened with `\b`, that word: without it the search reads every block of its range.
fn word_start_tip(query: &str) -> Option<String> {
    let hints = parse_query(query).ok()?.word_start_hints()?;
    // A beginning too short for the filters to keep would not narrow the search either.
    if vigie_store::logs::bloom::Probes::new(&hints.whole, &hints.starts).is_empty() {
        return None;
    }
    hints.whole.into_iter().chain(hints.starts).next()
}

fn short_time(ns: i64) -> String {
    let t = rfc3339_ns(ns);
    format!("{} {}", &t[..10], &t[11..16])
}

pub struct SourceRow {
    pub source: LogSource,
    pub first: String,
    pub last: String,
}

#[derive(Template)]
#[template(path = "logs/sources.html")]
struct SourcesPage {
    chrome: Chrome,
    project: Project,
    sources: Vec<SourceRow>,
}

impl SourcesPage {
    fn size(&self, bytes: &u64) -> String {
        crate::web::format::human_bytes(*bytes)
    }
}

/// `GET /logs/sources`.
pub async fn sources(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "logs").await?;
    let project = chrome.project_or_404()?;
    let sources = state
        .store
        .log_sources(project.id)
        .await?
        .into_iter()
        .map(|source| SourceRow {
            first: source.first_time.map(rfc3339_ns).unwrap_or_default(),
            last: source.last_time.map(rfc3339_ns).unwrap_or_default(),
            source,
        })
        .collect();
    let page = SourcesPage {
        chrome,
        project,
        sources,
    };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "logs/source.html")]
struct SourcePage {
    chrome: Chrome,
    project: Project,
    source: LogSource,
    lines: Vec<Row>,
    n: usize,
    query: String,
}

impl SourcePage {
    fn shows(&self, choice: &usize) -> bool {
        self.n == *choice
    }
    fn size(&self) -> String {
        crate::web::format::human_bytes(self.source.stored_bytes)
    }
    fn raw(&self) -> String {
        crate::web::format::human_bytes(self.source.raw_bytes)
    }
    fn tail_url(&self) -> String {
        format!(
            "/api/v1/logs/tail?project={}&q={}",
            self.project.id.0,
            encode(&self.query)
        )
    }
    fn poll_url(&self) -> String {
        format!(
            "/api/v1/logs/search?project={}&q={}",
            self.project.id.0,
            encode(&self.query)
        )
    }
    fn download(&self, format: &str) -> String {
        format!(
            "/api/v1/logs/sources/{}/download?project={}&format={format}",
            self.source.id, self.project.id.0
        )
    }
}

#[derive(Deserialize)]
pub struct SourceQuery {
    n: Option<usize>,
}

/// `GET /logs/sources/{id}`: the last N lines, live.
pub async fn source(
    State(state): State<AppState>,
    request: PageRequest,
    Path(id): Path<i64>,
    Query(params): Query<SourceQuery>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "logs").await?;
    let project = chrome.project_or_404()?;
    let source = source_of(&state, &project, id).await?;
    let n = paging::limit(params.n, 100, crate::logs::api::MAX_LIMIT);
    let query = LogQuery::default().only_source(&source.name);
    let page = logs::search(state.store.as_ref(), project.id, &query, n, None)
        .await
        .map_err(AppError::from)?;
    let lines = page
        .hits
        .iter()
        .rev()
        .map(|h| Row::new(&h.record))
        .collect();
    let page = SourcePage {
        query: format!("source:\"{}\"", source.name.replace('"', "")),
        chrome,
        project,
        source,
        lines,
        n,
    };
    render(&page, &page.chrome)
}

/// `POST /logs/sources/{id}/clear` (admin, CSRF-checked, confirmed in the page).
pub async fn clear(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let secure = request.secure_cookies(&state);
    let chrome = request.chrome(&state, "logs").await?;
    let project = chrome.project_or_404()?;
    let cleared = async {
        let source = source_of(&state, &project, id).await?;
        state.store.delete_log_source(project.id, id).await?;
        tracing::info!(source = %source.name, "log source cleared");
        Ok::<_, AppError>(source)
    }
    .await;
    crate::web::form_outcome(cleared, "/logs/sources", secure, |source| {
        format!("Cleared {} ({} lines).", source.name, source.records)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_logfmt() {
        let pairs = [
            ("user", "ada"),
            ("error", "550 mailbox full"),
            ("q", "a=\"b\""),
            ("empty", ""),
        ];
        assert_eq!(
            logfmt(pairs.into_iter()),
            r#"user=ada error="550 mailbox full" q="a=\"b\"" empty="""#
        );
    }

    #[test]
    fn a_lines_resource_is_left_to_its_opened_view() {
        let record = LogRecord {
            message: "invoice F-2026-0042 cannot be sent".into(),
            fields: vec![
                ("invoice".into(), "F-2026-0042".into()),
                ("resource.telemetry.sdk.name".into(), "opentelemetry".into()),
                ("resource.service.instance.id".into(), "dc953b6d".into()),
                ("resourceful".into(), "yes".into()),
            ],
            ..LogRecord::default()
        };
        let row = Row::new(&record);
        assert_eq!(row.fields_inline(), "invoice=F-2026-0042 resourceful=yes");
        assert_eq!(
            row.fields.len(),
            4,
            "the opened line still lists every field"
        );
    }
}
