//! Alerts: the engine that turns what happens into messages, and the notifier that delivers
//! them with retries.
//!
//! ```text
//! change feed (vigie_store::feed: written in the transaction of the change itself)
//!   ─► entries after the "alerts" cursor, in order (woken by the hub, or every second)
//!   ─► happenings (new issue, regression, job failed / stalled, monitor down / up)
//!   ─► rules of the project that match, unmuted, in the environment
//!   ─► Store::alert, one transaction: cooldown per rule and thing ("resolved" only after a
//!      problem), a delivery per channel of the rule keyed by entry and rule, the cursor moved
//!   ─► the notifier wakes
//! every publish on the hub (stored events, transactions, log lines, Celery task ends)
//!   ─► Counter, on the publisher's call ─► threshold windows (thresholds::Watches)
//!   other instances: their windows' buckets, handed over every second (hand_over) ─┐
//! every second ─► Store::take_tallies, added in ◄───────────────────────────────────┘
//!              ─► Watches::judge ─► opened / reminder / resolved ─► Store::alert
//! notifier (every few seconds, or woken) ─► due deliveries claimed for a while, each sent on
//!             its own task with a timeout ─► sent, or retried after 30 s, 2 min, 10 min,
//!             30 min, 1 h, then failed
//! ```
//!
//! **An alert is never missed or doubled.** What happenings come from is durable: a new issue,
//! a failed job or a missed run is on the feed once its data is committed, whatever the hub
//! dropped on the way; the engine reads the feed from its stored cursor, so a crash or a
//! restart repeats the last batch rather than skipping it, and the cursor moves in the same
//! transaction as the deliveries it caused, so a repeat queues nothing twice (and the
//! deliveries' `once_key` holds even for two engines during a failover). A claimed delivery is
//! left alone by other notifiers until its claim runs out.
//!
//! Thresholds keep windows in memory, counted by the hub's publish calls on this instance
//! (not read from its broadcast, which a flood of job progress overruns: a threshold never
//! undercounts) and by what the other instances counted ([`hand_over`] runs on each instance
//! that does not lead; see [`thresholds`]). Rules are re-read when one changes anywhere
//! ([`crate::hub::RulesChanged`], marked by the handlers here and by `crate::cluster` for a
//! change on the feed). A channel that keeps failing is marked (the Alerts page shows it) and
//! never holds up the others or ingest: sends run on their own tasks, off the request path.
//!
//! People change rules and channels through [`api`] and the Alerts page ([`ui`]); [`routes`]
//! lists both.

pub mod api;
pub mod config;
pub mod send;
pub mod thresholds;
pub mod ui;

/// The alert channels, rules and deliveries: pages and API.
pub fn routes() -> crate::http::Routes<crate::state::AppState> {
    use crate::http::Table;
    use axum::routing::{delete, get, post, put};
    crate::http::Routes {
        pages: Table::new()
            .route("/alerts", get(ui::page))
            .route("/alerts/channels", post(ui::add_channel))
            .route("/alerts/channels/{id}/test", post(ui::test_channel))
            .route("/alerts/channels/{id}/delete", post(ui::delete_channel))
            .route("/alerts/rules", post(ui::add_rule))
            .route("/alerts/rules/{id}", post(ui::change_rule))
            .route("/alerts/rules/{id}/mute", post(ui::mute_rule))
            .route("/alerts/rules/{id}/delete", post(ui::delete_rule)),
        api: Table::new()
            .route(
                "/api/v1/alerts/channels",
                get(api::channels).post(api::add_channel),
            )
            .route("/api/v1/alerts/channels/{id}", delete(api::remove_channel))
            .route("/api/v1/alerts/channels/{id}/test", post(api::test))
            .route("/api/v1/alerts/rules", get(api::rules).post(api::add_rule))
            .route(
                "/api/v1/alerts/rules/{id}",
                put(api::replace_rule).delete(api::remove_rule),
            )
            .route("/api/v1/alerts/rules/{id}/mute", post(api::mute))
            .route("/api/v1/alerts/deliveries", get(api::deliveries)),
        ingest: Table::new(),
    }
}

