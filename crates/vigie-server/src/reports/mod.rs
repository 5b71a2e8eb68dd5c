//! Incident reports: everything one project recorded in a time window, merged into one
//! timeline, with the diagnosis hints of `vigie_core::incident`.
//!
//! ```text
//! GET /api/v1/reports/incident?from=&to=&tz=&format=json|text|markdown|html
//!   from, to   RFC 3339, or "2025-01-10 22:15" (read in tz, default UTC); `to` may be a time
//!              of day only ("22:30"), on the day of `from`; times are shown in tz
//!   gathered   log lines (the newest MAX_LOGS), error events, jobs created or changed, slow
//!              (Apdex "frustrated": over 4 T) or failed transactions among the kept samples,
//!              monitor runs — each with the path of its page
//!   html       one self-contained page (styles inline) to attach to a ticket or post-mortem
//! ```
//!
//! `vigie report incident` and the Reports page read the same.

use crate::auth::job_access::ProjectReader;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use crate::tasks::TaskError;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use vigie_core::incident::{self, Entry, EntryKind, Hint};
use vigie_core::{JobStatus, LogQuery, ProjectId, Timestamp};
use vigie_store::{EventFilter, JobFilter};

pub mod ui;

/// The incident report (its page, its API, its HTML export) and the daily report's API.
pub fn routes() -> crate::http::Routes<crate::state::AppState> {
    use crate::http::Table;
    use axum::routing::get;
    crate::http::Routes {
        pages: Table::new().route("/reports/incident", get(ui::incident)),
        api: Table::new()
            .route("/api/v1/reports/incident", get(incident_api))
            .route("/api/v1/reports/daily", get(daily_api)),
        ingest: Table::new(),
    }
}

/// Log lines kept in a report (the newest of the window); the count says when more existed.
pub const MAX_LOGS: usize = 5000;
/// Longest window a report covers.
const MAX_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Serialize)]
pub struct IncidentReport {
    pub from: Timestamp,
    pub to: Timestamp,
    /// The IANA zone the report's times are shown in.
    pub timezone: String,
    pub hints: Vec<Hint>,
    pub timeline: Vec<Entry>,
    /// `true` when the window held more than [`MAX_LOGS`] log lines (the oldest were left out).
    pub logs_truncated: bool,
    #[serde(skip)]
    zone: jiff::tz::TimeZone,
}

/// What the report page and the HTML export show of a report (one template part serves
/// both: `incident_report.html`).
impl IncidentReport {
    pub fn entry(&self, i: &usize) -> Option<&Entry> {
        self.timeline.get(*i)
    }

    pub fn clock(&self, t: &Timestamp) -> String {
        incident::clock(*t, &self.zone)
    }

    pub fn kind_class(&self, kind: &EntryKind) -> &'static str {
        match kind {
            EntryKind::Error => "failed",
            EntryKind::Job => "running",
            EntryKind::Transaction => "stalled",
            EntryKind::Monitor => "stalled",
            EntryKind::Log => "pending",
        }
    }

    pub fn first_line<'a>(&self, text: &'a str) -> &'a str {
        text.lines().next().unwrap_or("")
    }

    pub fn tally(&self) -> String {
        incident::tally(&self.timeline)
    }

    /// Text or Markdown.
    pub fn render(&self, markdown: bool) -> String {
        incident::render(
            (self.from, self.to),
            &self.timeline,
            &self.hints,
            markdown,
            &self.zone,
        )
    }
}

/// The report as one HTML file: the page's styles inline, links absolute.
#[derive(askama::Template)]
#[template(path = "reports/incident_export.html")]
struct IncidentExport<'a> {
    project: &'a str,
    report: &'a IncidentReport,
    base_url: &'a str,
    css: &'static str,
}

#[derive(Deserialize, Default)]
pub struct IncidentParams {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub tz: String,
    #[serde(default)]
    pub format: String,
}

fn invalid(field: &str, message: String) -> AppError {
    AppError::Invalid {
        field: field.into(),
        message,
    }
}

