//! Alerts: the engine that turns what happens into messages, and the notifier that delivers
//! them with retries.
//!
//! ```text
//! hub changes ─► happenings (new issue, regression, job failed / stalled, monitor down / up)
//!             ─► rules of the project that match, unmuted, in the environment
//!             ─► Store::fire (cooldown per rule and thing; "resolved" only after a problem)
//!             ─► Store::enqueue: a delivery per channel of the rule ─► the notifier wakes
//! hub changes and stored log lines ─► threshold windows (thresholds::Watches)
//! every second ─► Watches::judge ─► opened / reminder / resolved ─► Store::fire ─► enqueue
//! notifier (every few seconds, or woken) ─► due deliveries, each sent on its own task with a
//!             timeout ─► sent, or retried after 30 s, 2 min, 10 min, 30 min, 1 h, then failed
//! ```
//!
//! Evaluation is incremental: each change is looked at once as it happens, nothing is
//! rescanned; thresholds keep windows in memory. Rules are re-read when one changes
//! ([`crate::hub::RulesChanged`]). A channel that keeps failing is marked (the Alerts page shows it) and never
//! holds up the others or ingest: sends run on their own tasks, off the request path.
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

use crate::hub::{Change, JobNews, LogNews};
use crate::state::AppState;
use std::time::Duration;
use thresholds::{Verdict, Watches};
use tokio::sync::broadcast::error::RecvError;
use vigie_core::alert::{Happening, Notification, What};
use vigie_core::monitor::{MonitorState, RunStatus};
use vigie_core::{JobStatus, ProjectId, Timestamp};
use vigie_store::errors::IssueChange;
use vigie_store::{Firing, NewDelivery, Rule, RunChange};

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

/// Starts the engine and the notifier; they stop when the server shuts down.
pub fn start(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        crate::tasks::spawn("alert engine", engine(state.clone())),
        crate::tasks::spawn("alert notifier", notifier(state.clone())),
    ]
}

async fn engine(state: AppState) {
    let mut changes = state.hub.subscribe();
    let mut logs = state.hub.watch_logs();
    let mut watches = Watches::default();
    state.tasks.declare("alert evaluation", JUDGE_EVERY);
    let mut judge = tokio::time::interval(JUDGE_EVERY);
    judge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            change = changes.recv() => match change {
                Ok(change) => on_change(&state, &mut watches, &change).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "alert engine fell behind; some changes were not evaluated");
                }
                Err(RecvError::Closed) => return,
            },
            news = logs.recv() => match news {
                Ok(news) => on_logs(&mut watches, &news),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "alert engine fell behind on log lines; thresholds undercount");
                }
                Err(RecvError::Closed) => return,
            },
            _ = judge.tick() => {
                state.tasks.run("alert evaluation", judge_thresholds(&state, &mut watches)).await;
            }
        }
    }
}

/// One pass over the threshold rules (re-read first if they changed).
async fn judge_thresholds(state: &AppState, watches: &mut Watches) -> Result<String, String> {
    if state.rules_changed.take() {
        if let Err(err) = reload(state, watches).await {
            state.rules_changed.mark();
            return Err(format!("could not read the alert rules: {err}"));
        }
    }
    read_queues(state, watches).await;
    let verdicts = watches.judge(&link(state, ""), Timestamp::now().millis());
    let sent = verdicts.len();
    send_verdicts(state, verdicts).await;
    Ok(format!(
        "{} threshold rules; {sent} changed",
        watches.rules()
    ))
}

/// Reads the queue lengths for queue rules, every [`QUEUES_EVERY`].
async fn read_queues(state: &AppState, watches: &mut Watches) {
    if !watches.queues_due(QUEUES_EVERY) {
        return;
    }
    for project in watches.projects() {
        if watches.watches_queues(project) {
            match crate::celery::queues::lengths(state, project).await {
                Ok(queues) => watches.observe_queues(project, &queues),
                Err(err) => tracing::warn!(%err, "could not read the celery queue lengths"),
            }
        }
    }
}