use crate::hub::{Change, LogNews};
use crate::state::AppState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thresholds::{Verdict, Watches};
use tokio::sync::broadcast::error::RecvError;
use vigie_core::alert::{Happening, Notification, What};
use vigie_core::job::JobMessage;
use vigie_core::monitor::{MonitorState, RunStatus};
use vigie_core::{Job, JobStatus, ProjectId, Timestamp};
use vigie_store::errors::IssueChange;
use vigie_store::{Alerting, FeedChange, FeedEntry, FeedMove, Firing, Rule};

/// How often the notifier looks for due deliveries when nobody woke it.
const NOTIFY_EVERY: Duration = Duration::from_secs(5);
/// How often threshold rules are judged.
const JUDGE_EVERY: Duration = Duration::from_secs(1);
/// How often queue lengths are read for queue rules (each read asks the broker).
const QUEUES_EVERY: Duration = Duration::from_secs(10);
/// Waits between attempts of a delivery; after the last, it is given up.
const RETRIES: [Duration; 5] = [
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
    Duration::from_secs(3600),
];

/// The name the alert engine's cursor has in the change feed.
const READER: &str = "alerts";
/// Feed entries read (and acted on in one transaction) at once.
const FEED_BATCH: u32 = 200;
/// How often the feed is read when nothing woke the engine (writes of other instances).
const FEED_EVERY: Duration = Duration::from_secs(1);
/// How long a notifier holds the deliveries it claimed before others may send them: longer
/// than a send's timeout.
const CLAIM: Duration = Duration::from_secs(120);

/// Starts the feed reader, the threshold judge and the notifier; they stop when the server
/// shuts down.
pub fn start(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        crate::tasks::spawn("alert engine", follow_feed(state.clone())),
        crate::tasks::spawn(
            "alert thresholds",
            thresholds(state.clone(), Duty::Judge, std::future::pending()),
        ),
        crate::tasks::spawn("alert notifier", notifier(state.clone())),
    ]
}

/// Reads the change feed as it grows and fires the rules each entry matches.
async fn follow_feed(state: AppState) {
    let mut changes = state.hub.subscribe();
    state.tasks.declare("alert engine", FEED_EVERY);
    loop {
        state.tasks.run("alert engine", feed_pass(&state)).await;
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = tokio::time::sleep(FEED_EVERY) => {}
            _ = feed_news(&mut changes) => {}
        }
    }
}

/// Resolves when the hub announces a change that put an entry on the feed (or when it may
/// have: this reader fell behind). Only a wake-up: the feed itself is what is read.
async fn feed_news(changes: &mut tokio::sync::broadcast::Receiver<Change>) {
    loop {
        match changes.recv().await {
            Ok(Change::Issues(news))
                if news.events.iter().any(|e| e.change != IssueChange::Seen) =>
            {
                return
            }
            Ok(Change::Job(news))
                if matches!(news.job.status, JobStatus::Failed | JobStatus::Stalled) =>
            {
                return
            }
            Ok(Change::Monitors(_, Some(_))) | Err(RecvError::Lagged(_)) => return,
            Ok(_) => {}
            // The hub is gone: the server is stopping; the timer and shutdown take over.
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Acts on every feed entry past the cursor, a batch per transaction; answers what it did.
async fn feed_pass(state: &AppState) -> Result<String, vigie_store::StoreError> {
    let (mut read, mut queued) = (0, 0);
    loop {
        let from = state.store.feed_cursor(READER).await?;
        let entries = state.store.feed_after(from, FEED_BATCH).await?;
        let Some(to) = entries.last().map(|e| e.seq) else {
            break;
        };
        let mut rules: HashMap<ProjectId, Vec<Rule>> = HashMap::new();
        let mut alerts = Vec::new();
        for entry in &entries {
            let Some(happening) = happening_of(state, entry).await? else {
                continue;
            };
            let listed = match rules.entry(entry.project) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(state.store.list_rules(entry.project).await?)
                }
            };
            let once = format!("feed:{}", entry.seq);
            alerts.extend(plan(listed, &happening, Some(&once)));
        }
        let feed_move = FeedMove {
            reader: READER.into(),
            from,
            to,
        };
        match state.store.alert(alerts, Some(feed_move)).await {
            Ok(n) => {
                read += entries.len();
                queued += n;
                if n > 0 {
                    state.doorbell.ring();
                }
            }
            // Another instance acted on these entries first: read on from where it left.
            Err(vigie_store::StoreError::Conflict(why)) => {
                tracing::info!(%why, "the alert feed moved under this reader");
            }
            Err(err) => return Err(err),
        }
        if entries.len() < FEED_BATCH as usize {
            break;
        }
    }
    Ok(format!("{read} changes read; {queued} deliveries queued"))
}

/// The alerts `happening` causes: one per rule of its project that matches it, unmuted, in
/// its environment. `once` names where it comes from, so acting on it twice sends once.
fn plan(rules: &[Rule], happening: &Happening, once: Option<&str>) -> Vec<Alerting> {
    rules
        .iter()
        .filter(|rule| rule.kind.matches(happening) && !rule.muted_at(happening.at))
        .filter(|rule| match (&rule.environment, &happening.environment) {
            (Some(wanted), Some(env)) => wanted == env,
            _ => true,
        })
        .map(|rule| Alerting {
            firing: if happening.what.resolves() {
                Firing::Resolved
            } else {
                Firing::Opened {
                    cooldown_s: rule.cooldown_s,
                }
            },
            key: happening.key.clone(),
            message: happening.notification.clone(),
            at: happening.at,
            once: once.map(|o| format!("{o}:rule:{}", rule.id)),
            rule: rule.clone(),
        })
        .collect()
}

/// What a threshold loop does with what it counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Duty {
    /// The leader: every second, adds what the other instances handed over and judges the
    /// rules; judges item-error rules as jobs move.
    Judge,
    /// An instance that does not lead: every second, hands its counts to the leader.
    HandOver,
}

