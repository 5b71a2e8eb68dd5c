//! Threshold rules, judged in memory: what arrives is counted into each rule's window as it is
//! stored, and every second the engine asks [`Watches::judge`] which conditions started to
//! hold, still hold (a reminder is due) or cleared.
//!
//! ```text
//! error sink ─ events ───────► IssueEvents (a window per issue), ErrorEvents
//! error sink ─ transactions ─► SlowTransactions (duration sketches), FailingTransactions
//! log sink ─── records ──────► LogMatches (one QuerySet per project tests every rule's query
//!                               at once; a count per rule, the last lines kept)
//! job changes ───────────────► ItemErrors (judged on the job itself, no window)
//! celery batches ────────────► TaskFailures (ended tasks), TaskRuntime (running tasks)
//! celery workers, queues ────► WorkerOffline, QueueLength (read from storage / the broker)
//! stored metric minutes ──────► MetricThreshold (a figure over the window, read every 10 s)
//! stored release health ──────► CrashFreeSessions (sessions per release over the window,
//!                               read every 10 s; an alert per release)
//! judge(now) ─► Verdict: Opened / Reminder / Resolved, with the message ─► the engine fires
//! ```
//!
//! Nothing stored is read again: a rule costs its windows (only buckets that received
//! something) and the time to test what arrives. Windows start empty when Vigie starts; an
//! alert still open in the database from before is resolved by its next firing or clearing.
//!
//! **Several instances.** Every instance counts what it stored itself; one that does not lead
//! hands its buckets over every second ([`Watches::hand_over`] ─▶ `threshold_tallies`), and
//! the leader adds them to its own windows before it judges ([`Watches::take_in`]), so "more
//! than 20 a minute" counts what every instance received. What a killed leader held in its
//! windows is lost with it, as at a restart (the cooldown stored with each rule keeps the next
//! leader from sending an open alert again).

use crate::hub::{OutcomeKind, TaskOutcome};
use crate::sentry::TransactionSample;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use vigie_core::alert::window::{Ratio, Window};
use vigie_core::alert::{
    span_words, Notification, RuleKind, MIN_ITEMS, MIN_SESSIONS, MIN_TASKS, MIN_TRANSACTIONS,
};
use vigie_core::logquery::LogQuery;
use vigie_core::query_set::{QuerySet, Scratch};
use vigie_core::sketch::Sketch;
use vigie_core::{Job, LogRecord, ProjectId};
use vigie_store::errors::EventWritten;
use vigie_store::{Firing, Rule};

/// Log lines kept per rule as the alert's evidence.
const EVIDENCE_LINES: usize = 5;

/// What the engine must do about one rule and one thing.
#[derive(Debug)]
pub struct Verdict {
    pub rule: Rule,
    pub key: String,
    pub firing: Firing,
    pub message: Notification,
    /// The issue the alert is about, so the engine can add its top frame.
    pub issue: Option<vigie_core::issue::IssueId>,
}

/// What one rule counted on an instance that does not lead, handed to the one that does
/// through the database (`vigie_store::shared`): its windows' buckets, taken out, so each is
/// added in exactly once.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Counted {
    rule: i64,
    counts: Counts,
}

/// A window's buckets as (start in ms, what it holds).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Counts {
    PerIssue {
        issues: Vec<(vigie_core::issue::IssueId, Vec<(i64, u64)>)>,
    },
    Events {
        buckets: Vec<(i64, u64)>,
    },
    /// With the last lines that matched, as evidence.
    Logs {
        buckets: Vec<(i64, u64)>,
        last: Vec<String>,
    },
    /// Duration sketches as `Sketch::encode` writes them.
    Durations {
        buckets: Vec<(i64, Vec<u8>)>,
    },
    /// (start, total, failed).
    Failures {
        buckets: Vec<(i64, u64, u64)>,
    },
}

/// What a rule counts.
enum Gauge {
    PerIssue(HashMap<vigie_core::issue::IssueId, Window<u64>>),
    Events(Window<u64>),
    /// The query itself is in the project's [`ProjectLogs`].
    Logs {
        count: Window<u64>,
        last: VecDeque<String>,
    },
    Durations(Window<Sketch>),
    Failures(Window<Ratio>),
    /// Judged on each job change ([`Watches::judge_job`]).
    Items,
    /// The project's Celery workers as last read, judged every second (a worker goes offline
    /// by saying nothing).
    Workers(Vec<vigie_core::celery::Worker>),
    /// Running Celery tasks: id → (name, started at, ms).
    Running(HashMap<String, (String, i64)>),
    /// Queue lengths as last read from the broker.
    Queues(Vec<crate::celery::queues::QueueLength>),
    /// A metric's figure over the rule's window, as last read from storage (`None` when it
    /// has had no point in the window).
    Metric(Option<f64>),
    /// Each release's sessions over the rule's window, as last read from storage.
    Releases(Vec<vigie_store::errors::ReleaseHealth>),
}

