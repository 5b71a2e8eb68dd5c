//! Live pages across instances: what one instance changed reaches the streams of every
//! other within a fraction of a second.
//!
//! ```text
//!   instance A: hub (own changes, own log blocks) ─▶ gathered 200 ms ─▶
//!               Word {jobs, issues, …, log blocks} ─▶ NOTIFY
//!   instance B: LISTEN ─▶ Word ─▶ each job read again (a snapshot for its watchers), each
//!               log block read and decoded ─▶ hub.publish_*_from_peer ─▶ B's pages, B's jobs
//!               list, B's pulses, B's live tails
//! ```
//!
//! A word names what changed, not the change: the database holds the truth, and B reads it.
//! Changes B republishes go to its own streams only, never back out. Only PostgreSQL has other
//! instances; on SQLite the relay does not run.

use crate::hub::{Change, IssueNews, JobNews, LogNews, TransactionNews};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use vigie_core::ProjectId;

/// How long this instance's changes are gathered into one word.
const GATHER: Duration = Duration::from_millis(200);
/// Bytes of names (jobs, log blocks) in one word (a NOTIFY payload holds under 8,000 bytes).
const NAME_BYTES_PER_WORD: usize = 6_000;
/// How long to wait before listening again after the connection ended.
const RETRY: Duration = Duration::from_secs(1);

/// What changed on one instance, by name.
#[derive(Default, Debug, PartialEq, Serialize, Deserialize)]
struct Word {
    from: String,
    /// (store key, project, id) of each job that moved.
    #[serde(default)]
    jobs: BTreeSet<(i64, i64, String)>,
    #[serde(default)]
    issues: BTreeSet<i64>,
    #[serde(default)]
    transactions: BTreeSet<i64>,
    #[serde(default)]
    monitors: BTreeSet<i64>,
    #[serde(default)]
    celery: BTreeSet<i64>,
    #[serde(default)]
    users: bool,
    #[serde(default)]
    tokens: bool,
    #[serde(default)]
    projects: bool,
    /// (project, block, source) of each log block stored.
    #[serde(default)]
    logs: BTreeSet<(i64, i64, String)>,
}

impl Word {
    fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.issues.is_empty()
            && self.transactions.is_empty()
            && self.monitors.is_empty()
            && self.celery.is_empty()
            && !self.users
            && !self.tokens
            && !self.projects
            && self.logs.is_empty()
    }

    fn add_logs(&mut self, news: &LogNews) {
        for (block, source) in &news.blocks {
            self.logs.insert((news.project.0, *block, source.clone()));
        }
    }

    /// Notes `change`. (Caches of projects follow the change feed, see `super`; this tells
    /// the pages.)
    fn add(&mut self, change: &Change) {
        match change {
            Change::Job(news) => {
                let job = &news.job;
                self.jobs.insert((job.pk, job.project.0, job.id.clone()));
            }
            Change::Issues(news) => {
                self.issues.insert(news.project.0);
            }
            Change::Transactions(news) => {
                self.transactions.insert(news.project.0);
            }
            Change::Monitors(project, _) => {
                self.monitors.insert(project.0);
            }
            Change::Celery(project, _) => {
                self.celery.insert(project.0);
            }
            Change::Users => self.users = true,
            Change::Tokens => self.tokens = true,
            Change::Projects => self.projects = true,
        }
    }

    /// The payloads to send: jobs and log blocks split so that each stays well under
    /// PostgreSQL's 8,000-byte limit; the rest goes in the first.
    fn payloads(mut self) -> Vec<String> {
        let jobs = std::mem::take(&mut self.jobs);
        let logs = std::mem::take(&mut self.logs);
        let from = self.from.clone();
        let mut words = vec![self];
        let mut size = 0;
        // Each name's share of the JSON: its text (escaped, at most twice as long) and numbers.
        let mut room_for = |share: usize, words: &mut Vec<Word>| {
            if size + share > NAME_BYTES_PER_WORD && size > 0 {
                words.push(Word {
                    from: from.clone(),
                    ..Word::default()
                });
                size = 0;
            }
            size += share;
        };
        for job in jobs {
            room_for(job.2.len() * 2 + 48, &mut words);
            words.last_mut().expect("a word").jobs.insert(job);
        }
        for block in logs {
            room_for(block.2.len() * 2 + 48, &mut words);
            words.last_mut().expect("a word").logs.insert(block);
        }
        words
            .iter()
            .map(|w| serde_json::to_string(w).expect("a word serializes"))
            .collect()
    }
}

/// Starts the relay where other instances can exist (PostgreSQL).
pub async fn start(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let listener = match state.store.listen().await {
        Ok(Some(listener)) => listener,
        Ok(None) => return None,
        Err(err) => {
            tracing::warn!(%err, "could not listen to the other instances; retrying");
            // Start anyway: `relay` listens again.
            return Some(crate::tasks::spawn("relay", relay(state.clone(), None)));
        }
    };
    Some(crate::tasks::spawn(
        "relay",
        relay(state.clone(), Some(listener)),
    ))
}

