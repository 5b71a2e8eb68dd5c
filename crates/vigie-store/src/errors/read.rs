//! Reading issues, events and performance aggregates, and the status changes people make.

use super::{
    decompress_body, floor, sketch_from, ErrorSettings, Tx, DAY_MS, HOUR_MS,
    STRAY_SPANS_PER_SEGMENT,
};
use crate::sql::{Columns, Value, Where};
use crate::{Result, StoreError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use vigie_core::issue::{Issue, IssueId, IssueStatus, StatusChange};
use vigie_core::sketch::Sketch;
use vigie_core::{ProjectId, Timestamp};

// --- settings ---

/// The longest span retention a project may set: ten years.
pub const MAX_RETENTION_DAYS: i64 = 3650;

pub(crate) async fn error_settings(tx: &mut dyn Tx, project: ProjectId) -> Result<ErrorSettings> {
    let rows = tx
        .query(
            "SELECT apdex_ms, events_per_minute, keep_user_contact, scrub_keys, \
             span_exceptions, span_retention_days FROM error_settings WHERE project_id = $1",
            &[project.0.into()],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(ErrorSettings::default());
    };
    Ok(ErrorSettings {
        apdex_ms: row.req_int(0)?,
        events_per_minute: row.int(1)?,
        keep_user_contact: row.req_int(2)? != 0,
        scrub_keys: row
            .req_text(3)?
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        span_exceptions: row.req_int(4)? != 0,
        span_retention_days: row.int(5)?,
    })
}

pub(crate) async fn set_error_settings(
    tx: &mut dyn Tx,
    project: ProjectId,
    settings: &ErrorSettings,
) -> Result<()> {
    if settings.apdex_ms <= 0 {
        return Err(StoreError::Invalid {
            field: "apdex_ms",
            message: "must be a positive number of milliseconds".into(),
        });
    }
    if settings.events_per_minute.is_some_and(|n| n <= 0) {
        return Err(StoreError::Invalid {
            field: "events_per_minute",
            message: "must be positive (or empty for no project limit)".into(),
        });
    }
    if settings
        .span_retention_days
        .is_some_and(|d| !(1..=MAX_RETENTION_DAYS).contains(&d))
    {
        return Err(StoreError::Invalid {
            field: "span_retention_days",
            message: format!(
                "must be 1 to {MAX_RETENTION_DAYS} days (or empty for the server's retention)"
            ),
        });
    }
    tx.execute(
        "INSERT INTO error_settings (project_id, apdex_ms, events_per_minute, \
         keep_user_contact, scrub_keys, span_exceptions, span_retention_days) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (project_id) DO UPDATE SET apdex_ms = excluded.apdex_ms, \
         events_per_minute = excluded.events_per_minute, \
         keep_user_contact = excluded.keep_user_contact, scrub_keys = excluded.scrub_keys, \
         span_exceptions = excluded.span_exceptions, \
         span_retention_days = excluded.span_retention_days",
        &[
            project.0.into(),
            settings.apdex_ms.into(),
            settings.events_per_minute.into(),
            i64::from(settings.keep_user_contact).into(),
            settings.scrub_keys.join(",").as_str().into(),
            i64::from(settings.span_exceptions).into(),
            settings.span_retention_days.into(),
        ],
    )
    .await?;
    let change = crate::feed::FeedChange::Project;
    crate::feed::record(tx, project, &change, Timestamp::now()).await
}

// --- issues ---

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IssueSort {
    #[default]
    LastSeen,
    FirstSeen,
    Events,
    Users,
}

impl IssueSort {
    pub fn parse(text: &str) -> Option<IssueSort> {
        Some(match text {
            "last_seen" | "" => IssueSort::LastSeen,
            "first_seen" | "new" => IssueSort::FirstSeen,
            "events" | "count" => IssueSort::Events,
            "users" => IssueSort::Users,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IssueSort::LastSeen => "last_seen",
            IssueSort::FirstSeen => "first_seen",
            IssueSort::Events => "events",
            IssueSort::Users => "users",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            IssueSort::LastSeen => "last_seen DESC, id DESC",
            IssueSort::FirstSeen => "first_seen DESC, id DESC",
            IssueSort::Events => "event_count DESC, id DESC",
            IssueSort::Users => "user_count DESC, last_seen DESC",
        }
    }
}

/// The issues list's filters; `None` or empty means any.
#[derive(Clone, Debug, Default)]
pub struct IssueFilter {
    pub project: ProjectId,
    pub status: Option<IssueStatus>,
    pub level: Option<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    /// `key:value` tags that must all have been seen on the issue.
    pub tags: Vec<(String, String)>,
    /// Words found in the title or culprit (case-insensitive).
    pub text: Option<String>,
    /// Seen at or after.
    pub since: Option<Timestamp>,
    pub sort: IssueSort,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Clone, Debug, Default)]
pub struct IssuePage {
    pub issues: Vec<Issue>,
    /// Issues matching the filter, all pages together.
    pub total: u64,
}

pub(crate) const ISSUE_COLS: &str = "id, project_id, grouping_key, title, culprit, level, status, \
    regressed_at, resolved_release, ignore_until_count, ignore_until, first_seen, last_seen, \
    event_count, user_count, first_release, last_release";

pub(crate) fn issue_from(row: &Vec<Value>) -> Result<Issue> {
    let time = |i| row.int(i).map(|v| v.map(Timestamp));
    Ok(Issue {
        id: IssueId(row.req_int(0)?),
        project: ProjectId(row.req_int(1)?),
        grouping_key: row.req_text(2)?,
        title: row.req_text(3)?,
        culprit: row.req_text(4)?,
        level: row.req_text(5)?,
        status: row.req_text(6)?.parse().map_err(StoreError::database)?,
        regressed_at: time(7)?,
        resolved_release: row.text(8)?,
        ignore_until_count: row.int(9)?,
        ignore_until: time(10)?,
        first_seen: Timestamp(row.req_int(11)?),
        last_seen: Timestamp(row.req_int(12)?),
        event_count: row.req_int(13)?,
        user_count: row.req_int(14)?,
        first_release: row.text(15)?,
        last_release: row.text(16)?,
    })
}

fn issue_where(f: &IssueFilter) -> Where {
    let mut w = Where::new();
    w.push("project_id = ?", f.project.0);
    if let Some(status) = f.status {
        w.push("status = ?", status.as_str());
    }
    w.equals("level", f.level.as_deref());
    if let Some(since) = f.since {
        w.push("last_seen >= ?", since.millis());
    }
    w.words(&["title", "culprit"], f.text.as_deref());
    let tags = [
        f.environment.as_deref().map(|v| ("environment", v)),
        f.release.as_deref().map(|v| ("release", v)),
    ];
    let pairs: BTreeSet<(&str, &str)> = tags
        .into_iter()
        .flatten()
        .chain(f.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    if !pairs.is_empty() {
        // Driven from the tags' index entries (a few issues), not checked per issue; one
        // lookup for all the pairs, kept where every pair was found (an issue has each pair
        // once): a subquery per pair made PostgreSQL plan a join of all of them, 0.5 s for 40
        // pairs and 9 s for 120.
        let mut matches = Vec::with_capacity(pairs.len());
        for (key, value) in &pairs {
            w.values.push((*key).into());
            w.values.push((*value).into());
            let n = w.values.len();
            matches.push(format!("(key = ${} AND value = ${n})", n - 1));
        }
        let every = match pairs.len() {
            1 => String::new(),
            n => format!(" GROUP BY issue_id HAVING count(*) = {n}"),
        };
        w.clauses.push(format!(
            "id IN (SELECT issue_id FROM issue_tags WHERE {}{every})",
            matches.join(" OR ")
        ));
    }
    w
}

pub(crate) async fn list_issues(tx: &mut dyn Tx, f: &IssueFilter) -> Result<IssuePage> {
    let w = issue_where(f);
    let total = tx
        .query(
            &format!("SELECT count(*) FROM issues{}", w.sql()),
            &w.values,
        )
        .await?
        .first()
        .map(|r| r.req_int(0))
        .transpose()?
        .unwrap_or(0) as u64;
    let sql = format!(
        "SELECT {ISSUE_COLS} FROM issues{} ORDER BY {} LIMIT {} OFFSET {}",
        w.sql(),
        f.sort.order_by(),
        f.limit.clamp(1, 1000),
        f.offset
    );
    let issues = tx
        .query(&sql, &w.values)
        .await?
        .iter()
        .map(issue_from)
        .collect::<Result<_>>()?;
    Ok(IssuePage { issues, total })
}

pub(crate) async fn issue(
    tx: &mut dyn Tx,
    project: ProjectId,
    id: IssueId,
) -> Result<Option<Issue>> {
    tx.first_as(
        &format!("SELECT {ISSUE_COLS} FROM issues WHERE project_id = $1 AND id = $2"),
        &[project.0.into(), id.into()],
        issue_from,
    )
    .await
}

pub(crate) async fn set_issue_status(
    tx: &mut dyn Tx,
    project: ProjectId,
    id: IssueId,
    change: &StatusChange,
) -> Result<Issue> {
    // Each change sets its columns with parameters $1…$k; the WHERE takes the next two.
    let (set, mut values): (&str, Vec<Value>) = match change {
        StatusChange::Resolve => (
            "status = 'resolved', regressed_at = NULL, resolved_release = NULL, \
             ignore_until_count = NULL, ignore_until = NULL",
            vec![],
        ),
        StatusChange::ResolveInNextRelease => (
            "status = 'resolved_next', regressed_at = NULL, resolved_release = last_release, \
             ignore_until_count = NULL, ignore_until = NULL",
            vec![],
        ),
        StatusChange::Ignore { more_events, until } => {
            if more_events.is_some_and(|n| n <= 0) {
                return Err(StoreError::Invalid {
                    field: "more_events",
                    message: "must be a positive number of events".into(),
                });
            }
            (
                "status = 'ignored', regressed_at = NULL, resolved_release = NULL, \
                 ignore_until_count = event_count + $1, ignore_until = $2",
                vec![(*more_events).into(), (*until).into()],
            )
        }
        StatusChange::Reopen => (
            "status = 'unresolved', regressed_at = NULL, resolved_release = NULL, \
             ignore_until_count = NULL, ignore_until = NULL",
            vec![],
        ),
    };
    let n = values.len();
    let sql = format!(
        "UPDATE issues SET {set} WHERE project_id = ${} AND id = ${}",
        n + 1,
        n + 2
    );
    values.extend([project.0.into(), id.into()]);
    crate::sql::found(tx.execute(&sql, &values).await?, "issue")?;
    issue(tx, project, id)
        .await?
        .ok_or(StoreError::NotFound("issue"))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagCount {
    pub key: String,
    pub value: String,
    pub count: i64,
}

/// Tag values of an issue, by key, most frequent first.
pub(crate) async fn issue_tags(tx: &mut dyn Tx, issue_id: IssueId) -> Result<Vec<TagCount>> {
    tx.query(
        "SELECT key, value, count FROM issue_tags WHERE issue_id = $1 \
         ORDER BY key, count DESC, value",
        &[issue_id.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(TagCount {
            key: r.req_text(0)?,
            value: r.req_text(1)?,
            count: r.req_int(2)?,
        })
    })
    .collect()
}

/// Events per hour since `since` of each of `issues`: `(issue id, hour start ms, count)`.
pub(crate) async fn issue_hours(
    tx: &mut dyn Tx,
    issues: &[IssueId],
    since: Timestamp,
) -> Result<Vec<(IssueId, i64, i64)>> {
    if issues.is_empty() {
        return Ok(Vec::new());
    }
    let list = issues
        .iter()
        .map(IssueId::to_string)
        .collect::<Vec<_>>()
        .join(",");
    tx.query(
        &format!(
            "SELECT issue_id, hour, count FROM issue_hours WHERE hour >= $1 \
             AND issue_id IN ({list}) ORDER BY issue_id, hour"
        ),
        &[since.millis().into()],
    )
    .await?
    .iter()
    .map(|r| Ok((IssueId(r.req_int(0)?), r.req_int(1)?, r.req_int(2)?)))
    .collect()
}

// --- events ---

/// An event's summary columns (its body is read with [`event`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventMeta {
    /// Storage order: later ids were received later.
    #[serde(skip)]
    pub seq: i64,
    pub event_id: String,
    pub issue_id: IssueId,
    pub time: Timestamp,
    pub received: Timestamp,
    pub level: String,
    pub title: String,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub trace_id: Option<String>,
    pub job_id: Option<String>,
    pub user: Option<String>,
}

const EVENT_COLS: &str = "id, event_id, issue_id, time, received, level, title, environment, \
    release, trace_id, job_id, user_label";

fn event_from(r: &Vec<Value>) -> Result<EventMeta> {
    Ok(EventMeta {
        seq: r.req_int(0)?,
        event_id: r.req_text(1)?,
        issue_id: IssueId(r.req_int(2)?),
        time: Timestamp(r.req_int(3)?),
        received: Timestamp(r.req_int(4)?),
        level: r.req_text(5)?,
        title: r.req_text(6)?,
        environment: r.text(7)?,
        release: r.text(8)?,
        trace_id: r.text(9)?,
        job_id: r.text(10)?,
        user: r.text(11)?,
    })
}

/// Which events to list; newest first unless `oldest_first`.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub project: ProjectId,
    pub issue: Option<IssueId>,
    pub trace_id: Option<String>,
    pub job_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only events stored before (`before_seq`) or after (`after_seq`) this one.
    pub before_seq: Option<i64>,
    pub after_seq: Option<i64>,
    pub oldest_first: bool,
    pub limit: u32,
}

pub(crate) async fn events(tx: &mut dyn Tx, f: &EventFilter) -> Result<Vec<EventMeta>> {
    let mut w = Where::new();
    w.push("project_id = ?", f.project.0);
    if let Some(issue) = f.issue {
        w.push("issue_id = ?", issue);
    }
    w.equals("trace_id", f.trace_id.as_deref());
    w.equals("job_id", f.job_id.as_deref());
    w.time_range("time", f.since, f.until);
    if let Some(seq) = f.before_seq {
        w.push("id < ?", seq);
    }
    if let Some(seq) = f.after_seq {
        w.push("id > ?", seq);
    }
    let order = if f.oldest_first { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events{} ORDER BY id {order} LIMIT {}",
        w.sql(),
        f.limit.clamp(1, 1000)
    );
    tx.all(&sql, &w.values, event_from).await
}

/// An event's summary and its JSON body, by event id.
pub(crate) async fn event(
    tx: &mut dyn Tx,
    project: ProjectId,
    event_id: &str,
) -> Result<Option<(EventMeta, Vec<u8>)>> {
    let rows = tx
        .query(
            &format!(
                "SELECT {EVENT_COLS}, body FROM events WHERE project_id = $1 AND event_id = $2"
            ),
            &[project.0.into(), event_id.into()],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some((
        event_from(row)?,
        decompress_body(&row.req_blob(12)?)?,
    )))
}

// --- performance ---

/// A transaction name's figures over a period: merged minutes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransactionStats {
    pub name: String,
    pub op: String,
    pub count: i64,
    pub failures: i64,
    pub satisfied: i64,
    pub tolerated: i64,
    pub sketch: Sketch,
    /// The first and last minute with a transaction (ms), when read by [`transactions`]: the
    /// span over which a rate per minute means something.
    pub active: Option<(Timestamp, Timestamp)>,
    /// How many in each equal slice of the period read, oldest first, when
    /// [`transactions`] was asked for slices (empty otherwise): an endpoint's sparkline, read
    /// with its figures rather than by a query per endpoint.
    pub counts: Vec<i64>,
}