impl Duty {
    fn task(self) -> &'static str {
        match self {
            Duty::Judge => "alert evaluation",
            Duty::HandOver => "alert counts hand-over",
        }
    }
}

/// The threshold windows, shared by the loop that judges them every second and the hub,
/// which counts into them as changes are published ([`Counter`]).
type Shared = Arc<Mutex<Watches>>;

/// The windows, for a moment: never held across an `.await` (the guard is not `Send`).
fn windows(watches: &Shared) -> MutexGuard<'_, Watches> {
    watches.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the hub counts into the windows as it publishes: stored events, transactions, log
/// lines and (for the leader, whose consumers take them) Celery task ends. Counted on the
/// publisher's call, not read from the broadcast, so a flood of job progress that overruns
/// the broadcast cannot make a threshold undercount.
struct Counter {
    watches: Shared,
    duty: Duty,
}

impl crate::hub::Tally for Counter {
    fn change(&self, change: &Change) {
        let now = Timestamp::now().millis();
        match change {
            Change::Issues(news) => {
                windows(&self.watches).observe_events(news.project, &news.events, now)
            }
            Change::Transactions(news) => {
                windows(&self.watches).observe_transactions(news.project, &news.samples, now)
            }
            Change::Celery(project, outcomes) if self.duty == Duty::Judge => {
                windows(&self.watches).observe_tasks(*project, outcomes, now)
            }
            _ => {}
        }
    }

    fn logs(&self, news: &LogNews) {
        windows(&self.watches).observe_logs(news.project, &news.records, Timestamp::now().millis());
    }
}

/// Counts what this instance stores into the threshold windows (a [`Counter`] on its hub),
/// and every second does its `duty`, until the server shuts down or `stop` resolves; a
/// hand-over loop hands over once more then, so a lead taken next starts with those counts.
async fn thresholds(state: AppState, duty: Duty, stop: impl std::future::Future<Output = ()>) {
    // Only for what is judged as it moves (jobs, Celery workers): counts come through the
    // counter.
    let mut changes = state.hub.subscribe();
    let watches = Shared::default();
    let counting = state.hub.count_with(Arc::new(Counter {
        watches: watches.clone(),
        duty,
    }));
    // Read the rules at start, whatever the flag says: a lead taken again starts afresh.
    let mut reload_now = true;
    let mut stop = std::pin::pin!(stop);
    state.tasks.declare(duty.task(), JUDGE_EVERY);
    let mut tick = tokio::time::interval(JUDGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => break,
            _ = &mut stop => break,
            change = changes.recv() => match change {
                Ok(change) => on_change(&state, &watches, &change, duty).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(
                        missed = n,
                        "the judge of jobs' item errors fell behind; each job is judged again at its next change"
                    );
                }
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                let reload = std::mem::take(&mut reload_now);
                state.tasks.run(duty.task(), every_second(&state, &watches, duty, reload)).await;
            }
        }
    }
    state.hub.stop_counting(counting);
    if duty == Duty::HandOver {
        state.tasks.run(duty.task(), give(&state, &watches)).await;
    }
}