/// Reads every project's rules into the threshold watches.
async fn reload(state: &AppState, watches: &mut Watches) -> Result<(), vigie_store::StoreError> {
    let mut rules: Vec<Rule> = Vec::new();
    let projects = state.store.list_projects().await?;
    for project in &projects {
        rules.extend(state.store.list_rules(project.id).await?);
    }
    watches.load(rules);
    // Worker rules judge the workers as stored: a dead worker sends nothing more.
    for project in projects {
        if watches.watches_workers(project.id) {
            let workers = state.store.celery_workers(project.id).await?;
            watches.observe_workers(project.id, &workers);
        }
    }
    Ok(())
}

async fn on_change(state: &AppState, watches: &mut Watches, change: &Change) {
    let now = Timestamp::now().millis();
    match change {
        Change::Issues(news) => watches.observe_events(news.project, &news.events, now),
        Change::Transactions(news) => {
            watches.observe_transactions(news.project, &news.samples, now)
        }
        Change::Job(news) => {
            let verdicts = watches.judge_job(&news.job, &link(state, ""), now);
            send_verdicts(state, verdicts).await;
        }
        Change::Celery(project, outcomes) => {
            watches.observe_tasks(*project, outcomes, now);
            if watches.watches_workers(*project) {
                match state.store.celery_workers(*project).await {
                    Ok(workers) => watches.observe_workers(*project, &workers),
                    Err(err) => tracing::warn!(%err, "could not read the celery workers"),
                }
            }
        }
        _ => {}
    }
    for happening in happenings(state, change).await {
        if let Err(err) = evaluate(state, &happening).await {
            tracing::warn!(%err, key = %happening.key, "alert evaluation failed");
        }
    }
}

fn on_logs(watches: &mut Watches, news: &LogNews) {
    watches.observe_logs(news.project, &news.records, Timestamp::now().millis());
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
        if let Err(err) = fire(
            state,
            &verdict.rule,
            &verdict.key,
            verdict.firing,
            &verdict.message,
            Timestamp::now(),
        )
        .await
        {
            tracing::warn!(%err, rule = %verdict.rule.name, "threshold alert failed");
        }
    }
}

/// Asks the store whether `rule` sends about `key` now; if so, queues the message on each of
/// its channels and wakes the notifier. Answers the deliveries queued.
async fn fire(
    state: &AppState,
    rule: &Rule,
    key: &str,
    firing: Firing,
    message: &Notification,
    at: Timestamp,
) -> Result<usize, vigie_store::StoreError> {
    let Some(repeats) = state.store.fire(rule.id, key, at, firing).await? else {
        return Ok(0);
    };
    // The same thing again while the rule held back: one problem with a count, not silence.
    let message = &with_repeats(message, repeats);
    let queued: Vec<NewDelivery> = rule
        .channels
        .iter()
        .map(|channel| NewDelivery {
            project: rule.project,
            channel: *channel,
            rule: Some(rule.name.clone()),
            message: message.clone(),
            at,
        })
        .collect();
    let n = queued.len();
    if n > 0 {
        state.store.enqueue(queued).await?;
        state.doorbell.ring();
    }
    Ok(n)
}

/// The message with a fact saying how often the thing happened again since the rule's last
/// message about it (none when it did not).
fn with_repeats(message: &Notification, repeats: i64) -> Notification {
    let mut message = message.clone();
    if repeats > 0 {
        let times = if repeats == 1 { "once" } else { "times" };
        let count = if repeats == 1 {
            String::new()
        } else {
            format!("{repeats} ")
        };
        message.facts.push((
            "Repeats".into(),
            format!("happened {count}{times} more since the last message"),
        ));
    }
    message
}

/// Runs the rules of the happening's project against it; queues what must be sent.
pub async fn evaluate(
    state: &AppState,
    happening: &Happening,
) -> Result<usize, vigie_store::StoreError> {
    let rules = state.store.list_rules(happening.project).await?;
    let mut queued = 0;
    for rule in rules {
        if !rule.kind.matches(happening) || rule.muted_at(happening.at) {
            continue;
        }
        if let (Some(wanted), Some(env)) = (&rule.environment, &happening.environment) {
            if wanted != env {
                continue;
            }
        }
        let firing = if happening.what.resolves() {
            Firing::Resolved
        } else {
            Firing::Opened {
                cooldown_s: rule.cooldown_s,
            }
        };
        queued += fire(
            state,
            &rule,
            &happening.key,
            firing,
            &happening.notification,
            happening.at,
        )
        .await?;
    }
    Ok(queued)
}

