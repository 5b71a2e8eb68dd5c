//! The Issues pages: the list (filters, sort, sparklines, live refresh) and one issue with an
//! event's stack trace, breadcrumbs, request, tags and the way to its logs.
//!
//! The list reads the same filters as `GET /api/v1/issues` (`crate::sentry::api`). It updates
//! itself: `assets/refresh.js` listens to `/live/issues` (SSE, polling fallback) and re-reads
//! the table when the project's issues change.

use super::event_view::{self, EventView};
use crate::auth::AdminUser;
use crate::http::{AppError, PageError};
use crate::hub::Change;
use crate::sentry::api::{event_json, issue_or_404, IssueParams, StatusBody};
use crate::sentry::ErrorIngest;
use crate::state::AppState;
use crate::web::chart::{self, Bar};
use crate::web::format::encode;
use crate::web::sse::ProjectPulse;
use crate::web::{form_outcome, render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use vigie_core::issue::{Issue, IssueId, IssueStatus};
use vigie_core::{Project, ProjectId, Timestamp};
use vigie_store::errors::{DroppedCount, Feedback, SampleMeta, TagCount};
use vigie_store::releases::Regression;
use vigie_store::{EventFilter, EventMeta};

const PAGE: u32 = 50;
const HOUR_MS: i64 = 3_600_000;

/// `counts` as a sparkline in a 0–100 × 0–24 SVG box.
fn sparkline(counts: &[i64], label: impl Fn(usize) -> String) -> Vec<Bar> {
    chart::bars(counts, 100.0, 24.0, |i, n| {
        format!("{}: {n} events", label(i))
    })
}

pub struct IssueRow {
    pub issue: Issue,
    pub spark: Vec<Bar>,
}

impl IssueRow {
    pub fn open(&self) -> bool {
        self.issue.status == IssueStatus::Unresolved
    }
}

/// Event counts per bucket for each issue: 24 hours, or 14 days.
async fn sparklines(
    state: &AppState,
    issues: &[Issue],
    days: bool,
) -> Result<Vec<Vec<i64>>, AppError> {
    let (buckets, step) = if days {
        (14, 24 * HOUR_MS)
    } else {
        (24, HOUR_MS)
    };
    let now = Timestamp::now().millis();
    let end = (now.div_euclid(HOUR_MS) + 1) * HOUR_MS;
    let start = end - buckets * step;
    let ids: Vec<IssueId> = issues.iter().map(|i| i.id).collect();
    let hours = state.store.issue_hours(ids, Timestamp(start)).await?;
    Ok(issues
        .iter()
        .map(|issue| {
            let mut counts = vec![0i64; buckets as usize];
            for (_, hour, n) in hours.iter().filter(|(id, _, _)| *id == issue.id) {
                let slot = ((hour - start) / step) as usize;
                if let Some(c) = counts.get_mut(slot) {
                    *c += n;
                }
            }
            counts
        })
        .collect())
}

/// Words for a dropped count's reason: Vigie's own (it received and did not keep) and the
/// SDKs' client-report reasons (never sent), each with what to do.
pub fn dropped_meaning(reason: &str) -> &'static str {
    match reason {
        "not_stored_by_vigie" => "received, of a type Vigie does not store (profiles, replays…)",
        "too_large" => "received, over errors.max_attachment_mib",
        "no_segment" => "streamed spans under no transaction: nothing to count them in",
        "too_many" => "streamed spans past 1,000 in one item",
        "segment_full" => {
            "streamed spans past 1,000 for one transaction: timed, not shown in its waterfall"
        }
        "server_quota" => "refused by the server's quota ([errors] in vigie.toml)",
        "project_quota" => "refused by the project's quota (Settings → error settings)",
        "spike_protection" => {
            "refused by spike protection: far more than the project's usual rate (an error loop?)"
        }
        "event_processor" | "before_send" => {
            "filtered in your application (before_send or an event processor): never sent"
        }
        "sample_rate" => "not sampled by the SDK (sample_rate, traces_sample_rate): never sent",
        "ratelimit_backoff" => "held back by the SDK after Vigie asked it to slow down",
        "queue_overflow" | "buffer_overflow" | "backpressure" => {
            "the SDK's send queue was full: the application produced faster than it could send"
        }
        "network_error" | "send_error" => "the SDK could not reach Vigie: check the DSN's address",
        "ignored" => "ignored by the SDK's ignoreErrors / ignore_errors settings",
        _ => "dropped by the SDK (its client report's reason)",
    }
}