/// The zone of `tz` (UTC when empty).
pub fn zone(tz: &str) -> Result<jiff::tz::TimeZone, AppError> {
    let name = if tz.trim().is_empty() {
        "UTC"
    } else {
        tz.trim()
    };
    jiff::tz::TimeZone::get(name)
        .map_err(|_| invalid("tz", format!("unknown time zone \"{name}\"")))
}

/// `from` and `to` as the report reads them (see the module docs).
pub fn window(params: &IncidentParams) -> Result<(Timestamp, Timestamp), AppError> {
    let zone = zone(&params.tz)?;
    let from = instant(&params.from, &zone, None).ok_or_else(|| {
        invalid(
            "from",
            format!("\"{}\" is not a time such as 2025-01-10 22:15", params.from),
        )
    })?;
    let day = jiff::Timestamp::from_millisecond(from.millis())
        .map(|t| t.to_zoned(zone.clone()).date())
        .ok();
    let to = instant(&params.to, &zone, day).ok_or_else(|| {
        invalid(
            "to",
            format!("\"{}\" is not a time such as 22:30", params.to),
        )
    })?;
    if to <= from {
        return Err(invalid(
            "to",
            "the window is empty: `to` must be after `from`".into(),
        ));
    }
    if to.millis() - from.millis() > MAX_WINDOW_MS {
        return Err(invalid("to", "a report covers at most 7 days".into()));
    }
    Ok((from, to))
}

/// RFC 3339, a civil date-time in `zone`, or (with `day_of`) a time of day on that day.
fn instant(
    text: &str,
    zone: &jiff::tz::TimeZone,
    day_of: Option<jiff::civil::Date>,
) -> Option<Timestamp> {
    let text = text.trim();
    if let Some(t) = Timestamp::parse_rfc3339(text) {
        return Some(t);
    }
    let civil = text
        .replace(' ', "T")
        .parse::<jiff::civil::DateTime>()
        .ok()
        .or_else(|| {
            let time = text.parse::<jiff::civil::Time>().ok()?;
            Some(day_of?.to_datetime(time))
        })?;
    let zoned = civil.to_zoned(zone.clone()).ok()?;
    Some(Timestamp(zoned.timestamp().as_millisecond()))
}