/// A task that never says it ended (its worker was killed, events were lost) is forgotten
/// after this long, so the running set stays bounded.
const FORGET_RUNNING_MS: i64 = 7 * 86_400_000;

struct Watch {
    rule: Rule,
    gauge: Gauge,
    /// Things alerted and not yet cleared, with when the last reminder was considered.
    open: HashMap<String, i64>,
}

impl Watch {
    fn new(rule: Rule) -> Option<Watch> {
        let gauge = match &rule.kind {
            RuleKind::IssueEvents { .. } => Gauge::PerIssue(HashMap::new()),
            RuleKind::ErrorEvents { .. } => Gauge::Events(Window::new(60)),
            RuleKind::LogMatches { window_s, .. } => Gauge::Logs {
                count: Window::new(*window_s),
                last: VecDeque::new(),
            },
            RuleKind::SlowTransactions { window_s, .. } => Gauge::Durations(Window::new(*window_s)),
            RuleKind::FailingTransactions { window_s, .. } => {
                Gauge::Failures(Window::new(*window_s))
            }
            RuleKind::ItemErrors { .. } => Gauge::Items,
            RuleKind::WorkerOffline { .. } => Gauge::Workers(Vec::new()),
            RuleKind::TaskFailures { window_s, .. } => Gauge::Failures(Window::new(*window_s)),
            RuleKind::TaskRuntime { .. } => Gauge::Running(HashMap::new()),
            RuleKind::QueueLength { .. } => Gauge::Queues(Vec::new()),
            RuleKind::MetricThreshold { .. } => Gauge::Metric(None),
            RuleKind::CrashFreeSessions { .. } => Gauge::Releases(Vec::new()),
            _ => return None,
        };
        Some(Watch {
            rule,
            gauge,
            open: HashMap::new(),
        })
    }

    fn in_environment(&self, environment: Option<&str>) -> bool {
        match (&self.rule.environment, environment) {
            (Some(wanted), Some(env)) => wanted == env,
            _ => true,
        }
    }

    /// Moves `key` to `holds`, answering what to send (muted rules still count, but do not
    /// open alerts).
    fn transition(&mut self, key: &str, holds: bool, now_ms: i64) -> Option<Firing> {
        let muted = self.rule.muted_at(vigie_core::Timestamp(now_ms));
        match (holds, self.open.get_mut(key)) {
            (true, None) if !muted => {
                self.open.insert(key.to_string(), now_ms);
                Some(Firing::Opened {
                    cooldown_s: self.rule.cooldown_s,
                })
            }
            (true, Some(considered))
                if !muted
                    && self.rule.renotify_s > 0
                    && now_ms - *considered >= self.rule.renotify_s * 1000 =>
            {
                *considered = now_ms;
                Some(Firing::Reminder {
                    renotify_s: self.rule.renotify_s,
                })
            }
            (false, Some(_)) => {
                self.open.remove(key);
                Some(Firing::Resolved)
            }
            _ => None,
        }
    }
}

/// Every project's threshold rules with their windows.
#[derive(Default)]
pub struct Watches {
    by_project: HashMap<ProjectId, Vec<Watch>>,
    logs: HashMap<ProjectId, ProjectLogs>,
    /// When queue lengths were last read.
    queues_read: Option<std::time::Instant>,
    /// When metric rules' figures were last read.
    metrics_read: Option<std::time::Instant>,
}

/// A project's log rules: their queries as one set, and which watch each query belongs to.
struct ProjectLogs {
    set: QuerySet,
    watch_of: Vec<usize>,
}

impl ProjectLogs {
    fn of(watches: &[Watch]) -> Option<ProjectLogs> {
        let mut queries = Vec::new();
        let mut watch_of = Vec::new();
        for (i, watch) in watches.iter().enumerate() {
            if let RuleKind::LogMatches { query, .. } = &watch.rule.kind {
                // Checked when saved; a rule that no longer parses counts nothing.
                if let Ok(parsed) = LogQuery::parse(query, 0) {
                    queries.push((query.clone(), parsed));
                    watch_of.push(i);
                }
            }
        }
        (!queries.is_empty()).then(|| ProjectLogs {
            set: QuerySet::new(queries),
            watch_of,
        })
    }
}

impl Watches {
    /// Takes the current rules, keeping the windows and open alerts of rules that did not
    /// change (muting a rule must not forget what it counted).
    pub fn load(&mut self, rules: Vec<Rule>) {
        let mut old: HashMap<i64, Watch> = self
            .by_project
            .drain()
            .flat_map(|(_, watches)| watches)
            .map(|w| (w.rule.id, w))
            .collect();
        for rule in rules.into_iter().filter(|r| r.kind.is_threshold()) {
            let watch = match old.remove(&rule.id) {
                Some(mut kept)
                    if kept.rule.kind == rule.kind && kept.rule.environment == rule.environment =>
                {
                    kept.rule = rule;
                    kept
                }
                _ => match Watch::new(rule) {
                    Some(watch) => watch,
                    None => continue,
                },
            };
            self.by_project
                .entry(watch.rule.project)
                .or_default()
                .push(watch);
        }
        self.logs = self
            .by_project
            .iter()
            .filter_map(|(project, watches)| Some((*project, ProjectLogs::of(watches)?)))
            .collect();
    }

