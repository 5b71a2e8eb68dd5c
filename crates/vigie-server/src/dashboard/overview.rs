//! What the dashboard shows of one project: the day's work at a glance.
//!
//! Every figure comes from an index or an aggregate the other pages already use (job and item
//! counts, hourly issue counts, transaction sketches, log block summaries), so the dashboard
//! costs a handful of small queries; it is read again when the project's jobs, issues or
//! monitors change (at most once a second, `/live/dashboard`).

use crate::http::AppError;
use crate::jobs::api::{list_jobs_for, JobView};
use crate::state::AppState;
use crate::web::chart::{self, Bar};
use vigie_core::job::ItemCounts;
use vigie_core::monitor::MonitorState;
use vigie_core::{JobStatus, LogQuery, ProjectId, Timestamp};
use vigie_store::errors::TransactionStats;
use vigie_store::{IssueFilter, IssueSort, ItemFilter, JobFilter};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// One transaction name's figure in a top-5 list.
pub struct Ranked {
    pub name: String,
    pub value: String,
}

pub struct Overview {
    pub items_day: ItemCounts,
    pub items_week: ItemCounts,
    pub running: Vec<JobView>,
    pub running_total: u64,
    pub completed_day: u64,
    pub failed_day: u64,
    pub stalled: u64,
    pub new_issues_day: usize,
    pub error_events_day: i64,
    /// Error events per hour over the last 24 hours, as bars.
    pub error_bars: Vec<Bar>,
    pub transactions_day: u64,
    pub mean_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub hottest: Vec<Ranked>,
    pub slowest: Vec<Ranked>,
    /// Sessions started in 24 h (release health): the active users of the SDKs that send them.
    pub sessions_day: i64,
    /// Log lines in 24 h per level (the `Level` order) and per hour, as bars.
    pub logs_per_level: Vec<(&'static str, u64)>,
    pub log_bars: Vec<Bar>,
    pub monitors: (usize, usize, usize),
    /// Each section's card.
    pub activity: Vec<Activity>,
}

impl Overview {
    pub async fn gather(state: &AppState, project: ProjectId) -> Result<Overview, AppError> {
        let now = Timestamp::now();
        let day = Timestamp(now.millis() - DAY_MS);
        let week = Timestamp(now.millis() - 7 * DAY_MS);
        let store = state.store.as_ref();

        let items = |since| ItemFilter {
            project,
            since: Some(since),
            limit: 1,
            with_counts: true,
            ..Default::default()
        };
        let items_day = store.list_items(&items(day)).await?.counts;
        let items_week = store.list_items(&items(week)).await?.counts;

        let jobs = |status, since| JobFilter {
            project,
            status: Some(status),
            since,
            limit: 8,
            ..Default::default()
        };
        let running = list_jobs_for(state, &jobs(JobStatus::Running, None)).await?;
        let completed_day = store
            .list_jobs(&jobs(JobStatus::Completed, Some(day)))
            .await?
            .total;
        let failed_day = store
            .list_jobs(&jobs(JobStatus::Failed, Some(day)))
            .await?
            .total;
        let stalled = store
            .list_jobs(&jobs(JobStatus::Stalled, None))
            .await?
            .total;

        // Issues seen in 24 h: the new ones among them, and their events per hour.
        let seen = store
            .list_issues(&IssueFilter {
                project,
                since: Some(day),
                sort: IssueSort::FirstSeen,
                limit: 1000,
                ..Default::default()
            })
            .await?;
        let new_issues_day = seen.issues.iter().filter(|i| i.first_seen >= day).count();
        let start = (now.millis().div_euclid(HOUR_MS) + 1) * HOUR_MS - DAY_MS;
        let hours = store
            .issue_hours(seen.issues.iter().map(|i| i.id).collect(), Timestamp(start))
            .await?;
        let mut per_hour = vec![0i64; 24];
        for (_, hour, n) in hours {
            if let Some(slot) = per_hour.get_mut(((hour - start) / HOUR_MS) as usize) {
                *slot += n;
            }
        }
        let error_events_day = per_hour.iter().sum();
        let error_bars = chart::bars(&per_hour, 240.0, 48.0, |i, n| {
            format!("{} h ago: {n} error events", 23 - i)
        });

        let stats = store.transactions(project, day, now, 0).await?;
        let (transactions_day, mean_ms, p95_ms) = overall(&stats);
        let mut by_count: Vec<&TransactionStats> = stats.iter().collect();
        by_count.sort_by_key(|s| std::cmp::Reverse(s.count));
        let hottest = by_count
            .iter()
            .take(5)
            .map(|s| Ranked {
                name: s.name.clone(),
                value: crate::web::format::count(s.count, "request", "requests"),
            })
            .collect();
        let mut by_p95: Vec<(&TransactionStats, f64)> = stats
            .iter()
            .filter_map(|s| s.sketch.quantile(0.95).map(|p| (s, p)))
            .collect();
        by_p95.sort_by(|a, b| b.1.total_cmp(&a.1));
        let slowest = by_p95
            .iter()
            .take(5)
            .map(|(s, p)| Ranked {
                name: s.name.clone(),
                value: format!("p95 {p:.0} ms"),
            })
            .collect();

        let sessions_day = store
            .release_health(project, day)
            .await?
            .iter()
            .map(|r| r.started)
            .sum();

        let logs = vigie_store::logs::stats(
            store,
            project,
            &LogQuery {
                terms: Vec::new(),
                from: Some(start * 1_000_000),
                to: Some((start + DAY_MS) * 1_000_000),
            },
            24,
        )
        .await?;
        let logs_per_level = vigie_core::Level::ALL
            .iter()
            .zip(logs.per_level)
            .filter(|(_, n)| *n > 0)
            .map(|(l, n)| (l.as_str(), n))
            .collect();
        let log_counts: Vec<i64> = logs.buckets.iter().map(|n| *n as i64).collect();
        let log_bars = chart::bars(&log_counts, 240.0, 48.0, |i, n| {
            format!("{} h ago: {n} log lines", 23 - i.min(23))
        });

        let now_state = |m: &vigie_store::Monitor| m.state_at(now);
        let monitors = store.list_monitors(project).await?;
        let count = |s: MonitorState| monitors.iter().filter(|m| now_state(m) == s).count();
        let activity = Activity::gather(state, project, &stats, &monitors).await?;
        Ok(Overview {
            items_day,
            items_week,
            running_total: running.total,
            running: running.jobs,
            completed_day,
            failed_day,
            stalled,
            new_issues_day,
            error_events_day,
            error_bars,
            transactions_day,
            mean_ms,
            p95_ms,
            hottest,
            slowest,
            sessions_day,
            logs_per_level,
            log_bars,
            monitors: (
                count(MonitorState::Up),
                count(MonitorState::Late),
                count(MonitorState::Down),
            ),
            activity,
        })
    }