impl TransactionStats {
    /// The figures of `name` over every part of a series: the whole period at once.
    pub fn sum<'a>(name: &str, parts: impl IntoIterator<Item = &'a TransactionStats>) -> Self {
        let mut whole = TransactionStats {
            name: name.to_string(),
            ..TransactionStats::default()
        };
        for part in parts {
            whole.merge(part);
        }
        whole
    }

    /// Adds `other`'s figures (of the same name, another time or operation).
    pub fn merge(&mut self, other: &TransactionStats) {
        self.count += other.count;
        self.failures += other.failures;
        self.satisfied += other.satisfied;
        self.tolerated += other.tolerated;
        self.sketch.merge(&other.sketch);
        self.active = match (self.active, other.active) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
        if self.counts.is_empty() {
            self.counts = other.counts.clone();
        } else if self.counts.len() == other.counts.len() {
            for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
                *mine += theirs;
            }
        }
    }

    /// Transactions per minute while it was active: from its first minute to its last (a
    /// burst of 50 in one minute reads 50/min, not 50 spread over the whole day).
    pub fn per_minute(&self) -> f64 {
        let minutes = match self.active {
            Some((first, last)) => (last.0 - first.0) / 60_000 + 1,
            None => 1,
        };
        self.count as f64 / minutes.max(1) as f64
    }

    fn add(&mut self, row: &Vec<Value>, first: usize) -> Result<()> {
        self.count += row.req_int(first)?;
        self.failures += row.req_int(first + 1)?;
        self.satisfied += row.req_int(first + 2)?;
        self.tolerated += row.req_int(first + 3)?;
        self.sketch.merge(&sketch_from(&row.req_blob(first + 4)?)?);
        Ok(())
    }
}

