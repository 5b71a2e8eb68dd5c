//! Several instances, one Vigie: which instance leads, and what every instance must hear of
//! the others.
//!
//! ```text
//!   every instance, every 0.5 s: the change feed since it last looked ─▶ a project changed
//!       (key rotated, settings saved, anywhere) ─▶ hub: caches of projects dropped
//!   every instance, every 2 s: its heartbeat row (the System page lists them)
//!   every instance: its own changes told to the others, theirs published here ([`relay`])
//!   every 2 s: not leading ─▶ Store::try_lead ─▶ taken ─▶ the duties start
//!              leading     ─▶ Lead::holds      ─▶ lost  ─▶ the duties stop
//!   duties (the leader only): the schedule (stall sweep, retention, monitor checks, daily
//!       report, watchdog), the alert engine and notifier, the Celery consumers
//!   a follower: its threshold counts handed to the leader every second (`alerts::hand_over`)
//!   every instance, every 0.5 s: an alert rule changed anywhere ─▶ its rules read again
//! ```
//!
//! On SQLite one process owns the data directory and always leads, through the same code. On
//! PostgreSQL the lead is an advisory lock on a session of its own (`vigie_store::lead`): a
//! leader killed with -9 loses its session and the lock at once, and another instance takes
//! over at its next try, within 2 s. What the duties do stays right across a handover: the
//! alert engine's cursor and the deliveries' claims live in the database (see
//! `crate::alerts`), so an overlap sends nothing twice and a gap loses nothing.
//!
//! Memory return runs on every instance: it is about this process.

pub mod relay;

use crate::celery::consumer::Consumer;
use crate::sentry::ErrorIngest;
use crate::state::AppState;
use std::time::Duration;
use tokio::task::JoinHandle;
use vigie_core::Timestamp;
use vigie_store::{Instance, Lead};

/// How often the feed is read for other instances' changes: a key rotated on one instance
/// is refused by every other within a second.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// How often an instance writes its heartbeat, and tries (or checks) the lead.
const BEAT_EVERY: Duration = Duration::from_secs(2);
/// An instance not heard from for this long is shown as gone.
pub const GONE_AFTER: Duration = Duration::from_secs(10);

/// What only the leader runs.
pub struct Duties {
    tasks: Vec<JoinHandle<()>>,
    celery: Consumer,
}

impl Duties {
    /// Starts the schedule, the alert engine and notifier, and the Celery consumers.
    pub async fn start(state: &AppState, errors: &ErrorIngest) -> Result<Duties, String> {
        let celery = crate::celery::consumer::start(state, errors).await?;
        let tasks = crate::schedule::start(state)
            .into_iter()
            .chain(crate::alerts::start(state))
            .collect();
        Ok(Duties { tasks, celery })
    }