    /// Whether the project has reported anything at all (else the page shows how to start).
    pub fn is_empty(&self) -> bool {
        self.items_week.ok + self.items_week.error + self.items_week.skipped == 0
            && self.running_total + self.completed_day + self.failed_day + self.stalled == 0
            && self.error_events_day == 0
            && self.transactions_day == 0
            && self.logs_per_level.is_empty()
            && self.monitors == (0, 0, 0)
    }

    /// `ok / (ok + error)` as a percentage, for "success rate".
    pub fn success_rate(counts: &ItemCounts) -> Option<f64> {
        let done = counts.ok + counts.error;
        (done > 0).then(|| counts.ok as f64 * 100.0 / done as f64)
    }
}

/// What a section's card on the dashboard says: how much it holds, and when it last heard
/// something (shown relative, exact on hover).
pub struct Activity {
    /// The section's key (`SECTIONS`).
    pub key: &'static str,
    /// "3 jobs", "1,204 log lines": `None` when the section has received nothing.
    pub count: Option<String>,
    pub last: Option<Timestamp>,
}

/// "1 job", "2,041 jobs".
fn counted(n: u64, one: &str, many: &str) -> Option<String> {
    (n > 0).then(|| crate::web::format::count(n, one, many))
}

impl Activity {
    /// Every section's figures, from the indexes and aggregates the section pages read (the
    /// day's transaction figures and the monitors come from [`Overview::gather`], which has
    /// read them already).
    async fn gather(
        state: &AppState,
        project: ProjectId,
        transactions_day: &[TransactionStats],
        monitors: &[vigie_store::Monitor],
    ) -> Result<Vec<Activity>, AppError> {
        let store = state.store.as_ref();
        let jobs_of = |origin| JobFilter {
            project,
            origin: Some(origin),
            limit: 1,
            ..Default::default()
        };
        let reported = store
            .list_jobs(&jobs_of(vigie_core::JobOrigin::Reported))
            .await?;
        let celery = store
            .list_jobs(&jobs_of(vigie_core::JobOrigin::Celery))
            .await?;
        let newest = |page: &vigie_store::JobPage| page.jobs.first().map(|j| j.last_update);

        let sources = store.log_sources(project).await?;
        let lines: u64 = sources.iter().map(|s| s.records).sum();
        let last_line = sources
            .iter()
            .filter_map(|s| s.last_time)
            .max()
            .map(|ns| Timestamp(ns.div_euclid(1_000_000)));

        let issues = store
            .list_issues(&IssueFilter {
                project,
                limit: 1,
                ..Default::default()
            })
            .await?;

        let transactions: u64 = transactions_day.iter().map(|s| s.count as u64).sum();
        // The last minute with a transaction: precise enough for "last 3 min ago".
        let last_transaction = transactions_day
            .iter()
            .filter_map(|s| s.active.map(|(_, last)| last))
            .max();

        let metrics = store.metric_names(project).await?;
        let releases = crate::releases::overview(state, project).await?;

        let rules = store.list_rules(project).await?;
        let last_alert = store
            .list_deliveries(project, 1)
            .await?
            .first()
            .map(|d| d.created_at);

        Ok(vec![
            Activity {
                key: "jobs",
                count: counted(reported.total, "job", "jobs"),
                last: newest(&reported),
            },
            Activity {
                key: "logs",
                count: counted(lines, "log line", "log lines"),
                last: last_line,
            },
            Activity {
                key: "issues",
                count: counted(issues.total, "open issue", "open issues"),
                last: issues.issues.first().map(|i| i.last_seen),
            },
            Activity {
                key: "performance",
                count: counted(transactions, "transaction in 24 h", "transactions in 24 h"),
                last: last_transaction,
            },
            Activity {
                key: "releases",
                count: counted(releases.len() as u64, "release", "releases"),
                last: releases
                    .iter()
                    .filter_map(|r| r.last_event.max(r.created_at))
                    .max(),
            },
            Activity {
                key: "metrics",
                count: counted(metrics.len() as u64, "metric", "metrics"),
                last: metrics.iter().map(|m| m.last_seen).max(),
            },
            Activity {
                key: "celery",
                count: counted(celery.total, "task", "tasks"),
                last: newest(&celery),
            },
            Activity {
                key: "monitors",
                count: counted(monitors.len() as u64, "monitor", "monitors"),
                last: monitors.iter().filter_map(|m| m.last_check_in).max(),
            },
            Activity {
                key: "alerts",
                count: counted(rules.len() as u64, "rule", "rules"),
                last: last_alert,
            },
        ])
    }
}

/// Count, mean and p95 of all transactions together.
fn overall(stats: &[TransactionStats]) -> (u64, Option<f64>, Option<f64>) {
    let mut all: Option<TransactionStats> = None;
    for s in stats {
        match &mut all {
            Some(a) => a.merge(s),
            None => all = Some(s.clone()),
        }
    }
    match all {
        Some(a) => (a.count as u64, a.sketch.mean_ms(), a.sketch.quantile(0.95)),
        None => (0, None, None),
    }
}