/// The rules read again if they changed (or `reload`), then the duty's work.
async fn every_second(
    state: &AppState,
    watches: &Shared,
    duty: Duty,
    reload: bool,
) -> Result<String, String> {
    if state.rules_changed.take() || reload {
        if let Err(err) = load_rules(state, watches).await {
            state.rules_changed.mark();
            return Err(format!("could not read the alert rules: {err}"));
        }
    }
    match duty {
        Duty::Judge => Ok(judge_thresholds(state, watches).await),
        Duty::HandOver => give(state, watches)
            .await
            .map_err(|e| crate::tasks::with_causes(&e)),
    }
}

/// One pass over the threshold rules: what the other instances counted is added in, then
/// every rule is judged.
async fn judge_thresholds(state: &AppState, watches: &Shared) -> String {
    let handed = take_tallies(state, watches).await;
    read_queues(state, watches).await;
    read_metrics(state, watches).await;
    let (verdicts, rules) = {
        let mut windows = windows(watches);
        let verdicts = windows.judge(&link(state, ""), Timestamp::now().millis());
        (verdicts, windows.rules())
    };
    let sent = verdicts.len();
    send_verdicts(state, verdicts).await;
    format!("{rules} threshold rules; {handed} counts from other instances; {sent} changed")
}

/// Adds what the other instances handed over into the windows; answers how many hand-overs.
/// Only PostgreSQL has other instances (on SQLite this would be a write a second for nothing).
async fn take_tallies(state: &AppState, watches: &Shared) -> usize {
    if state.store.backend() != vigie_store::Backend::Postgres {
        return 0;
    }
    let bodies = match state.store.take_tallies().await {
        Ok(bodies) => bodies,
        Err(err) => {
            tracing::warn!(%err, "could not take the other instances' threshold counts");
            return 0;
        }
    };
    let now = Timestamp::now().millis();
    for body in &bodies {
        match serde_json::from_str::<Vec<thresholds::Counted>>(body) {
            Ok(counted) => windows(watches).take_in(counted, now),
            Err(err) => tracing::warn!(%err, "threshold counts from another instance do not read"),
        }
    }
    bodies.len()
}

/// An instance that does not lead: counts what it stores into the threshold windows and hands
/// them to the leader every second, until `stop` resolves or the server shuts down.
pub async fn hand_over(state: AppState, stop: tokio::sync::oneshot::Receiver<()>) {
    let stop = async {
        let _ = stop.await;
    };
    thresholds(state, Duty::HandOver, stop).await
}

/// Leaves what the windows counted for the leader; answers how many rules counted something.
/// On failure the counts go back into the windows for the next try.
async fn give(state: &AppState, watches: &Shared) -> Result<String, vigie_store::StoreError> {
    let counted = windows(watches).hand_over();
    if counted.is_empty() {
        return Ok("nothing counted".into());
    }
    let rules = counted.len();
    let body = serde_json::to_string(&counted).expect("threshold counts serialize");
    let now = Timestamp::now();
    match state
        .store
        .hand_over_tallies(&state.instance.id, body, now)
        .await
    {
        Ok(()) => Ok(format!("{rules} rules' counts handed to the leader")),
        Err(err) => {
            windows(watches).take_in(counted, now.millis());
            Err(err)
        }
    }
}

/// Reads the queue lengths for queue rules, every [`QUEUES_EVERY`].
async fn read_queues(state: &AppState, watches: &Shared) {
    if !windows(watches).queues_due(QUEUES_EVERY) {
        return;
    }
    let projects = windows(watches).projects();
    for project in projects {
        if windows(watches).watches_queues(project) {
            match crate::celery::queues::lengths(state, project).await {
                Ok(queues) => windows(watches).observe_queues(project, &queues),
                Err(err) => tracing::warn!(%err, "could not read the celery queue lengths"),
            }
        }
    }
}