#[derive(Template)]
#[template(path = "sentry/issues.html")]
struct IssuesPage {
    chrome: Chrome,
    project: Project,
    params: IssueParams,
    rows: Vec<IssueRow>,
    /// Why the filters could not be read (the table is then empty).
    problem: Option<String>,
    total: u64,
    offset: u32,
    days: bool,
    dropped: Vec<DroppedCount>,
    filters: String,
    dsn: String,
}

impl IssuesPage {
    fn status_is(&self, s: &str) -> bool {
        self.params.status.as_deref().unwrap_or("unresolved") == s
    }
    fn sort_is(&self, s: &str) -> bool {
        self.params.sort.as_deref().unwrap_or("last_seen") == s
    }
    fn level_is(&self, s: &str) -> bool {
        self.params.level.as_deref().unwrap_or("") == s
    }
    fn levels(&self) -> [&'static str; 5] {
        ["fatal", "error", "warning", "info", "debug"]
    }
    fn field<'a>(&self, value: &'a Option<String>) -> &'a str {
        value.as_deref().unwrap_or("")
    }
    fn prev_offset(&self) -> Option<u32> {
        (self.offset > 0).then(|| self.offset.saturating_sub(PAGE))
    }
    fn next_offset(&self) -> Option<u32> {
        let next = self.offset + PAGE;
        (u64::from(next) < self.total).then_some(next)
    }
    fn last_shown(&self) -> u64 {
        u64::from(self.offset) + self.rows.len() as u64
    }
    /// What a dropped count's reason means, and what to do about it.
    fn meaning(&self, reason: &str) -> &'static str {
        dropped_meaning(reason)
    }
    fn dropped_total(&self) -> i64 {
        self.dropped.iter().map(|d| d.quantity).sum()
    }
    fn nothing_yet(&self) -> bool {
        self.rows.is_empty() && self.total == 0 && self.params.query.is_empty()
    }
}

pub async fn list(
    State(state): State<AppState>,
    request: PageRequest,
    Query(mut params): Query<IssueParams>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "issues").await?;
    let project = chrome.project_or_404()?;
    // A trace id pasted in the search box opens its trace, where its issues are listed.
    if let Some(to_trace) =
        crate::web::related::open_trace(&state, project.id, &params.query).await?
    {
        return Ok(to_trace);
    }
    if params.status.is_none() {
        params.status = Some("unresolved".into());
    }
    params.limit = Some(PAGE);
    let offset = params.offset.unwrap_or(0);
    let (page, problem) = match crate::web::searchable(params.filter(project.id))? {
        Ok(filter) => (state.store.list_issues(&filter).await?, None),
        Err(why) => (vigie_store::IssuePage::default(), Some(why)),
    };
    let days = params.period.as_deref() == Some("14d");
    let counts = sparklines(&state, &page.issues, days).await?;
    let rows = page
        .issues
        .into_iter()
        .zip(counts)
        .map(|(issue, counts)| {
            let n = counts.len();
            IssueRow {
                spark: sparkline(&counts, |i| {
                    let back = n - i - 1;
                    match (days, back) {
                        (_, 0) if days => "today".into(),
                        (true, b) => format!("{b} days ago"),
                        (false, 0) => "this hour".into(),
                        (false, b) => format!("{b} h ago"),
                    }
                }),
                issue,
            }
        })
        .collect();
    let filters = [
        ("status", params.status.clone()),
        ("level", params.level.clone()),
        ("environment", params.environment.clone()),
        ("release", params.release.clone()),
        ("query", Some(params.query.clone())),
        ("sort", params.sort.clone()),
        ("period", params.period.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.filter(|v| !v.is_empty())
            .map(|v| format!("{k}={}", encode(&v)))
    })
    .collect::<Vec<_>>()
    .join("&");
    let dropped = state
        .store
        .dropped_events(
            project.id,
            Timestamp(Timestamp::now().millis() - 24 * HOUR_MS),
        )
        .await?;
    let page = IssuesPage {
        dsn: state.dsn(&project),
        project,
        params,
        rows,
        problem,
        total: page.total,
        offset,
        days,
        dropped,
        filters,
        chrome,
    };
    render(&page, &page.chrome)
}

/// What changes when a project's issues change: `/live/issues` sends it, the page compares.
#[derive(serde::Serialize)]
pub struct IssuesPulse {
    total: u64,
    last_seen: i64,
}

impl ProjectPulse for IssuesPulse {
    fn concerns(change: &Change, project: ProjectId) -> bool {
        matches!(change, Change::Issues(news) if news.project == project)
    }