    /// Stops them in order: the Celery readers stop and what they read is stored; then the
    /// background tasks end, each awaited, so none is still writing.
    pub async fn stop(self) {
        self.celery.stop().await;
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What an instance that does not lead runs: it hands its threshold counts to the leader
/// (`crate::alerts::hand_over`).
pub struct Following {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Following {
    fn start(state: &AppState) -> Following {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = crate::tasks::spawn(
            "alert counts hand-over",
            crate::alerts::hand_over(state.clone(), stopped),
        );
        Following { stop, task }
    }

    /// Stops it after a last hand-over, so a lead taken next starts with those counts.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// This instance's part: the lead and its duties, or (not leading) what a follower runs.
pub struct Membership {
    pub lead: Option<(Box<dyn Lead>, Duties)>,
    following: Option<Following>,
}

impl Membership {
    fn leads(lead: Box<dyn Lead>, duties: Duties) -> Membership {
        Membership {
            lead: Some((lead, duties)),
            following: None,
        }
    }

    fn follows(state: &AppState) -> Membership {
        Membership {
            lead: None,
            following: Some(Following::start(state)),
        }
    }
}

impl Membership {
    /// Tries the lead once and, if taken, starts the duties: at start, so a configuration
    /// error in them (a Celery project that does not exist) stops the server with its
    /// message, as it would without several instances.
    pub async fn join(state: &AppState, errors: &ErrorIngest) -> Result<Membership, String> {
        let membership = match state.store.try_lead().await.map_err(|e| e.to_string())? {
            Some(lead) => Membership::leads(lead, Duties::start(state, errors).await?),
            None => Membership::follows(state),
        };
        state.instance.set_leads(membership.lead.is_some());
        // The heartbeat is not written here: the cluster task's first beat, at once, writes
        // it, so a start does not wait for its commit before the banner.
        Ok(membership)
    }
}

/// Runs this instance's part until the server shuts down; then stops the duties (if it
/// leads) and gives up the lead.
pub fn run(state: AppState, errors: ErrorIngest, membership: Membership) -> JoinHandle<()> {
    crate::tasks::spawn("cluster", take_part(state, errors, membership))
}

async fn take_part(state: AppState, errors: ErrorIngest, mut membership: Membership) {
    let mut seen = match state.store.feed_head().await {
        Ok(head) => head,
        Err(err) => {
            tracing::warn!(%err, "could not read the change feed; following it from its start");
            0
        }
    };
    let mut follow = tokio::time::interval(FOLLOW_EVERY);
    let mut beat = tokio::time::interval(BEAT_EVERY);
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => break,
            _ = follow.tick() => seen = follow_feed(&state, seen).await,
            _ = beat.tick() => {
                membership = keep_lead(&state, &errors, membership).await;
                report(&state).await;
            }
        }
    }
    if let Some((lead, duties)) = membership.lead.take() {
        duties.stop().await;
        drop(lead);
        state.instance.set_leads(false);
        report(&state).await;
    }
    if let Some(following) = membership.following.take() {
        following.stop().await;
    }
}

/// Reads the feed past `seen`: what other instances changed reaches this one's hub.
async fn follow_feed(state: &AppState, seen: i64) -> i64 {
    match state.store.feed_after(seen, 1000).await {
        Ok(entries) => {
            // Caches only: pages hear of it through the relay, and this instance's own
            // changes are on the feed too (telling its pages again would reload them twice).
            if entries
                .iter()
                .any(|e| e.change == vigie_store::FeedChange::Project)
            {
                state.hub.forget(crate::hub::Cached::Projects);
            }
            // Threshold rules count on every instance: each reads them again.
            if entries
                .iter()
                .any(|e| e.change == vigie_store::FeedChange::Rules)
            {
                state.rules_changed.mark();
            }
            entries.last().map_or(seen, |e| e.seq)
        }
        Err(err) => {
            tracing::warn!(%err, "could not read the change feed");
            seen
        }
    }
}

/// Takes the lead when free, or checks it still holds; starts or stops the duties with it
/// (and, the other way, what a follower runs).
async fn keep_lead(state: &AppState, errors: &ErrorIngest, membership: Membership) -> Membership {
    match membership.lead {
        Some((mut lead, duties)) => {
            if lead.holds().await {
                return Membership::leads(lead, duties);
            }
            tracing::warn!("this instance lost the lead; its duties stop");
            state.instance.set_leads(false);
            duties.stop().await;
            Membership::follows(state)
        }
        None => match state.store.try_lead().await {
            Ok(Some(lead)) => {
                if let Some(following) = membership.following {
                    following.stop().await;
                }
                match Duties::start(state, errors).await {
                    Ok(duties) => {
                        tracing::info!("this instance leads now");
                        state.instance.set_leads(true);
                        Membership::leads(lead, duties)
                    }
                    Err(err) => {
                        tracing::warn!(%err, "this instance took the lead but could not start its duties");
                        Membership::follows(state)
                    }
                }
            }
            Ok(None) => membership,
            Err(err) => {
                tracing::warn!(%err, "could not try the lead");
                membership
            }
        },
    }
}

/// Writes this instance's heartbeat.
async fn report(state: &AppState) {
    let me = &state.instance;
    let beat = Instance {
        id: me.id.clone(),
        address: state.base_url.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: me.started_at,
        seen_at: Timestamp::now(),
        leads: me.leads(),
    };
    if let Err(err) = state.store.beat(&beat).await {
        tracing::warn!(%err, "could not write this instance's heartbeat");
    }
}