/// Every transaction name seen in `[since, until)`, merged over the period, busiest first.
pub(crate) async fn transactions(
    tx: &mut dyn Tx,
    project: ProjectId,
    since: Timestamp,
    until: Timestamp,
    buckets: usize,
) -> Result<Vec<TransactionStats>> {
    let slice = (until.millis() - since.millis()).max(1) as f64 / buckets.max(1) as f64;
    let rows = tx
        .query(
            "SELECT name, op, count, failures, satisfied, tolerated, sketch, minute \
             FROM transaction_minutes WHERE project_id = $1 AND minute >= $2 AND minute < $3",
            &[
                project.0.into(),
                since.millis().into(),
                until.millis().into(),
            ],
        )
        .await?;
    let mut by_name: BTreeMap<(String, String), TransactionStats> = BTreeMap::new();
    for row in &rows {
        let key = (row.req_text(0)?, row.req_text(1)?);
        let stats = by_name
            .entry(key.clone())
            .or_insert_with(|| TransactionStats {
                name: key.0,
                op: key.1,
                counts: vec![0; buckets],
                ..TransactionStats::default()
            });
        stats.add(row, 2)?;
        let minute = Timestamp(row.req_int(7)?);
        let at = ((minute.millis() - since.millis()) as f64 / slice) as usize;
        if let Some(count) = stats.counts.get_mut(at) {
            *count += row.req_int(2)?;
        }
        stats.active = Some(match stats.active {
            Some((first, last)) => (first.min(minute), last.max(minute)),
            None => (minute, minute),
        });
    }
    let mut list: Vec<TransactionStats> = by_name.into_values().collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
    Ok(list)
}