async fn notifier(state: AppState) {
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = state.doorbell.rung() => {}
            _ = tokio::time::sleep(NOTIFY_EVERY) => {}
        }
        let due = match state.store.due_deliveries(Timestamp::now(), 50).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(%err, "could not read due alert deliveries");
                continue;
            }
        };
        // Each delivery on its own task: a slow or dead channel holds up nobody.
        let sends = due.into_iter().map(|delivery| {
            let state = state.clone();
            tokio::spawn(async move { deliver(&state, delivery).await })
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

/// What a hub change means for alerts.
async fn happenings(state: &AppState, change: &Change) -> Vec<Happening> {
    match change {
        Change::Issues(news) => {
            let mut out = Vec::new();
            for written in &news.events {
                let what = match written.change {
                    IssueChange::New => What::NewIssue,
                    IssueChange::Regression => What::Regression,
                    IssueChange::Seen => continue,
                };
                if let Ok(Some(issue)) = state.store.issue(news.project, written.issue_id).await {
                    out.push(issue_happening(state, news.project, &issue, what));
                }
            }
            out
        }
        Change::Job(news) => job_happening(state, news).into_iter().collect(),
        Change::Monitors(project, Some(run)) => monitor_happening(state, *project, run)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

fn link(state: &AppState, path: &str) -> String {
    format!("{}{path}", state.base_url.trim_end_matches('/'))
}

fn issue_happening(
    state: &AppState,
    project: ProjectId,
    issue: &vigie_core::issue::Issue,
    what: What,
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
        at: Timestamp::now(),
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

fn job_happening(state: &AppState, news: &JobNews) -> Option<Happening> {
    let job = &news.job;
    let what = match job.status {
        JobStatus::Failed => What::JobFailed {
            kind: job.kind.clone(),
        },
        JobStatus::Stalled => What::JobStalled {
            kind: job.kind.clone(),
        },
        _ => return None,
    };
    // Only the change that moved the job there (later updates of a failed job repeat it;
    // the cooldown would hold them back anyway).
    let heading = if matches!(what, What::JobFailed { .. }) {
        "Job failed"
    } else {
        "Job stalled"
    };
    let mut facts = vec![("Progress".to_string(), job.progress_words())];
    if let Some(kind) = &job.kind {
        facts.push(("Kind".into(), kind.clone()));
    }
    if let Some(message) = &job.message {
        facts.push(("Message".into(), message.clone()));
    }
    let evidence: Vec<String> = news.messages.iter().map(|m| m.text.clone()).collect();
    Some(Happening {
        project: job.project,
        key: format!("job:{}", job.id),
        environment: job.flow.clone(),
        at: Timestamp::now(),
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

fn monitor_happening(
    state: &AppState,
    project: ProjectId,
    change: &RunChange,
) -> Option<Happening> {
    let (monitor, run) = (&change.monitor, &change.run);
    let slug = monitor.slug.clone();
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
        RunStatus::Ok if change.previous_state == MonitorState::Down => (
            What::MonitorUp { slug: slug.clone() },
            format!("Monitor {slug} is up again"),
        ),
        _ => return None,
    };
    let mut facts = Vec::new();
    if let Some(config) = &monitor.config {
        facts.push(("Schedule".to_string(), config.schedule.describe()));
    }
    facts.push(("Run".to_string(), run.started_at.to_rfc3339()));
    Some(Happening {
        project,
        key: format!("monitor:{slug}"),
        environment: run.environment.clone(),
        at: Timestamp::now(),
        notification: Notification {
            resolved: what.resolves(),
            title,
            facts,
            link: link(state, &format!("/monitors/{slug}")),
            evidence: run.output.clone(),
            report: false,
        },
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_says_how_often_the_thing_happened_again() {
        let message = Notification {
            title: "Monitor sync-Stock is down".into(),
            ..Notification::default()
        };
        assert!(with_repeats(&message, 0).facts.is_empty());
        let once = with_repeats(&message, 1);
        assert_eq!(
            once.facts,
            [(
                "Repeats".to_string(),
                "happened once more since the last message".to_string()
            )]
        );
        let many = with_repeats(&message, 14);
        assert_eq!(
            many.facts[0].1,
            "happened 14 times more since the last message"
        );
        assert_eq!(many.title, message.title);
    }
}