/// Gathers the report of `project` over `from..to`, its times shown in `zone`.
pub async fn incident(
    state: &AppState,
    project: ProjectId,
    (from, to): (Timestamp, Timestamp),
    zone: jiff::tz::TimeZone,
) -> Result<IncidentReport, AppError> {
    let mut timeline = Vec::new();

    let query = LogQuery {
        terms: Vec::new(),
        from: Some(from.millis() * 1_000_000),
        to: Some(to.millis() * 1_000_000),
    };
    let page =
        vigie_store::logs::search(state.store.as_ref(), project, &query, MAX_LOGS, None).await?;
    let logs_truncated = page.next.is_some();
    for hit in page.hits {
        let r = hit.record;
        timeline.push(Entry {
            at: Timestamp(r.time.div_euclid(1_000_000)),
            kind: EntryKind::Log,
            source: r.source.into_string(),
            level: r.level.as_str().to_string(),
            text: r.message.into_string(),
            link: None,
        });
    }

    let events = state
        .store
        .events(&EventFilter {
            project,
            since: Some(from),
            until: Some(to),
            oldest_first: true,
            limit: 1000,
            ..Default::default()
        })
        .await?;
    for e in events {
        timeline.push(Entry {
            at: e.time,
            kind: EntryKind::Error,
            source: "sentry".into(),
            level: e.level,
            text: e.title,
            link: Some(format!("/issues/{}", e.issue_id)),
        });
    }

    // Jobs that ran in the window: created before its end, and not finished before its start.
    let jobs = state
        .store
        .list_jobs(&JobFilter {
            project,
            until: Some(to),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    for job in jobs.jobs {
        if job.finished_at.is_some_and(|f| f < from) || job.last_update < from {
            continue;
        }
        let progress = job.progress_words();
        let link = Some(format!("/jobs/{}", job.id));
        if job.created_at >= from {
            timeline.push(Entry {
                at: job.created_at,
                kind: EntryKind::Job,
                source: job.name.clone(),
                level: "started".into(),
                text: format!("{} started", job.name),
                link: link.clone(),
            });
        }
        let end = match job.status {
            JobStatus::Stalled => job.stalled_since.map(|at| (at, "stalled")),
            JobStatus::Failed => job.finished_at.map(|at| (at, "failed")),
            JobStatus::Completed => job.finished_at.map(|at| (at, "completed")),
            JobStatus::Cancelled => job.finished_at.map(|at| (at, "cancelled")),
            _ => None,
        };
        if let Some((at, what)) = end.filter(|(at, _)| *at >= from && *at < to) {
            let message = job
                .message
                .as_deref()
                .map(|m| format!("; {m}"))
                .unwrap_or_default();
            timeline.push(Entry {
                at,
                kind: EntryKind::Job,
                source: job.name.clone(),
                level: what.into(),
                text: format!("{progress}{message}"),
                link,
            });
        }
    }

    // Transactions: the kept samples (per name and minute: the first, the slowest, the first
    // failure) that failed or made a user wait (Apdex "frustrated", over 4 T).
    let apdex_ms = state.store.error_settings(project).await?.apdex_ms as f64;
    let samples = state
        .store
        .transaction_samples(project, None, from, Some(to), 1000)
        .await?;
    for t in samples {
        let failed = !matches!(t.status.as_str(), "ok" | "" | "unknown");
        let slow = t.duration_ms > 4.0 * apdex_ms;
        if !failed && !slow {
            continue;
        }
        timeline.push(Entry {
            at: t.time,
            kind: EntryKind::Transaction,
            source: t.name.clone(),
            level: if failed { "failed" } else { "slow" }.into(),
            text: format!("{} {:.0} ms, {}", t.name, t.duration_ms, t.status),
            link: Some(format!(
                "/performance/transaction?name={}",
                url::form_urlencoded::byte_serialize(t.name.as_bytes()).collect::<String>()
            )),
        });
    }

    let monitors = state.store.list_monitors(project).await?;
    let runs = state
        .store
        .monitor_runs(monitors.iter().map(|m| m.id).collect(), 200)
        .await?;
    for run in runs
        .iter()
        .filter(|r| r.started_at >= from && r.started_at < to)
    {
        let Some(m) = monitors.iter().find(|m| m.id == run.monitor_id) else {
            continue;
        };
        let label = crate::monitors::ui::run_label(&run.status);
        timeline.push(Entry {
            at: run.started_at,
            kind: EntryKind::Monitor,
            source: m.slug.clone(),
            level: label.into(),
            text: run
                .output
                .as_deref()
                .map(|o| o.trim().lines().last().unwrap_or("").to_string())
                .unwrap_or_else(|| format!("run {label}")),
            link: Some(format!("/monitors/{}", m.slug)),
        });
    }

    timeline.sort_by_key(|e| e.at);
    let hints = incident::diagnose(&timeline);
    Ok(IncidentReport {
        from,
        to,
        timezone: zone.iana_name().unwrap_or("UTC").to_string(),
        hints,
        timeline,
        logs_truncated,
        zone,
    })
}

/// `GET /api/v1/reports/incident`.
pub async fn incident_api(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<IncidentParams>,
) -> Result<Response, ApiError> {
    let window = window(&params)?;
    let report = incident(&state, reader.project.id, window, zone(&params.tz)?).await?;
    if let Some(answer) = shared_format(&params.format, &report, |md| report.render(md)) {
        return Ok(answer);
    }
    Ok(match params.format.as_str() {
        "html" => {
            use askama::Template;
            let page = IncidentExport {
                project: &reader.project.name,
                report: &report,
                base_url: state.base_url.trim_end_matches('/'),
                css: crate::web::assets::APP_CSS,
            };
            let html = page
                .render()
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let name = format!(
                "incident-{}.html",
                incident::clock(report.from, &report.zone).replace([' ', ':'], "-")
            );
            (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                html,
            )
                .into_response()
        }
        other => {
            return Err(invalid(
                "format",
                format!("\"{other}\" is not json, text, markdown or html"),
            )
            .into())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(from: &str, to: &str, tz: &str) -> IncidentParams {
        IncidentParams {
            from: from.into(),
            to: to.into(),
            tz: tz.into(),
            format: String::new(),
        }
    }

    fn rfc(t: Timestamp) -> String {
        t.to_rfc3339()
    }

    #[test]
    fn windows_as_people_write_them() {
        let (from, to) = window(&params("2025-01-10 22:15", "22:30", "Europe/Paris")).unwrap();
        assert_eq!(rfc(from), "2025-01-10T21:15:00Z");
        assert_eq!(rfc(to), "2025-01-10T21:30:00Z");
        let (from, to) =
            window(&params("2025-01-10T21:15:00Z", "2025-01-10T21:30:00Z", "")).unwrap();
        assert_eq!(to.millis() - from.millis(), 15 * 60_000);
        let (from, _) = window(&params("2025-07-01 08:00", "09:00", "")).unwrap();
        assert_eq!(rfc(from), "2025-07-01T08:00:00Z", "UTC by default");
        let error = |p: IncidentParams| match window(&p) {
            Err(AppError::Invalid { message, .. }) => message,
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert!(error(params("2025-01-10 22:15", "22:00", "")).contains("empty"));
        assert!(error(params("yesterday", "22:00", "")).contains("is not a time"));
        assert!(error(params("2025-01-10 22:15", "22:30", "Mars/Base")).contains("time zone"));
        assert!(error(params("2025-01-01 00:00", "2025-02-01 00:00", "")).contains("7 days"));
    }
}

/// The daily report (the "sent today / errors today" mail teams script by hand): per job
/// kind, jobs and items with the success rate; the day's last item errors; new issues; jobs
/// running now.
#[derive(Serialize)]
pub struct DailyReport {
    pub project: String,
    /// The day, `2025-01-10`, in `timezone`.
    pub date: String,
    pub timezone: String,
    pub kinds: Vec<KindLine>,
    pub last_errors: Vec<ErrorLine>,
    pub new_issues: Vec<String>,
    pub running: Vec<String>,
}

#[derive(Serialize)]
pub struct KindLine {
    pub kind: String,
    pub jobs: usize,
    pub failed_jobs: usize,
    pub ok: i64,
    pub failed: i64,
    /// Percent of items that went well, when any finished.
    pub success_rate: Option<f64>,
}

#[derive(Serialize)]
pub struct ErrorLine {
    pub at: Timestamp,
    pub job: String,
    pub item: String,
    pub error: String,
}

#[derive(Deserialize, Default)]
pub struct DailyParams {
    /// `2025-01-10`; empty: today.
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub tz: String,
    #[serde(default)]
    pub format: String,
}

/// The start and end of `date` (today when empty) in `tz`.
pub fn day_bounds(date: &str, tz: &str) -> Result<(String, Timestamp, Timestamp), AppError> {
    let tz = if tz.trim().is_empty() {
        "UTC"
    } else {
        tz.trim()
    };
    let zone = jiff::tz::TimeZone::get(tz)
        .map_err(|_| invalid("tz", format!("unknown time zone \"{tz}\"")))?;
    let day = if date.trim().is_empty() {
        jiff::Timestamp::now().to_zoned(zone.clone()).date()
    } else {
        date.trim().parse::<jiff::civil::Date>().map_err(|_| {
            invalid(
                "date",
                format!("\"{date}\" is not a date such as 2025-01-10"),
            )
        })?
    };
    let start = day
        .to_zoned(zone.clone())
        .map_err(|e| invalid("date", e.to_string()))?;
    let end = start
        .tomorrow()
        .map_err(|e| invalid("date", e.to_string()))?;
    Ok((
        day.to_string(),
        Timestamp(start.timestamp().as_millisecond()),
        Timestamp(end.timestamp().as_millisecond()),
    ))
}

pub async fn daily(
    state: &AppState,
    project: &vigie_core::Project,
    date: &str,
    tz: &str,
) -> Result<DailyReport, AppError> {
    let (date, start, end) = day_bounds(date, tz)?;
    let store = state.store.as_ref();
    let jobs = store
        .list_jobs(&JobFilter {
            project: project.id,
            since: Some(start),
            until: Some(end),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let mut kinds: Vec<KindLine> = Vec::new();
    for job in &jobs.jobs {
        let kind = job.kind.clone().unwrap_or_else(|| "(no kind)".into());
        let line = match kinds.iter_mut().find(|k| k.kind == kind) {
            Some(line) => line,
            None => {
                kinds.push(KindLine {
                    kind,
                    jobs: 0,
                    failed_jobs: 0,
                    ok: 0,
                    failed: 0,
                    success_rate: None,
                });
                kinds.last_mut().expect("just pushed")
            }
        };
        line.jobs += 1;
        line.failed_jobs +=
            usize::from(matches!(job.status, JobStatus::Failed | JobStatus::Stalled));
        line.ok += job.processed - job.failed - job.skipped;
        line.failed += job.failed;
    }
    for line in &mut kinds {
        let done = line.ok + line.failed;
        line.success_rate = (done > 0).then(|| line.ok as f64 * 100.0 / done as f64);
    }
    let errors = store
        .list_items(&vigie_store::ItemFilter {
            project: project.id,
            status: Some(vigie_core::ItemStatus::Error),
            since: Some(start),
            until: Some(end),
            limit: 10,
            ..Default::default()
        })
        .await?;
    let job_name = |id: &str| {
        jobs.jobs
            .iter()
            .find(|j| j.id == id)
            .map_or_else(|| id.to_string(), |j| j.name.clone())
    };
    let last_errors = errors
        .items
        .iter()
        .map(|i| ErrorLine {
            at: i.at,
            job: job_name(&i.job_id),
            item: i.name.clone().or_else(|| i.key.clone()).unwrap_or_default(),
            error: i.error.clone().unwrap_or_default(),
        })
        .collect();
    let issues = store
        .list_issues(&vigie_store::IssueFilter {
            project: project.id,
            since: Some(start),
            sort: vigie_store::IssueSort::FirstSeen,
            limit: 200,
            ..Default::default()
        })
        .await?;
    let new_issues = issues
        .issues
        .iter()
        .filter(|i| i.first_seen >= start && i.first_seen < end)
        .map(|i| i.title.clone())
        .collect();
    let running = store
        .list_jobs(&JobFilter {
            project: project.id,
            status: Some(JobStatus::Running),
            limit: 50,
            ..Default::default()
        })
        .await?
        .jobs
        .iter()
        .map(|j| match j.total {
            Some(t) => format!("{}: {} of {t}", j.name, j.processed),
            None => format!("{}: {} processed", j.name, j.processed),
        })
        .collect();
    Ok(DailyReport {
        project: project.name.clone(),
        date,
        timezone: if tz.trim().is_empty() {
            "UTC".into()
        } else {
            tz.trim().into()
        },
        kinds,
        last_errors,
        new_issues,
        running,
    })
}

impl DailyReport {
    /// The report as plain text (CLI, e-mail) or Markdown.
    pub fn render(&self, markdown: bool) -> String {
        use std::fmt::Write;
        let h = |level: &str, text: &str| {
            if markdown {
                format!("{level} {text}\n")
            } else {
                format!("{text}\n")
            }
        };
        let mut out = h(
            "#",
            &format!(
                "Daily report of {} for {} ({})",
                self.project, self.date, self.timezone
            ),
        );
        out.push('\n');
        out.push_str(&h("##", "Work by kind"));
        if self.kinds.is_empty() {
            out.push_str("No job ran this day.\n");
        }
        for k in &self.kinds {
            let rate = k
                .success_rate
                .map_or_else(|| "—".to_string(), |r| format!("{r:.1} %"));
            let _ = writeln!(
                out,
                "- {}: {} jobs ({} failed or stalled), {} ok, {} failed, success {}",
                k.kind, k.jobs, k.failed_jobs, k.ok, k.failed, rate
            );
        }
        out.push('\n');
        out.push_str(&h("##", "Last errors"));
        if self.last_errors.is_empty() {
            out.push_str("None.\n");
        }
        for e in &self.last_errors {
            let _ = writeln!(
                out,
                "- {} {} · {}: {}",
                e.at.to_rfc3339().get(11..19).unwrap_or(""),
                e.job,
                e.item,
                e.error
            );
        }
        out.push('\n');
        out.push_str(&h("##", "New issues"));
        if self.new_issues.is_empty() {
            out.push_str("None.\n");
        }
        for title in &self.new_issues {
            let _ = writeln!(out, "- {title}");
        }
        out.push('\n');
        out.push_str(&h("##", "Running now"));
        if self.running.is_empty() {
            out.push_str("Nothing.\n");
        }
        for r in &self.running {
            let _ = writeln!(out, "- {r}");
        }
        out
    }
}

/// `GET /api/v1/reports/daily?date=&tz=&format=json|text|markdown`.
pub async fn daily_api(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<DailyParams>,
) -> Result<Response, ApiError> {
    let report = daily(&state, &reader.project, &params.date, &params.tz).await?;
    shared_format(&params.format, &report, |md| report.render(md)).ok_or_else(|| {
        invalid(
            "format",
            format!("\"{}\" is not json, text or markdown", params.format),
        )
        .into()
    })
}

/// A report in a format both reports have: JSON, plain text or Markdown (`render(true)`);
/// `None` for another format.
fn shared_format(
    format: &str,
    report: &impl Serialize,
    render: impl Fn(bool) -> String,
) -> Option<Response> {
    let text = |markdown: bool, kind: &'static str| {
        ([(header::CONTENT_TYPE, kind)], render(markdown)).into_response()
    };
    match format {
        "" | "json" => Some(Json(report).into_response()),
        "text" => Some(text(false, "text/plain; charset=utf-8")),
        "markdown" => Some(text(true, "text/markdown; charset=utf-8")),
        _ => None,
    }
}

/// Where the daily report remembers when it last went out (survives restarts).
const DAILY_SENT_META: &str = "reports.daily.last_sent";

/// The scheduled task: when the daily report's time has come, queues yesterday's report of
/// each project to the project's channel named in `[reports] daily_channel`.
pub async fn send_daily_if_due(state: &AppState) -> Result<String, TaskError> {
    let config = &state.config.reports;
    let Some(schedule) = config.daily_schedule()? else {
        return Ok("off".into());
    };
    let store = state.store.as_ref();
    let now = Timestamp::now();
    let last = store
        .meta_get_or_insert(DAILY_SENT_META, &now.millis().to_string())
        .await?;
    let last = Timestamp(last.parse().unwrap_or(now.millis()));
    let due = schedule.next_after(last).is_some_and(|next| next <= now);
    if !due {
        return Ok("not due".into());
    }
    // Yesterday, in the schedule's zone.
    let calendar = |source| TaskError::Calendar {
        zone: config.daily_timezone.clone(),
        source,
    };
    let zone = jiff::tz::TimeZone::get(&config.daily_timezone).map_err(calendar)?;
    let yesterday = jiff::Timestamp::now()
        .to_zoned(zone)
        .date()
        .yesterday()
        .map_err(calendar)?
        .to_string();
    let mut sent = 0;
    for project in store.list_projects().await? {
        let channels = store.list_channels(project.id).await?;
        let Some(channel) = channels.iter().find(|c| c.name == config.daily_channel) else {
            continue;
        };
        let report = daily(state, &project, &yesterday, &config.daily_timezone)
            .await
            .map_err(|source| TaskError::Report {
                project: project.name.clone(),
                source,
            })?;
        let message = vigie_core::alert::Notification {
            title: format!("Daily report of {} for {}", project.name, report.date),
            facts: Vec::new(),
            link: format!("{}/", state.base_url.trim_end_matches('/')),
            evidence: Some(report.render(false)),
            resolved: false,
            report: true,
        };
        store
            .enqueue(vec![vigie_store::NewDelivery {
                project: project.id,
                channel: channel.id,
                rule: Some("daily report".into()),
                message,
                at: now,
            }])
            .await?;
        sent += 1;
    }
    store.meta_delete(DAILY_SENT_META).await?;
    store
        .meta_get_or_insert(DAILY_SENT_META, &now.millis().to_string())
        .await?;
    state.doorbell.ring();
    Ok(format!("reports queued: {sent}"))
}