/// One transaction name's figures per `step_ms` bucket in `[since, until)`, all ops merged:
/// `(bucket start, stats)`, oldest first, empty buckets left out.
pub(crate) async fn transaction_series(
    tx: &mut dyn Tx,
    project: ProjectId,
    name: &str,
    since: Timestamp,
    until: Timestamp,
    step_ms: i64,
) -> Result<Vec<(Timestamp, TransactionStats)>> {
    let rows = tx
        .query(
            "SELECT minute, count, failures, satisfied, tolerated, sketch \
             FROM transaction_minutes WHERE project_id = $1 AND name = $2 AND minute >= $3 \
             AND minute < $4",
            &[
                project.0.into(),
                name.into(),
                since.millis().into(),
                until.millis().into(),
            ],
        )
        .await?;
    let step = step_ms.max(60_000);
    let mut buckets: BTreeMap<i64, TransactionStats> = BTreeMap::new();
    for row in &rows {
        let minute = row.req_int(0)?;
        let start = since.millis() + (minute - since.millis()).div_euclid(step) * step;
        let stats = buckets.entry(start).or_insert_with(|| TransactionStats {
            name: name.to_string(),
            ..TransactionStats::default()
        });
        stats.add(row, 1)?;
        let minute = Timestamp(minute);
        stats.active = Some(match stats.active {
            Some((first, last)) => (first.min(minute), last.max(minute)),
            None => (minute, minute),
        });
    }
    Ok(buckets
        .into_iter()
        .map(|(t, s)| (Timestamp(t), s))
        .collect())
}