    pub fn rules(&self) -> usize {
        self.by_project.values().map(Vec::len).sum()
    }

    fn watches(&mut self, project: ProjectId) -> &mut [Watch] {
        self.by_project
            .get_mut(&project)
            .map_or(&mut [], Vec::as_mut_slice)
    }

    pub fn observe_events(&mut self, project: ProjectId, events: &[EventWritten], now_ms: i64) {
        for watch in self.watches(project) {
            for event in events {
                if !watch.in_environment(event.environment.as_deref()) {
                    continue;
                }
                match &mut watch.gauge {
                    Gauge::PerIssue(issues) => {
                        let RuleKind::IssueEvents { window_s, .. } = watch.rule.kind else {
                            continue;
                        };
                        let window = issues
                            .entry(event.issue_id)
                            .or_insert_with(|| Window::new(window_s));
                        *window.at(now_ms, now_ms).expect("now is in the window") += 1;
                    }
                    Gauge::Events(window) => {
                        *window.at(now_ms, now_ms).expect("now is in the window") += 1;
                    }
                    _ => {}
                }
            }
        }
    }

    pub fn observe_logs(&mut self, project: ProjectId, records: &[LogRecord], now_ms: i64) {
        let (Some(logs), Some(watches)) =
            (self.logs.get(&project), self.by_project.get_mut(&project))
        else {
            return;
        };
        let (mut scratch, mut hits) = (Scratch::default(), Vec::new());
        // Per query, the batch's last few matching records: only those become evidence.
        let mut recent: Vec<VecDeque<usize>> = vec![VecDeque::new(); logs.watch_of.len()];
        for (at, record) in records.iter().enumerate() {
            logs.set.matching(record, &mut scratch, &mut hits);
            for &q in &hits {
                let Gauge::Logs { count, .. } = &mut watches[logs.watch_of[q]].gauge else {
                    continue;
                };
                // Lines older than the window (an imported file) do not count.
                if let Some(n) = count.at(record.time / 1_000_000, now_ms) {
                    *n += 1;
                    if recent[q].len() == EVIDENCE_LINES {
                        recent[q].pop_front();
                    }
                    recent[q].push_back(at);
                }
            }
        }
        for (q, lines) in recent.into_iter().enumerate() {
            if let Gauge::Logs { last, .. } = &mut watches[logs.watch_of[q]].gauge {
                for at in lines {
                    if last.len() == EVIDENCE_LINES {
                        last.pop_front();
                    }
                    last.push_back(evidence_line(&records[at]));
                }
            }
        }
    }