/// Reads the figures of metric rules from stored minutes, every [`QUEUES_EVERY`] (with the
/// queues: a minute-grained figure needs no fresher reading).
async fn read_metrics(state: &AppState, watches: &Shared) {
    if !windows(watches).metrics_due(QUEUES_EVERY) {
        return;
    }
    read_release_health(state, watches).await;
    let now_minute = crate::otel_metrics::api::now_minute();
    let projects = windows(watches).projects();
    for project in projects {
        let rules = windows(watches).metric_rules(project);
        for rule in rules {
            let vigie_core::alert::RuleKind::MetricThreshold {
                metric,
                stat,
                filter,
                window_s,
                ..
            } = &rule.kind
            else {
                continue;
            };
            let params = crate::otel_metrics::chart::ChartParams {
                filter: filter.clone(),
                group_by: String::new(),
                stat: stat.as_str().into(),
                range: format!("{window_s}s"),
            };
            match crate::otel_metrics::chart::chart(state, project, metric, &params, now_minute)
                .await
            {
                Ok(chart) => {
                    let value = chart.groups.first().and_then(|g| g.whole);
                    windows(watches).observe_metric(project, rule.id, value);
                }
                // A metric not (or no longer) stored has no figure.
                Err(crate::http::AppError::NotFound(_)) => {
                    windows(watches).observe_metric(project, rule.id, None)
                }
                Err(err) => {
                    tracing::warn!(%err, rule = rule.id, "could not read a metric rule's figure")
                }
            }
        }
    }
}

/// Reads each release's sessions over the window of each crash-free rule (with the metric
/// figures, every [`QUEUES_EVERY`]: sessions are kept per hour).
async fn read_release_health(state: &AppState, watches: &Shared) {
    let now = vigie_core::Timestamp::now().millis();
    let projects = windows(watches).projects();
    for project in projects {
        let rules = windows(watches).crash_free_rules(project);
        for rule in rules {
            let vigie_core::alert::RuleKind::CrashFreeSessions { window_s, .. } = &rule.kind else {
                continue;
            };
            let since = vigie_core::Timestamp(now - *window_s as i64 * 1000);
            match state.store.release_health(project, since).await {
                Ok(health) => windows(watches).observe_releases(project, rule.id, health),
                Err(err) => {
                    tracing::warn!(%err, rule = rule.id, "could not read a crash-free rule's sessions")
                }
            }
        }
    }
}

/// Reads every project's rules into the threshold watches.
async fn load_rules(state: &AppState, watches: &Shared) -> Result<(), vigie_store::StoreError> {
    let mut rules: Vec<Rule> = Vec::new();
    let projects = state.store.list_projects().await?;
    for project in &projects {
        rules.extend(state.store.list_rules(project.id).await?);
    }
    windows(watches).load(rules);
    // Worker rules judge the workers as stored: a dead worker sends nothing more.
    for project in projects {
        if windows(watches).watches_workers(project.id) {
            let workers = state.store.celery_workers(project.id).await?;
            windows(watches).observe_workers(project.id, &workers);
        }
    }
    Ok(())
}

/// What the leader judges as it moves: jobs (item-error rules) and the Celery workers (whose
/// consumers it runs). Counts come through the [`Counter`], not here.
async fn on_change(state: &AppState, watches: &Shared, change: &Change, duty: Duty) {
    if duty == Duty::HandOver {
        return;
    }
    match change {
        Change::Job(news) => {
            let verdicts =
                windows(watches).judge_job(&news.job, &link(state, ""), Timestamp::now().millis());
            send_verdicts(state, verdicts).await;
        }
        Change::Celery(project, _) if windows(watches).watches_workers(*project) => {
            match state.store.celery_workers(*project).await {
                Ok(workers) => windows(watches).observe_workers(*project, &workers),
                Err(err) => tracing::warn!(%err, "could not read the celery workers"),
            }
        }
        _ => {}
    }
}