    async fn read(state: &AppState, project: ProjectId) -> Result<Self, AppError> {
        let page = state
            .store
            .list_issues(&vigie_store::IssueFilter {
                project,
                limit: 1,
                ..Default::default()
            })
            .await?;
        Ok(IssuesPulse {
            total: page.total,
            last_seen: page.issues.first().map_or(0, |i| i.last_seen.millis()),
        })
    }
}

/// Tag values of one key, with each value's share.
pub struct TagGroup {
    pub key: String,
    pub total: i64,
    pub values: Vec<(String, i64, f64)>,
}

fn tag_groups(tags: Vec<TagCount>) -> Vec<TagGroup> {
    let mut groups: Vec<TagGroup> = Vec::new();
    for t in tags {
        if groups.last().is_none_or(|g| g.key != t.key) {
            groups.push(TagGroup {
                key: t.key.clone(),
                total: 0,
                values: Vec::new(),
            });
        }
        let group = groups.last_mut().expect("pushed above");
        group.total += t.count;
        group.values.push((t.value, t.count, 0.0));
    }
    for g in &mut groups {
        let total = g.total.max(1) as f64;
        for v in &mut g.values {
            v.2 = v.1 as f64 * 100.0 / total;
        }
        g.values.truncate(5);
    }
    groups
}

#[derive(Template)]
#[template(path = "sentry/issue.html")]
struct IssuePage {
    chrome: Chrome,
    issue: Issue,
    event: Option<EventMeta>,
    view: EventView,
    tags: Vec<TagGroup>,
    latest: Option<String>,
    oldest: Option<String>,
    previous: Option<String>,
    next: Option<String>,
    spark: Vec<Bar>,
    /// What people wrote about this issue's events.
    feedback: Vec<Feedback>,
    show_issue: bool,
    /// A page of the issue's events, newest first, and where the next (older) page starts.
    events: Vec<EventMeta>,
    older_events: Option<i64>,
    /// Whether this page of events is the newest one.
    events_from_newest: bool,
    /// The requests (transaction samples) of the shown event's trace.
    requests: Vec<SampleMeta>,
    /// When it came back after it was resolved, newest first.
    regressions: Vec<Regression>,
}

impl IssuePage {
    fn time(&self, t: &Timestamp) -> String {
        t.to_rfc3339()
    }
    fn logs_around(&self) -> String {
        let Some(e) = &self.event else {
            return String::new();
        };
        let from = Timestamp(e.time.millis() - 60_000).to_rfc3339();
        let to = Timestamp(e.time.millis() + 60_000).to_rfc3339();
        format!("/logs?range=&q={}", encode(&format!("from:{from} to:{to}")))
    }
    fn sample_link(&self, s: &SampleMeta) -> String {
        crate::web::related::sample_link(s)
    }
    fn release_link(&self, version: &str) -> String {
        crate::web::related::release_link(version)
    }
    fn took(&self, s: &SampleMeta) -> String {
        crate::web::format::ms(&Some(s.duration_ms))
    }
    fn logs_of(&self, filter: &str, value: &str) -> String {
        format!("/logs?range=&q={}", encode(&format!("{filter}:{value}")))
    }
    fn event_link(&self, id: &str) -> String {
        format!("/issues/{}?event={id}", self.issue.id)
    }
    fn is_shown(&self, e: &EventMeta) -> bool {
        self.event
            .as_ref()
            .is_some_and(|shown| shown.event_id == e.event_id)
    }
    fn older_events_link(&self, before: &i64) -> String {
        let shown = self
            .event
            .as_ref()
            .map(|e| format!("&event={}", e.event_id))
            .unwrap_or_default();
        format!(
            "/issues/{}?events_before={before}{shown}#events",
            self.issue.id
        )
    }
    fn status_label(&self) -> &'static str {
        self.issue.status.label()
    }
    fn is_open(&self) -> bool {
        self.issue.status == IssueStatus::Unresolved
    }
}

#[derive(Deserialize, Default)]
pub struct IssueQuery {
    event: Option<String>,
    /// The events table's page: events stored before this one (its storage order).
    events_before: Option<i64>,
}

/// Events listed per page on an issue.
const EVENTS_PER_PAGE: u32 = 25;

async fn neighbour(
    state: &AppState,
    base: &EventFilter,
    tweak: impl FnOnce(&mut EventFilter),
) -> Result<Option<String>, AppError> {
    let mut f = base.clone();
    f.limit = 1;
    tweak(&mut f);
    Ok(state
        .store
        .events(&f)
        .await?
        .into_iter()
        .next()
        .map(|e| e.event_id))
}