    pub fn observe_transactions(
        &mut self,
        project: ProjectId,
        samples: &[TransactionSample],
        now_ms: i64,
    ) {
        for watch in self.watches(project) {
            let filter = match &watch.rule.kind {
                RuleKind::SlowTransactions { transaction, .. }
                | RuleKind::FailingTransactions { transaction, .. } => transaction.clone(),
                _ => continue,
            };
            for sample in samples {
                if !RuleKind::watches_transaction(&filter, &sample.name) {
                    continue;
                }
                let at = sample.time.millis();
                match &mut watch.gauge {
                    Gauge::Durations(window) => {
                        if let Some(sketch) = window.at(at, now_ms) {
                            sketch.add(sample.duration_ms);
                        }
                    }
                    Gauge::Failures(window) => {
                        if let Some(ratio) = window.at(at, now_ms) {
                            ratio.total += 1;
                            ratio.failed += u64::from(sample.failed);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Celery tasks that started or ended in a batch.
    pub fn observe_tasks(&mut self, project: ProjectId, outcomes: &[TaskOutcome], now_ms: i64) {
        for watch in self.watches(project) {
            let filter = match &watch.rule.kind {
                RuleKind::TaskFailures { task, .. } | RuleKind::TaskRuntime { task, .. } => {
                    task.clone()
                }
                _ => continue,
            };
            for outcome in outcomes {
                let name = outcome.name.as_deref().unwrap_or("");
                if filter.is_some() && !RuleKind::watches_transaction(&filter, name) {
                    continue;
                }
                let at = outcome.at.millis();
                match (&mut watch.gauge, &outcome.kind) {
                    (Gauge::Failures(window), OutcomeKind::Succeeded { .. }) => {
                        if let Some(ratio) = window.at(at, now_ms) {
                            ratio.total += 1;
                        }
                    }
                    (Gauge::Failures(window), OutcomeKind::Failed { .. }) => {
                        if let Some(ratio) = window.at(at, now_ms) {
                            ratio.total += 1;
                            ratio.failed += 1;
                        }
                    }
                    (Gauge::Running(running), OutcomeKind::Started) => {
                        running.insert(outcome.uuid.clone(), (name.to_string(), at));
                    }
                    (Gauge::Running(running), _) => {
                        running.remove(&outcome.uuid);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Queue lengths just read from the broker.
    pub fn observe_queues(
        &mut self,
        project: ProjectId,
        queues: &[crate::celery::queues::QueueLength],
    ) {
        for watch in self.watches(project) {
            if let Gauge::Queues(known) = &mut watch.gauge {
                *known = queues.to_vec();
            }
        }
    }

    /// The metric rules of `project`, for the engine to read their figures.
    pub fn metric_rules(&self, project: ProjectId) -> Vec<Rule> {
        self.rules_with(project, |g| matches!(g, Gauge::Metric(_)))
    }

    /// The crash-free rules of `project`, for the engine to read release health.
    pub fn crash_free_rules(&self, project: ProjectId) -> Vec<Rule> {
        self.rules_with(project, |g| matches!(g, Gauge::Releases(_)))
    }

    fn rules_with(&self, project: ProjectId, is: impl Fn(&Gauge) -> bool) -> Vec<Rule> {
        self.by_project
            .get(&project)
            .into_iter()
            .flatten()
            .filter(|w| is(&w.gauge))
            .map(|w| w.rule.clone())
            .collect()
    }

    /// A crash-free rule's release health just read from storage.
    pub fn observe_releases(
        &mut self,
        project: ProjectId,
        rule: i64,
        health: Vec<vigie_store::errors::ReleaseHealth>,
    ) {
        for watch in self.watches(project) {
            if let (true, Gauge::Releases(known)) = (watch.rule.id == rule, &mut watch.gauge) {
                *known = health.clone();
            }
        }
    }

    /// A metric rule's figure just read from storage.
    pub fn observe_metric(&mut self, project: ProjectId, rule: i64, value: Option<f64>) {
        for watch in self.watches(project) {
            if let (true, Gauge::Metric(known)) = (watch.rule.id == rule, &mut watch.gauge) {
                *known = value;
            }
        }
    }

    /// Whether any rule of `project` watches queue lengths (so the engine reads them).
    pub fn watches_queues(&self, project: ProjectId) -> bool {
        self.any_gauge(project, |g| matches!(g, Gauge::Queues(_)))
    }

    fn any_gauge(&self, project: ProjectId, is: impl Fn(&Gauge) -> bool) -> bool {
        self.by_project
            .get(&project)
            .is_some_and(|w| w.iter().any(|w| is(&w.gauge)))
    }

    /// Whether metric figures are due to be read again (`every` since the last time).
    pub fn metrics_due(&mut self, every: std::time::Duration) -> bool {
        let due = self.metrics_read.is_none_or(|at| at.elapsed() >= every);
        if due {
            self.metrics_read = Some(std::time::Instant::now());
        }
        due
    }

    /// Whether queue lengths are due to be read again (`every` since the last time).
    pub fn queues_due(&mut self, every: std::time::Duration) -> bool {
        let due = self.queues_read.is_none_or(|at| at.elapsed() >= every);
        if due {
            self.queues_read = Some(std::time::Instant::now());
        }
        due
    }

    /// The projects with rules.
    pub fn projects(&self) -> Vec<ProjectId> {
        self.by_project.keys().copied().collect()
    }

    /// The project's Celery workers as they now are (after each batch of events).
    pub fn observe_workers(&mut self, project: ProjectId, workers: &[vigie_core::celery::Worker]) {
        for watch in self.watches(project) {
            if let Gauge::Workers(known) = &mut watch.gauge {
                *known = workers.to_vec();
            }
        }
    }

    /// Whether any rule of `project` watches workers (so the engine reads them).
    pub fn watches_workers(&self, project: ProjectId) -> bool {
        self.any_gauge(project, |g| matches!(g, Gauge::Workers(_)))
    }

    /// The item-error rules of the job's project, judged on the job as it is now.
    pub fn judge_job(&mut self, job: &Job, link: &str, now_ms: i64) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for watch in self.watches(job.project) {
            let RuleKind::ItemErrors { job_kind, percent } = watch.rule.kind.clone() else {
                continue;
            };
            if job_kind.is_some() && job_kind != job.kind
                || !watch.in_environment(job.flow.as_deref())
            {
                continue;
            }
            let ratio = Ratio {
                total: job.processed.max(0) as u64,
                failed: job.failed.max(0) as u64,
            };
            let key = format!("job:{}", job.id);
            // A finished job's ratio is final: its alert is forgotten, not "resolved" (how the
            // job ended is other rules' news).
            if job.finished_at.is_some() {
                watch.open.remove(&key);
                continue;
            }
            let holds = job.processed >= MIN_ITEMS && ratio.above(percent);
            let Some(firing) = watch.transition(&key, holds, now_ms) else {
                continue;
            };
            let title = match firing {
                Firing::Resolved => format!("Resolved: item errors of {}", job.name),
                _ => format!(
                    "{:.0} % of items failed in {} (over {percent} %)",
                    ratio.percent(),
                    job.name
                ),
            };
            let mut facts = vec![("Progress".to_string(), job.progress_words())];
            if let Some(kind) = &job.kind {
                facts.push(("Kind".into(), kind.clone()));
            }
            verdicts.push(Verdict {
                rule: watch.rule.clone(),
                message: message(
                    title,
                    facts,
                    format!("{link}/jobs/{}", job.id),
                    None,
                    firing,
                ),
                key,
                firing,
                issue: None,
            });
        }
        verdicts
    }

    /// Takes out what the windows counted since the last hand-over, for the leader (see
    /// [`Counted`]); the windows are left empty. Only counts that stay right when added up
    /// elsewhere are handed over: events, log lines, transactions.
    pub fn hand_over(&mut self) -> Vec<Counted> {
        let mut counted = Vec::new();
        for watch in self.by_project.values_mut().flatten() {
            let counts = match &mut watch.gauge {
                Gauge::PerIssue(issues) => {
                    let issues: Vec<_> = issues
                        .drain()
                        .map(|(issue, mut window)| (issue, window.drain()))
                        .collect();
                    (!issues.is_empty()).then_some(Counts::PerIssue { issues })
                }
                Gauge::Events(window) => {
                    let buckets = window.drain();
                    (!buckets.is_empty()).then_some(Counts::Events { buckets })
                }
                Gauge::Logs { count, last } => {
                    let buckets = count.drain();
                    let last: Vec<String> = last.drain(..).collect();
                    (!buckets.is_empty()).then_some(Counts::Logs { buckets, last })
                }
                Gauge::Durations(window) => {
                    let buckets: Vec<_> = window
                        .drain()
                        .into_iter()
                        .map(|(start, sketch)| (start, sketch.encode()))
                        .collect();
                    (!buckets.is_empty()).then_some(Counts::Durations { buckets })
                }
                Gauge::Failures(window) => {
                    let buckets: Vec<_> = window
                        .drain()
                        .into_iter()
                        .map(|(start, r)| (start, r.total, r.failed))
                        .collect();
                    (!buckets.is_empty()).then_some(Counts::Failures { buckets })
                }
                _ => None,
            };
            if let Some(counts) = counts {
                counted.push(Counted {
                    rule: watch.rule.id,
                    counts,
                });
            }
        }
        counted
    }

    /// Adds what another instance counted (see [`Watches::hand_over`]) into these windows at
    /// `now_ms`. Counts of a rule this instance does not know (deleted meanwhile), or whose
    /// kind changed, are dropped: they counted for a rule that is no more.
    pub fn take_in(&mut self, counted: Vec<Counted>, now_ms: i64) {
        for Counted { rule, counts } in counted {
            let Some(watch) = self
                .by_project
                .values_mut()
                .flatten()
                .find(|w| w.rule.id == rule)
            else {
                continue;
            };
            match (counts, &mut watch.gauge) {
                (Counts::PerIssue { issues }, Gauge::PerIssue(windows)) => {
                    let RuleKind::IssueEvents { window_s, .. } = watch.rule.kind else {
                        continue;
                    };
                    for (issue, buckets) in issues {
                        let window = windows
                            .entry(issue)
                            .or_insert_with(|| Window::new(window_s));
                        for (start, n) in buckets {
                            window.add_bucket(start, &n, now_ms);
                        }
                    }
                }
                (Counts::Events { buckets }, Gauge::Events(window)) => {
                    for (start, n) in buckets {
                        window.add_bucket(start, &n, now_ms);
                    }
                }
                (
                    Counts::Logs {
                        buckets,
                        last: lines,
                    },
                    Gauge::Logs { count, last },
                ) => {
                    for (start, n) in buckets {
                        count.add_bucket(start, &n, now_ms);
                    }
                    for line in lines {
                        if last.len() == EVIDENCE_LINES {
                            last.pop_front();
                        }
                        last.push_back(line);
                    }
                }
                (Counts::Durations { buckets }, Gauge::Durations(window)) => {
                    for (start, raw) in buckets {
                        // Written by `Sketch::encode` on another instance of this version.
                        if let Some(sketch) = Sketch::decode(&raw) {
                            window.add_bucket(start, &sketch, now_ms);
                        }
                    }
                }
                (Counts::Failures { buckets }, Gauge::Failures(window)) => {
                    for (start, total, failed) in buckets {
                        window.add_bucket(start, &Ratio { total, failed }, now_ms);
                    }
                }
                _ => {}
            }
        }
    }

    /// Judges every windowed rule at `now_ms`; forgets what left the windows.
    pub fn judge(&mut self, link: &str, now_ms: i64) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for watch in self.by_project.values_mut().flatten() {
            judge_watch(watch, link, now_ms, &mut verdicts);
        }
        verdicts
    }
}

fn judge_watch(watch: &mut Watch, link: &str, now_ms: i64, out: &mut Vec<Verdict>) {
    let kind = watch.rule.kind.clone();
    // (key, holds, title, facts, page, evidence, issue) per thing the rule watches.
    let mut readings: Vec<Reading> = Vec::new();
    match (&kind, &mut watch.gauge) {
        (RuleKind::IssueEvents { above, window_s }, Gauge::PerIssue(issues)) => {
            for (issue, window) in issues.iter_mut() {
                let n = window.total(now_ms);
                readings.push(Reading {
                    key: format!("issue:{issue}"),
                    holds: n > *above,
                    title: format!(
                        "Issue #{issue}: {n} events in {} (over {above})",
                        span_words(*window_s)
                    ),
                    facts: vec![("Events".into(), n.to_string())],
                    page: format!("/issues/{issue}"),
                    evidence: None,
                    issue: Some(*issue),
                });
            }
            issues.retain(|issue, window| {
                !window.is_empty() || watch.open.contains_key(&format!("issue:{issue}"))
            });
        }
        (RuleKind::ErrorEvents { per_minute }, Gauge::Events(window)) => {
            let n = window.total(now_ms);
            readings.push(Reading {
                key: "errors".into(),
                holds: n > *per_minute,
                title: format!("{n} error events in the last minute (over {per_minute})"),
                facts: vec![("Events".into(), n.to_string())],
                page: "/issues".into(),
                evidence: None,
                issue: None,
            });
        }
        (
            RuleKind::LogMatches {
                query,
                above,
                window_s,
            },
            Gauge::Logs { count, last, .. },
        ) => {
            let n = count.total(now_ms);
            readings.push(Reading {
                key: "logs".into(),
                holds: n > *above,
                title: format!(
                    "{n} log lines match {query} in {} (over {above})",
                    span_words(*window_s)
                ),
                facts: vec![("Lines".into(), n.to_string())],
                page: format!(
                    "/logs?q={}",
                    url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
                ),
                evidence: (!last.is_empty())
                    .then(|| last.iter().cloned().collect::<Vec<_>>().join("\n")),
                issue: None,
            });
        }
        (
            RuleKind::SlowTransactions {
                transaction,
                p95_ms,
                window_s,
            },
            Gauge::Durations(window),
        ) => {
            let sketch = window.total(now_ms);
            let p95 = sketch.quantile(0.95).unwrap_or(0.0);
            let what = transaction.as_deref().unwrap_or("transactions");
            readings.push(Reading {
                key: "transactions".into(),
                holds: sketch.count() >= MIN_TRANSACTIONS && p95 > *p95_ms as f64,
                title: format!(
                    "p95 of {what} is {p95:.0} ms over {} (above {p95_ms} ms)",
                    span_words(*window_s)
                ),
                facts: vec![
                    ("p95".into(), format!("{p95:.0} ms")),
                    ("Transactions".into(), sketch.count().to_string()),
                ],
                page: "/performance".into(),
                evidence: None,
                issue: None,
            });
        }
        (
            RuleKind::FailingTransactions {
                transaction,
                percent,
                window_s,
            },
            Gauge::Failures(window),
        ) => {
            let what = transaction.as_deref().unwrap_or("transactions");
            readings.push(failure_reading(
                "transactions",
                window.total(now_ms),
                MIN_TRANSACTIONS,
                (what, *percent, *window_s),
                "/performance".into(),
            ));
        }
        (RuleKind::WorkerOffline { hostname }, Gauge::Workers(workers)) => {
            let now = vigie_core::Timestamp(now_ms);
            for w in workers
                .iter()
                .filter(|w| hostname.is_none() || hostname.as_ref() == Some(&w.hostname))
            {
                let last = w.last_heartbeat.to_rfc3339();
                readings.push(Reading {
                    key: format!("worker:{}", w.hostname),
                    holds: !w.online(now),
                    title: format!("Celery worker {} is offline", w.hostname),
                    facts: vec![
                        ("Last heartbeat".into(), last),
                        ("Processed".into(), w.processed.to_string()),
                    ],
                    page: "/celery/workers".into(),
                    evidence: None,
                    issue: None,
                });
            }
        }
        (
            RuleKind::TaskFailures {
                task,
                percent,
                window_s,
            },
            Gauge::Failures(window),
        ) => {
            let what = task.as_deref().unwrap_or("Celery tasks");
            let page = match task {
                Some(t) if !t.ends_with('*') => format!("/celery?state=FAILURE&name={}", encode(t)),
                _ => "/celery?state=FAILURE".into(),
            };
            readings.push(failure_reading(
                "tasks",
                window.total(now_ms),
                MIN_TASKS,
                (what, *percent, *window_s),
                page,
            ));
        }
        (RuleKind::TaskRuntime { above_s, .. }, Gauge::Running(running)) => {
            running.retain(|_, (_, started)| now_ms - *started < FORGET_RUNNING_MS);
            for (uuid, (name, started)) in running.iter() {
                let minutes = (now_ms - started) / 60_000;
                readings.push(Reading {
                    key: format!("task:{uuid}"),
                    holds: now_ms - started > *above_s as i64 * 1000,
                    title: format!("Celery task {name} has been running for {minutes} min"),
                    facts: vec![
                        ("Task".into(), uuid.clone()),
                        (
                            "Started".into(),
                            vigie_core::Timestamp(*started).to_rfc3339(),
                        ),
                    ],
                    page: format!("/celery/tasks/{}", encode(uuid)),
                    evidence: None,
                    issue: None,
                });
            }
            // Those that ended since they were alerted about: resolved.
            for key in watch.open.keys().filter(|k| !running.contains_key(&k[5..])) {
                readings.push(Reading {
                    key: key.clone(),
                    holds: false,
                    title: String::new(),
                    facts: Vec::new(),
                    page: format!("/celery/tasks/{}", encode(&key[5..])),
                    evidence: None,
                    issue: None,
                });
            }
        }
        // A metric without points in the window (`None`) keeps its state until it reports.
        (
            RuleKind::MetricThreshold {
                metric,
                stat,
                above,
                ..
            },
            Gauge::Metric(Some(v)),
        ) => {
            readings.push(Reading {
                key: format!("metric:{metric}"),
                holds: *v > above.0,
                title: format!("The {stat} of {metric} is {v} (over {})", above.0),
                facts: vec![(format!("{stat}"), v.to_string())],
                page: format!("/charts?metric={}&stat={stat}", encode(metric)),
                evidence: None,
                issue: None,
            });
        }
        (RuleKind::CrashFreeSessions { below, window_s }, Gauge::Releases(releases)) => {
            for h in releases.iter().filter(|h| h.started >= MIN_SESSIONS) {
                let Some(share) = h.crash_free() else {
                    continue;
                };
                let percent = share * 100.0;
                readings.push(Reading {
                    key: format!("release:{}", h.release),
                    holds: percent < below.0,
                    title: format!(
                        "Release {}: {percent:.2} % crash-free sessions over {} (below {} %)",
                        h.release,
                        span_words(*window_s),
                        below.0
                    ),
                    facts: vec![
                        ("Sessions".into(), h.started.to_string()),
                        ("Crashed".into(), h.crashed.to_string()),
                    ],
                    page: crate::web::related::release_link(&h.release),
                    evidence: None,
                    issue: None,
                });
            }
            // A release whose sessions left the window (or fell under the minimum) clears.
            let quiet: Vec<String> = watch
                .open
                .keys()
                .filter(|k| k.starts_with("release:") && !readings.iter().any(|r| &r.key == *k))
                .cloned()
                .collect();
            for key in quiet {
                let release = key["release:".len()..].to_string();
                readings.push(Reading {
                    title: format!(
                        "Release {release}: too few sessions over {} to judge",
                        span_words(*window_s)
                    ),
                    key,
                    holds: false,
                    facts: Vec::new(),
                    page: crate::web::related::release_link(&release),
                    evidence: None,
                    issue: None,
                });
            }
        }
        (RuleKind::QueueLength { queue, above }, Gauge::Queues(queues)) => {
            for q in queues
                .iter()
                .filter(|q| queue.is_none() || queue.as_ref() == Some(&q.name))
            {
                // A queue that could not be read keeps its state until it can.
                let Some(n) = q.messages else { continue };
                readings.push(Reading {
                    key: format!("queue:{}", q.name),
                    holds: n > *above as i64,
                    title: format!(
                        "{n} messages wait in Celery queue {} (over {above})",
                        q.name
                    ),
                    facts: vec![("Messages".into(), n.to_string())],
                    page: "/celery".into(),
                    evidence: None,
                    issue: None,
                });
            }
        }
        _ => {}
    }
    for r in readings {
        let Some(firing) = watch.transition(&r.key, r.holds, now_ms) else {
            continue;
        };
        let title = match firing {
            Firing::Resolved => format!("Resolved: {}", watch.rule.kind.describe()),
            _ => r.title,
        };
        out.push(Verdict {
            rule: watch.rule.clone(),
            message: message(
                title,
                r.facts,
                format!("{link}{}", r.page),
                r.evidence,
                firing,
            ),
            key: r.key,
            firing,
            issue: r.issue,
        });
    }
}

/// A failure ratio over a window (transactions, Celery tasks): holds from `min` things on,
/// above the rule's percentage. `rule` is (what, percent, window_s).
fn failure_reading(
    key: &str,
    ratio: Ratio,
    min: u64,
    (what, percent, window_s): (&str, u32, u64),
    page: String,
) -> Reading {
    Reading {
        key: key.into(),
        holds: ratio.total >= min && ratio.above(percent),
        title: format!(
            "{:.0} % of {what} failed over {} (above {percent} %)",
            ratio.percent(),
            span_words(window_s)
        ),
        facts: vec![(
            "Failed".into(),
            format!("{} of {}", ratio.failed, ratio.total),
        )],
        page,
        evidence: None,
        issue: None,
    }
}

struct Reading {
    key: String,
    holds: bool,
    title: String,
    facts: Vec<(String, String)>,
    page: String,
    evidence: Option<String>,
    issue: Option<vigie_core::issue::IssueId>,
}

fn message(
    title: String,
    mut facts: Vec<(String, String)>,
    link: String,
    evidence: Option<String>,
    firing: Firing,
) -> Notification {
    if let Firing::Reminder { renotify_s } = firing {
        facts.push((
            "Reminder".into(),
            format!(
                "still true; repeated every {}",
                span_words(renotify_s as u64)
            ),
        ));
    }
    Notification {
        title,
        facts,
        link,
        evidence,
        resolved: firing == Firing::Resolved,
        report: false,
    }
}

/// One log line as evidence: time, level, source and the first line of the message.
fn evidence_line(record: &LogRecord) -> String {
    let time = vigie_core::Timestamp(record.time / 1_000_000).to_rfc3339();
    let first = record.message.lines().next().unwrap_or_default();
    let first: String = first.chars().take(300).collect();
    format!("{time} {} {} {first}", record.level.as_str(), record.source)
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::issue::IssueId;
    use vigie_store::errors::IssueChange;

    const P: ProjectId = ProjectId(1);
    const NOW: i64 = 1_800_000_000_000;

    fn rule(id: i64, kind: RuleKind) -> Rule {
        Rule {
            id,
            project: P,
            name: format!("rule {id}"),
            kind,
            environment: None,
            channels: vec![1],
            cooldown_s: 0,
            renotify_s: 0,
            muted_until: None,
            created_at: vigie_core::Timestamp(NOW),
            from_config: false,
        }
    }

    fn rules() -> Vec<Rule> {
        vec![
            rule(1, RuleKind::ErrorEvents { per_minute: 20 }),
            rule(
                2,
                RuleKind::IssueEvents {
                    above: 20,
                    window_s: 300,
                },
            ),
            rule(
                3,
                RuleKind::LogMatches {
                    query: "smtp".into(),
                    above: 20,
                    window_s: 300,
                },
            ),
            rule(
                4,
                RuleKind::SlowTransactions {
                    transaction: None,
                    p95_ms: 500,
                    window_s: 300,
                },
            ),
        ]
    }

    /// What one instance stores: 15 events of issue 7, 15 lines that match, 6 slow
    /// transactions.
    fn receive(watches: &mut Watches, tag: &str) {
        let events: Vec<EventWritten> = (0..15)
            .map(|i| EventWritten {
                event_id: format!("{tag}{i}"),
                issue_id: IssueId(7),
                change: IssueChange::Seen,
                environment: None,
            })
            .collect();
        watches.observe_events(P, &events, NOW);
        let lines: Vec<LogRecord> = (0..15)
            .map(|i| LogRecord {
                time: NOW * 1_000_000,
                message: format!("smtp 421 from {tag} #{i}").into(),
                ..LogRecord::default()
            })
            .collect();
        watches.observe_logs(P, &lines, NOW);
        let samples: Vec<TransactionSample> = (0..6)
            .map(|_| TransactionSample {
                name: "send".into(),
                time: vigie_core::Timestamp(NOW),
                duration_ms: 900.0,
                failed: false,
            })
            .collect();
        watches.observe_transactions(P, &samples, NOW);
    }

    #[test]
    fn what_a_follower_hands_over_counts_once_with_the_leaders_own() {
        let (mut leader, mut follower) = (Watches::default(), Watches::default());
        leader.load(rules());
        follower.load(rules());
        receive(&mut leader, "a");
        receive(&mut follower, "b");
        // Neither alone is over any threshold.
        assert!(leader.judge("", NOW).is_empty());

        // Through the database, as JSON.
        let body = serde_json::to_string(&follower.hand_over()).unwrap();
        assert!(
            follower.hand_over().is_empty(),
            "a hand-over takes the counts out"
        );
        let counted: Vec<Counted> = serde_json::from_str(&body).unwrap();
        leader.take_in(counted, NOW + 500);
        let mut opened: Vec<String> = leader
            .judge("", NOW + 1000)
            .into_iter()
            .map(|v| {
                assert!(matches!(v.firing, Firing::Opened { .. }));
                v.message.title
            })
            .collect();
        opened.sort();
        assert_eq!(
            opened,
            [
                "30 error events in the last minute (over 20)",
                "30 log lines match smtp in 5 min (over 20)",
                "Issue #7: 30 events in 5 min (over 20)",
                "p95 of transactions is 900 ms over 5 min (above 500 ms)",
            ]
        );
        // The lines kept as evidence include the follower's.
        let Gauge::Logs { last, .. } = &leader.by_project[&P][2].gauge else {
            panic!("rule 3 counts lines");
        };
        assert!(last.iter().any(|l| l.contains("from b")), "{last:?}");
    }

    #[test]
    fn counts_of_a_rule_gone_or_changed_are_dropped() {
        let mut follower = Watches::default();
        follower.load(rules());
        receive(&mut follower, "b");
        let counted = follower.hand_over();
        let mut leader = Watches::default();
        // Rule 1 was deleted and rule 2 became a log rule meanwhile.
        leader.load(vec![rule(
            2,
            RuleKind::LogMatches {
                query: "nothing".into(),
                above: 0,
                window_s: 60,
            },
        )]);
        leader.take_in(counted, NOW);
        assert!(leader.judge("", NOW).is_empty());
    }
}