/// A transaction kept whole.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleMeta {
    pub event_id: String,
    pub name: String,
    pub op: String,
    pub time: Timestamp,
    pub duration_ms: f64,
    pub status: String,
    pub trace_id: Option<String>,
    pub job_id: Option<String>,
}

const SAMPLE_COLS: &str = "event_id, name, op, time, duration_ms, status, trace_id, job_id";

fn sample_from(r: &Vec<Value>) -> Result<SampleMeta> {
    Ok(SampleMeta {
        event_id: r.req_text(0)?,
        name: r.req_text(1)?,
        op: r.req_text(2)?,
        time: Timestamp(r.req_int(3)?),
        duration_ms: r.real(4)?.unwrap_or(0.0),
        status: r.req_text(5)?,
        trace_id: r.text(6)?,
        job_id: r.text(7)?,
    })
}

/// Kept samples of a transaction name (all names when `None`), slowest first.
pub(crate) async fn transaction_samples(
    tx: &mut dyn Tx,
    project: ProjectId,
    name: Option<&str>,
    since: Timestamp,
    until: Option<Timestamp>,
    limit: u32,
) -> Result<Vec<SampleMeta>> {
    let mut w = Where::new();
    w.push("project_id = ?", project.0);
    w.equals("name", name);
    w.push("time >= ?", since.millis());
    if let Some(until) = until {
        w.push("time < ?", until.millis());
    }
    tx.all(
        &format!(
            "SELECT {SAMPLE_COLS} FROM transaction_samples{} \
             ORDER BY duration_ms DESC LIMIT {}",
            w.sql(),
            limit.clamp(1, 1000)
        ),
        &w.values,
        sample_from,
    )
    .await
}