/// Fires what the thresholds decided; an issue alert gains the issue's title and top frame.
async fn send_verdicts(state: &AppState, verdicts: Vec<Verdict>) {
    for mut verdict in verdicts {
        if let Some(id) = verdict.issue {
            if let Ok(Some(issue)) = state.store.issue(verdict.rule.project, id).await {
                verdict
                    .message
                    .facts
                    .insert(0, ("Issue".into(), issue.title.clone()));
                if !issue.culprit.is_empty() {
                    verdict.message.evidence = Some(issue.culprit.clone());
                }
            }
        }
        let name = verdict.rule.name.clone();
        let alerting = Alerting {
            rule: verdict.rule,
            key: verdict.key,
            firing: verdict.firing,
            message: verdict.message,
            at: Timestamp::now(),
            once: None,
        };
        match state.store.alert(vec![alerting], None).await {
            Ok(n) if n > 0 => state.doorbell.ring(),
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, rule = %name, "threshold alert failed"),
        }
    }
}

async fn notifier(state: AppState) {
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = state.doorbell.rung() => {}
            _ = tokio::time::sleep(NOTIFY_EVERY) => {}
        }
        let now = Timestamp::now();
        let lease_until = Timestamp(now.millis() + CLAIM.as_millis() as i64);
        let due = match state.store.claim_deliveries(now, lease_until, 50).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(%err, "could not read due alert deliveries");
                continue;
            }
        };
        // Each channel on its own task, so a slow or dead channel holds up nobody; within a
        // channel in order (the claim is by id), so a receiver never reads "resolved" before
        // the "firing" it ends.
        let mut by_channel: std::collections::BTreeMap<i64, Vec<vigie_store::Delivery>> =
            std::collections::BTreeMap::new();
        for delivery in due {
            by_channel
                .entry(delivery.channel)
                .or_default()
                .push(delivery);
        }
        let sends = by_channel.into_values().map(|deliveries| {
            let state = state.clone();
            tokio::spawn(async move {
                for delivery in deliveries {
                    deliver(&state, delivery).await;
                }
            })
        });
        for send in sends.collect::<Vec<_>>() {
            let _ = send.await;
        }
    }
}

/// One attempt of one delivery, recorded.
async fn deliver(state: &AppState, delivery: vigie_store::Delivery) {
    let outcome = match state.store.channel(delivery.channel).await {
        Ok(Some(channel)) => {
            send::send(state, &channel, &delivery.message, delivery.rule.as_deref())
                .await
                .map_err(|e| e.to_string())
        }
        Ok(None) => Err("the channel was deleted".into()),
        Err(err) => Err(err.to_string()),
    };
    let retry_at = match &outcome {
        Ok(()) => None,
        Err(why) => {
            tracing::warn!(channel = delivery.channel, error = %why, "alert delivery failed");
            RETRIES
                .get(delivery.attempts as usize)
                .map(|wait| Timestamp(Timestamp::now().millis() + wait.as_millis() as i64))
        }
    };
    if let Err(err) = state
        .store
        .delivered(delivery.id, outcome, retry_at, Timestamp::now())
        .await
    {
        tracing::warn!(%err, "could not record an alert delivery");
    }
}

/// What a feed entry means for alerts (nothing, for a change of a project's settings, or
/// when what it names is gone).
async fn happening_of(
    state: &AppState,
    entry: &FeedEntry,
) -> Result<Option<Happening>, vigie_store::StoreError> {
    let project = entry.project;
    Ok(match &entry.change {
        FeedChange::Issue { issue, regression } => {
            let what = if *regression {
                What::Regression
            } else {
                What::NewIssue
            };
            let found = state.store.issue(project, *issue).await?;
            found.map(|issue| issue_happening(state, project, &issue, what, entry.at))
        }
        FeedChange::Job { id, status, .. } => match state.store.job(project, id).await? {
            Some(job) => {
                let messages = state.store.job_messages(&job, 5).await?;
                job_happening(state, &job, *status, &messages, entry.at)
            }
            None => None,
        },
        FeedChange::MonitorRun {
            slug,
            status,
            previous,
            started_at,
            environment,
            output,
            ..
        } => {
            let monitor = state.store.monitor(project, slug).await?;
            let run = RunFacts {
                slug,
                status: *status,
                previous: *previous,
                started_at: *started_at,
                environment: environment.as_deref(),
                output: output.as_deref(),
                schedule: monitor
                    .and_then(|m| m.config)
                    .map(|c| c.schedule.describe()),
            };
            monitor_happening(state, project, &run, entry.at)
        }
        FeedChange::Project | FeedChange::Rules => None,
    })
}