pub async fn show(
    State(state): State<AppState>,
    State(ingest): State<ErrorIngest>,
    request: PageRequest,
    Path(id): Path<IssueId>,
    Query(query): Query<IssueQuery>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "issues").await?;
    let project = chrome.project_or_404()?;
    let issue = issue_or_404(&state, project.id, id).await?;
    let base = EventFilter {
        project: project.id,
        issue: Some(id),
        ..EventFilter::default()
    };
    let latest = neighbour(&state, &base, |_| {}).await?;
    let oldest = neighbour(&state, &base, |f| f.oldest_first = true).await?;
    let shown = query.event.clone().or_else(|| latest.clone());
    let found = match &shown {
        Some(event_id) => event_json(&state, &ingest.maps, project.id, event_id)
            .await?
            .filter(|(meta, _)| meta.issue_id == id),
        None => None,
    };
    let (event, json) = match found {
        Some((meta, json)) => (Some(meta), json),
        None => (None, event_view::empty()),
    };
    let (previous, next) = match &event {
        Some(e) => (
            neighbour(&state, &base, |f| f.before_seq = Some(e.seq)).await?,
            neighbour(&state, &base, |f| {
                f.after_seq = Some(e.seq);
                f.oldest_first = true;
            })
            .await?,
        ),
        None => (None, None),
    };
    let mut events = state
        .store
        .events(&EventFilter {
            before_seq: query.events_before,
            limit: EVENTS_PER_PAGE + 1,
            ..base.clone()
        })
        .await?;
    let older_events = (events.len() > EVENTS_PER_PAGE as usize).then(|| {
        events.truncate(EVENTS_PER_PAGE as usize);
        events.last().map_or(0, |e| e.seq)
    });
    let counts = sparklines(&state, std::slice::from_ref(&issue), true).await?;
    let requests =
        crate::web::related::requests_of_event(&state, project.id, event.as_ref()).await?;
    let page = IssuePage {
        regressions: state.store.issue_regressions(id).await?,
        requests,
        events,
        older_events,
        events_from_newest: query.events_before.is_none(),
        view: EventView::new(&json),
        tags: tag_groups(state.store.issue_tags(id).await?),
        spark: sparkline(&counts[0], |i| format!("{} days ago", 13 - i)),
        feedback: state
            .store
            .feedback(project.id, Some(id), FEEDBACK_SHOWN)
            .await?,
        show_issue: false,
        issue,
        event,
        latest,
        oldest,
        previous,
        next,
        chrome,
    };
    render(&page, &page.chrome)
}

/// Most feedback entries a page shows.
const FEEDBACK_SHOWN: u32 = 200;

#[derive(Template)]
#[template(path = "sentry/feedback.html")]
struct FeedbackPage {
    chrome: Chrome,
    project: Project,
    feedback: Vec<Feedback>,
    show_issue: bool,
}

/// `/feedback`: the project's user feedback, each linked to the issue it is about.
pub async fn feedback(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "issues").await?;
    let project = chrome.project_or_404()?;
    let page = FeedbackPage {
        feedback: state
            .store
            .feedback(project.id, None, FEEDBACK_SHOWN)
            .await?,
        project,
        show_issue: true,
        chrome,
    };
    render(&page, &page.chrome)
}

#[derive(Deserialize)]
pub struct StatusForm {
    action: String,
    /// `""`, `"100"` (more events) or `"24h"`/`"7d"` (a period).
    #[serde(default)]
    ignore: String,
}

/// `POST /issues/{id}/status` (admins): the page's resolve / ignore / reopen buttons.
pub async fn set_status(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<IssueId>,
    Form(form): Form<StatusForm>,
) -> Result<Response, PageError> {
    let secure = request.secure_cookies(&state);
    let chrome = request.chrome(&state, "issues").await?;
    let project = chrome.project_or_404()?;
    let changed = async {
        let (more_events, until) = match form.ignore.trim() {
            "" => (None, None),
            n if n.bytes().all(|b| b.is_ascii_digit()) => (n.parse().ok(), None),
            period => {
                let d = crate::sentry::api::parse_period("ignore", period)?;
                (None, Some(Timestamp::now().plus(d).to_rfc3339()))
            }
        };
        let body = StatusBody {
            action: form.action.clone(),
            more_events,
            until,
        };
        Ok::<_, AppError>(
            state
                .store
                .set_issue_status(project.id, id, &body.change()?)
                .await?,
        )
    }
    .await;
    form_outcome(changed, &format!("/issues/{id}"), secure, |issue| {
        format!("The issue is now {}.", issue.status.label())
    })
}