/// Most samples read of one trace: a trace is a request and what it called, a handful.
const TRACE_SAMPLES: i64 = 20;

pub(crate) async fn trace_samples(
    tx: &mut dyn Tx,
    project: ProjectId,
    trace_id: &str,
) -> Result<Vec<SampleMeta>> {
    tx.all(
        &format!(
            "SELECT {SAMPLE_COLS} FROM transaction_samples WHERE project_id = $1 \
             AND trace_id = $2 ORDER BY time LIMIT $3"
        ),
        &[project.0.into(), trace_id.into(), TRACE_SAMPLES.into()],
        sample_from,
    )
    .await
}

pub(crate) async fn transaction_sample(
    tx: &mut dyn Tx,
    project: ProjectId,
    event_id: &str,
) -> Result<Option<(SampleMeta, Vec<u8>)>> {
    let rows = tx
        .query(
            &format!(
                "SELECT {SAMPLE_COLS}, body FROM transaction_samples \
                 WHERE project_id = $1 AND event_id = $2"
            ),
            &[project.0.into(), event_id.into()],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let body = decompress_body(&row.req_blob(8)?)?;
    let body = with_stray_spans(tx, project, body).await?;
    Ok(Some((sample_from(row)?, body)))
}

/// The sample's body with the spans of its segment that came in other requests (see
/// `stray_spans`) among its own `spans`; unchanged when there are none or it is not JSON.
async fn with_stray_spans(tx: &mut dyn Tx, project: ProjectId, body: Vec<u8>) -> Result<Vec<u8>> {
    let Ok(mut event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Ok(body);
    };
    let trace = &event["contexts"]["trace"];
    let (Some(trace_id), Some(segment_id)) =
        (trace["trace_id"].as_str(), trace["span_id"].as_str())
    else {
        return Ok(body);
    };
    let rows = tx
        .query(
            "SELECT body FROM stray_spans WHERE project_id = $1 AND trace_id = $2 \
             AND segment_id = $3 ORDER BY time LIMIT $4",
            &[
                project.0.into(),
                trace_id.into(),
                segment_id.into(),
                (STRAY_SPANS_PER_SEGMENT as i64).into(),
            ],
        )
        .await?;
    if rows.is_empty() {
        return Ok(body);
    }
    let Some(spans) = event
        .as_object_mut()
        .map(|e| e.entry("spans").or_insert_with(|| serde_json::json!([])))
        .and_then(serde_json::Value::as_array_mut)
    else {
        return Ok(body);
    };
    for row in rows {
        let stray: serde_json::Value =
            match serde_json::from_slice(&decompress_body(&row.req_blob(0)?)?) {
                Ok(v) => v,
                Err(_) => continue,
            };
        // A span the SDK sent twice (a retried envelope) is shown once.
        if !spans.iter().any(|s| s["span_id"] == stray["span_id"]) {
            spans.push(stray);
        }
    }
    Ok(serde_json::to_vec(&event).unwrap_or(body))
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanStat {
    pub op: String,
    pub description: String,
    pub count: i64,
    pub total_ms: f64,
    pub max_ms: f64,
}

/// The spans of a transaction name since `since`, most total time first.
pub(crate) async fn span_stats(
    tx: &mut dyn Tx,
    project: ProjectId,
    name: &str,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<SpanStat>> {
    tx.query(
        &format!(
            "SELECT op, description, CAST(sum(count) AS BIGINT), sum(total_ms), max(max_ms) \
             FROM span_hours WHERE project_id = $1 AND name = $2 AND hour >= $3 \
             GROUP BY op, description ORDER BY sum(total_ms) DESC LIMIT {}",
            limit.clamp(1, 1000)
        ),
        &[project.0.into(), name.into(), since.millis().into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SpanStat {
            op: r.req_text(0)?,
            description: r.req_text(1)?,
            count: r.req_int(2)?,
            total_ms: r.real(3)?.unwrap_or(0.0),
            max_ms: r.real(4)?.unwrap_or(0.0),
        })
    })
    .collect()
}

// --- release health, dropped events, check-ins, attachments ---

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReleaseHealth {
    pub release: String,
    pub started: i64,
    pub errored: i64,
    pub crashed: i64,
    pub abnormal: i64,
    /// Ended by an uncaught error that did not crash the program (browsers): not a crash.
    pub unhandled: i64,
    pub last_seen: Timestamp,
    /// Users seen in its sessions (those the SDK named by `did`).
    pub users: i64,
    /// Of them, those with a crashed session.
    pub crashed_users: i64,
}

impl ReleaseHealth {
    /// Share of sessions that did not crash, `None` without sessions.
    pub fn crash_free(&self) -> Option<f64> {
        share_without(self.crashed, self.started)
    }

    /// Share of users none of whose sessions crashed, `None` without named users.
    pub fn crash_free_users(&self) -> Option<f64> {
        share_without(self.crashed_users, self.users)
    }

    /// Share of sessions that ended on an uncaught error, `None` without sessions.
    pub fn unhandled_share(&self) -> Option<f64> {
        (self.started > 0).then(|| self.unhandled.min(self.started) as f64 / self.started as f64)
    }
}

/// `1 - part / whole`: the share of `whole` that is not `part`; `None` when `whole` is 0.
pub fn share_without(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| 1.0 - part.min(whole) as f64 / whole as f64)
}

/// Sessions per release since `since`, newest release first, with their users (counted
/// from the day `since` falls in). Sessions are kept per hour: the hour `since` falls in
/// counts whole. Cut at `since` instead, a window ending now would lose the hour a crash fell
/// in as the clock turned the hour: a crash-free alert fired at 04:59 resolved at 05:00 with
/// nothing mended.
pub(crate) async fn release_health(
    tx: &mut dyn Tx,
    project: ProjectId,
    since: Timestamp,
) -> Result<Vec<ReleaseHealth>> {
    let mut health = tx
        .query(
            "SELECT release, CAST(sum(started) AS BIGINT), CAST(sum(errored) AS BIGINT), \
             CAST(sum(crashed) AS BIGINT), CAST(sum(abnormal) AS BIGINT), max(hour), \
             CAST(sum(unhandled) AS BIGINT) \
             FROM release_hours WHERE project_id = $1 AND hour >= $2 \
             GROUP BY release ORDER BY max(hour) DESC, release",
            &[project.0.into(), floor(since, HOUR_MS).into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(ReleaseHealth {
                release: r.req_text(0)?,
                started: r.req_int(1)?,
                errored: r.req_int(2)?,
                crashed: r.req_int(3)?,
                abnormal: r.req_int(4)?,
                last_seen: Timestamp(r.req_int(5)?),
                unhandled: r.req_int(6)?,
                users: 0,
                crashed_users: 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let users = tx
        .query(
            "SELECT release, CAST(count(DISTINCT user_hash) AS BIGINT), \
             CAST(count(DISTINCT CASE WHEN crashed > 0 THEN user_hash END) AS BIGINT) \
             FROM release_users WHERE project_id = $1 AND day >= $2 GROUP BY release",
            &[project.0.into(), floor(since, DAY_MS).into()],
        )
        .await?;
    for row in users {
        let release = row.req_text(0)?;
        if let Some(h) = health.iter_mut().find(|h| h.release == release) {
            h.users = row.req_int(1)?;
            h.crashed_users = row.req_int(2)?;
        }
    }
    Ok(health)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DroppedCount {
    pub reason: String,
    pub category: String,
    pub quantity: i64,
}

/// What was dropped since `since`, by reason and category, largest first. Drops are kept per
/// hour, and the hour `since` falls in counts whole, as in [`release_health`]: cut at
/// `since`, a drop would leave "the last 24 hours" up to an hour early.
pub(crate) async fn dropped(
    tx: &mut dyn Tx,
    project: ProjectId,
    since: Timestamp,
) -> Result<Vec<DroppedCount>> {
    tx.query(
        "SELECT reason, category, CAST(sum(quantity) AS BIGINT) FROM dropped_hours \
         WHERE project_id = $1 AND hour >= $2 GROUP BY reason, category \
         ORDER BY sum(quantity) DESC, reason, category",
        &[project.0.into(), floor(since, HOUR_MS).into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(DroppedCount {
            reason: r.req_text(0)?,
            category: r.req_text(1)?,
            quantity: r.req_int(2)?,
        })
    })
    .collect()
}

/// One piece of user feedback, with the issue of the event it is about when that event is
/// stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Feedback {
    pub event_id: String,
    pub time: Timestamp,
    pub message: String,
    pub name: Option<String>,
    pub contact_email: Option<String>,
    pub url: Option<String>,
    pub associated_event_id: Option<String>,
    pub issue_id: Option<IssueId>,
    pub issue_title: Option<String>,
}

/// A project's feedback, newest first; only that about `issue`'s events when given.
pub(crate) async fn feedback(
    tx: &mut dyn Tx,
    project: ProjectId,
    issue: Option<IssueId>,
    limit: u32,
) -> Result<Vec<Feedback>> {
    let mut filter = Where::new();
    filter.push("f.project_id = ?", project.0);
    if let Some(issue) = issue {
        filter.push("e.issue_id = ?", issue);
    }
    let sql = format!(
        "SELECT f.event_id, f.time, f.message, f.name, f.contact_email, f.url, \
         f.associated_event_id, e.issue_id, i.title FROM feedback f \
         LEFT JOIN events e ON e.project_id = f.project_id \
         AND e.event_id = f.associated_event_id \
         LEFT JOIN issues i ON i.id = e.issue_id {} ORDER BY f.time DESC, f.event_id LIMIT {}",
        filter.sql(),
        limit
    );
    tx.query(&sql, &filter.values)
        .await?
        .iter()
        .map(|r| {
            Ok(Feedback {
                event_id: r.req_text(0)?,
                time: Timestamp(r.req_int(1)?),
                message: r.req_text(2)?,
                name: r.text(3)?,
                contact_email: r.text(4)?,
                url: r.text(5)?,
                associated_event_id: r.text(6)?,
                issue_id: r.int(7)?.map(IssueId),
                issue_title: r.text(8)?,
            })
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachmentMeta {
    pub id: i64,
    pub event_id: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
}

fn attachment_from(r: &Vec<Value>) -> Result<AttachmentMeta> {
    Ok(AttachmentMeta {
        id: r.req_int(0)?,
        event_id: r.req_text(1)?,
        name: r.req_text(2)?,
        content_type: r.req_text(3)?,
        size: r.req_int(4)?,
    })
}

pub(crate) async fn attachments(
    tx: &mut dyn Tx,
    project: ProjectId,
    event_id: &str,
) -> Result<Vec<AttachmentMeta>> {
    tx.all(
        "SELECT id, event_id, name, content_type, size FROM attachments \
         WHERE project_id = $1 AND event_id = $2 ORDER BY id",
        &[project.0.into(), event_id.into()],
        attachment_from,
    )
    .await
}

pub(crate) async fn attachment(
    tx: &mut dyn Tx,
    project: ProjectId,
    id: i64,
) -> Result<Option<(AttachmentMeta, Vec<u8>)>> {
    let rows = tx
        .query(
            "SELECT id, event_id, name, content_type, size, data FROM attachments \
             WHERE project_id = $1 AND id = $2",
            &[project.0.into(), id.into()],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some((attachment_from(row)?, row.req_blob(5)?)))
}