fn link(state: &AppState, path: &str) -> String {
    format!("{}{path}", state.base_url.trim_end_matches('/'))
}

fn issue_happening(
    state: &AppState,
    project: ProjectId,
    issue: &vigie_core::issue::Issue,
    what: What,
    at: Timestamp,
) -> Happening {
    let heading = if what == What::Regression {
        "Regression"
    } else {
        "New issue"
    };
    let mut facts = vec![
        ("Level".to_string(), issue.level.clone()),
        ("Events".to_string(), issue.event_count.to_string()),
    ];
    if let Some(release) = &issue.last_release {
        facts.push(("Release".into(), release.clone()));
    }
    Happening {
        project,
        key: format!("issue:{}", issue.id),
        environment: None,
        at,
        notification: Notification {
            title: format!("{heading}: {}", issue.title),
            facts,
            link: link(state, &format!("/issues/{}", issue.id)),
            evidence: (!issue.culprit.is_empty()).then(|| issue.culprit.clone()),
            resolved: false,
            report: false,
        },
        what,
    }
}

/// A job that moved to `status` (failed or stalled), with its last feed lines as evidence.
fn job_happening(
    state: &AppState,
    job: &Job,
    status: JobStatus,
    messages: &[JobMessage],
    at: Timestamp,
) -> Option<Happening> {
    let (what, heading) = match status {
        JobStatus::Failed => (
            What::JobFailed {
                kind: job.kind.clone(),
            },
            "Job failed",
        ),
        JobStatus::Stalled => (
            What::JobStalled {
                kind: job.kind.clone(),
            },
            "Job stalled",
        ),
        _ => return None,
    };
    let mut facts = vec![("Progress".to_string(), job.progress_words())];
    if let Some(kind) = &job.kind {
        facts.push(("Kind".into(), kind.clone()));
    }
    if let Some(message) = &job.message {
        facts.push(("Message".into(), message.clone()));
    }
    let evidence: Vec<String> = messages.iter().map(|m| m.text.clone()).collect();
    Some(Happening {
        project: job.project,
        key: format!("job:{}", job.id),
        environment: job.flow.clone(),
        at,
        notification: Notification {
            title: format!("{heading}: {}", job.name),
            facts,
            link: link(state, &format!("/jobs/{}", job.id)),
            evidence: (!evidence.is_empty()).then(|| evidence.join("\n")),
            resolved: false,
            report: false,
        },
        what,
    })
}

/// What a monitor's run on the feed says, with the monitor's schedule.
struct RunFacts<'a> {
    slug: &'a str,
    status: RunStatus,
    previous: MonitorState,
    started_at: Timestamp,
    environment: Option<&'a str>,
    output: Option<&'a str>,
    schedule: Option<String>,
}

fn monitor_happening(
    state: &AppState,
    project: ProjectId,
    run: &RunFacts<'_>,
    at: Timestamp,
) -> Option<Happening> {
    let slug = run.slug.to_string();
    let (what, title) = match run.status {
        RunStatus::Error => (
            What::MonitorDown { slug: slug.clone() },
            format!("Monitor {slug}: run failed"),
        ),
        RunStatus::Missed => (
            What::MonitorDown { slug: slug.clone() },
            format!("Monitor {slug}: run missed"),
        ),
        RunStatus::TimedOut => (
            What::MonitorDown { slug: slug.clone() },
            format!("Monitor {slug}: run timed out"),
        ),
        RunStatus::Ok if run.previous == MonitorState::Down => (
            What::MonitorUp { slug: slug.clone() },
            format!("Monitor {slug} is up again"),
        ),
        _ => return None,
    };
    let mut facts = Vec::new();
    if let Some(schedule) = &run.schedule {
        facts.push(("Schedule".to_string(), schedule.clone()));
    }
    facts.push(("Run".to_string(), run.started_at.to_rfc3339()));
    Some(Happening {
        project,
        key: format!("monitor:{slug}"),
        environment: run.environment.map(str::to_string),
        at,
        notification: Notification {
            resolved: what.resolves(),
            title,
            facts,
            link: link(state, &format!("/monitors/{slug}")),
            evidence: run.output.map(str::to_string),
            report: false,
        },
        what,
    })
}