async fn relay(state: AppState, mut listener: Option<vigie_store::Listener>) {
    let mut own = state.hub.subscribe_own();
    let mut own_logs = state.hub.watch_own_logs();
    let mut word = Word::default();
    let mut gathering: Option<tokio::time::Instant> = None;
    loop {
        let deadline = gathering.unwrap_or_else(|| tokio::time::Instant::now() + GATHER);
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            change = own.recv() => match change {
                Ok(change) => {
                    word.add(&change);
                    gathering.get_or_insert(tokio::time::Instant::now() + GATHER);
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the relay fell behind; other instances' pages catch up at their next refresh");
                }
                Err(RecvError::Closed) => return,
            },
            news = own_logs.recv() => match news {
                Ok(news) => {
                    word.add_logs(&news);
                    gathering.get_or_insert(tokio::time::Instant::now() + GATHER);
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the relay fell behind on log records; other instances' tails miss them (searches find them)");
                }
                Err(RecvError::Closed) => return,
            },
            _ = tokio::time::sleep_until(deadline), if gathering.is_some() => {
                gathering = None;
                let said = std::mem::take(&mut word);
                speak(&state, said).await;
            }
            heard = hear(&mut listener) => match heard {
                Some(payload) => apply(&state, &payload).await,
                None => {
                    tokio::time::sleep(RETRY).await;
                    listener = state.store.listen().await.ok().flatten();
                }
            },
        }
    }
}

/// The next word from the others; `None` when not listening (the connection ended).
async fn hear(listener: &mut Option<vigie_store::Listener>) -> Option<String> {
    match listener {
        Some(l) => {
            let next = l.next().await;
            if next.is_none() {
                *listener = None;
            }
            next
        }
        None => None,
    }
}

async fn speak(state: &AppState, mut word: Word) {
    if word.is_empty() {
        return;
    }
    word.from = state.instance.id.clone();
    for payload in word.payloads() {
        if let Err(err) = state.store.notify(&payload).await {
            tracing::warn!(%err, "could not tell the other instances of a change");
        }
    }
}

/// Publishes on this instance what another one changed.
async fn apply(state: &AppState, payload: &str) {
    let word: Word = match serde_json::from_str(payload) {
        Ok(word) => word,
        Err(err) => {
            tracing::warn!(%err, payload, "a word from another instance does not read");
            return;
        }
    };
    if word.from == state.instance.id {
        return;
    }
    let hub = &state.hub;
    for (pk, project, id) in &word.jobs {
        match state.store.job(ProjectId(*project), id).await {
            Ok(Some(job)) => hub.publish_job_from_peer(news_of(state, job, *pk).await),
            Ok(None) => {}
            Err(err) => tracing::warn!(%err, "could not read a job another instance moved"),
        }
    }
    for project in word.issues {
        let news = IssueNews {
            project: ProjectId(project),
            events: Vec::new(),
        };
        hub.publish_from_peer(Change::Issues(Arc::new(news)));
    }
    for project in word.transactions {
        let news = TransactionNews {
            project: ProjectId(project),
            samples: Vec::new(),
        };
        hub.publish_from_peer(Change::Transactions(Arc::new(news)));
    }
    for project in word.monitors {
        hub.publish_from_peer(Change::Monitors(ProjectId(project), None));
    }
    for project in word.celery {
        hub.publish_from_peer(Change::Celery(ProjectId(project), Arc::new(Vec::new())));
    }
    if word.users {
        hub.publish_from_peer(Change::Users);
    }
    if word.tokens {
        hub.publish_from_peer(Change::Tokens);
    }
    if word.projects {
        hub.publish_from_peer(Change::Projects);
    }
    if !word.logs.is_empty() {
        publish_logs(state, word.logs).await;
    }
}

/// Reads the log blocks another instance stored and gives their records to this instance's
/// tails, a block at a time.
async fn publish_logs(state: &AppState, blocks: BTreeSet<(i64, i64, String)>) {
    let ids: Vec<i64> = blocks.iter().map(|(_, id, _)| *id).collect();
    let data = match state
        .store
        .log_block_data(ids, vigie_store::BlockPart::Whole)
        .await
    {
        Ok(data) => data,
        Err(err) => {
            tracing::warn!(%err, "could not read log blocks another instance stored");
            return;
        }
    };
    for (id, bytes) in data {
        let Some((project, _, source)) = blocks.iter().find(|(_, b, _)| *b == id) else {
            continue;
        };
        match vigie_store::logs::block::decode(&bytes, source) {
            Ok(records) => state.hub.publish_logs_from_peer(Arc::new(LogNews {
                project: ProjectId(*project),
                records: Arc::new(records),
                blocks: vec![(id, source.clone())],
            })),
            Err(err) => tracing::warn!(%err, block = id, "a log block does not read"),
        }
    }
}

/// A job moved elsewhere, as news here: its watchers get a fresh snapshot (the items and
/// lines that came with the change are on the other instance); lists only need the job.
async fn news_of(state: &AppState, job: vigie_core::Job, pk: i64) -> Arc<JobNews> {
    if !state.hub.watches_job(pk) {
        return JobNews::new(job, Vec::new(), Vec::new());
    }
    match crate::jobs::api::JobDetail::snapshot(state, &job).await {
        Ok(detail) => {
            let wire = serde_json::to_string(&detail).unwrap_or_default();
            JobNews::encoded(job, wire)
        }
        Err(err) => {
            tracing::warn!(%err, "could not read the job another instance moved");
            JobNews::new(job, Vec::new(), Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_jobs_are_told_in_words_that_stay_small() {
        let mut word = Word {
            from: "host-1-abcd".into(),
            users: true,
            ..Word::default()
        };
        for pk in 0..150 {
            word.jobs
                .insert((pk, 1, format!("a-job-with-a-long-id-{pk:0>40}")));
        }
        let payloads = word.payloads();
        assert!(payloads.len() > 1);
        let mut jobs = BTreeSet::new();
        for payload in &payloads {
            assert!(payload.len() < 7_900, "{}", payload.len());
            let word: Word = serde_json::from_str(payload).unwrap();
            assert_eq!(word.from, "host-1-abcd");
            jobs.extend(word.jobs);
        }
        assert_eq!(jobs.len(), 150);
        let first: Word = serde_json::from_str(&payloads[0]).unwrap();
        assert!(first.users, "what is not a job is said once");
    }
}
