//! Rate limits on error ingest: server-wide and per-project quotas, and spike protection.
//!
//! Counting is per calendar minute, in memory, per instance (several instances behind a load
//! balancer each apply the limits to what they receive). Three limits apply to error events:
//!
//! - the server's `errors.events_per_minute` (all projects together);
//! - the project's own limit (Settings → Projects → Errors);
//! - **spike protection**: a project may send `errors.spike_floor_per_minute` events in a
//!   minute, or ten times its average minute over the past hour if that is more — so an error
//!   loop is cut off within a minute while a project that is always busy keeps its pace.
//!
//! Transactions have the server-wide `errors.transactions_per_minute`. A refusal answers until
//! the end of the current minute, which is what `Retry-After` says.

use crate::config::ErrorsConfig;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use vigie_core::{ProjectId, Timestamp};

const MINUTE_MS: i64 = 60_000;
/// Minutes of history behind the spike protection's average.
const HISTORY: usize = 60;
/// How much above its usual pace a project may go before spike protection stops it.
const SPIKE_FACTOR: u64 = 10;

/// Why events are refused, as recorded with the dropped counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    ServerQuota,
    ProjectQuota,
    SpikeProtection,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::ServerQuota => "server_quota",
            Refusal::ProjectQuota => "project_quota",
            Refusal::SpikeProtection => "spike_protection",
        }
    }

    /// The rate-limit scope SDKs are told (`X-Sentry-Rate-Limits`).
    pub fn scope(self) -> &'static str {
        match self {
            Refusal::ServerQuota => "organization",
            Refusal::ProjectQuota | Refusal::SpikeProtection => "project",
        }
    }
}

/// What the quotas allow of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub events: Option<Refusal>,
    pub transactions: Option<Refusal>,
    /// Seconds until the current minute ends.
    pub retry_after: u64,
}

#[derive(Default)]
struct Counter {
    minute: i64,
    count: u64,
    /// Counts of the past minutes, newest last (spike protection's history).
    history: VecDeque<u64>,
}

impl Counter {
    fn roll(&mut self, minute: i64) {
        if minute == self.minute {
            return;
        }
        let passed = (minute - self.minute).clamp(1, HISTORY as i64 + 1) as usize;
        self.history.push_back(self.count);
        for _ in 1..passed {
            self.history.push_back(0);
        }
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        self.minute = minute;
        self.count = 0;
    }

    /// The average minute of the past hour (minutes not yet seen count as zero).
    fn average(&self) -> u64 {
        self.history.iter().sum::<u64>() / HISTORY as u64
    }
}

#[derive(Default)]
struct Counters {
    server_events: Counter,
    server_transactions: Counter,
    projects: HashMap<ProjectId, Counter>,
}

pub struct Quotas {
    config: ErrorsConfig,
    counters: Mutex<Counters>,
}

impl Quotas {
    pub fn new(config: ErrorsConfig) -> Quotas {
        Quotas {
            config,
            counters: Mutex::default(),
        }
    }

    /// Decides on `events` error events and `transactions` transactions of `project` arriving
    /// at `now`, and counts what is accepted.
    pub fn check(
        &self,
        project: ProjectId,
        project_limit: Option<i64>,
        events: u64,
        transactions: u64,
        now: Timestamp,
    ) -> Verdict {
        let minute = now.millis().div_euclid(MINUTE_MS);
        let left_ms = ((minute + 1) * MINUTE_MS - now.millis()) as u64;
        let retry_after = left_ms.div_ceil(1000).max(1);
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut verdict = Verdict {
            events: None,
            transactions: None,
            retry_after,
        };
        if events > 0 {
            c.server_events.roll(minute);
            let server = self.config.events_per_minute;
            let over_server = server > 0 && c.server_events.count + events > server;
            let counter = c.projects.entry(project).or_default();
            counter.roll(minute);
            let spike_limit =
                (SPIKE_FACTOR * counter.average()).max(self.config.spike_floor_per_minute);
            verdict.events = if over_server {
                Some(Refusal::ServerQuota)
            } else if project_limit
                .is_some_and(|limit| counter.count + events > limit.max(0) as u64)
            {
                Some(Refusal::ProjectQuota)
            } else if self.config.spike_protection && counter.count + events > spike_limit {
                Some(Refusal::SpikeProtection)
            } else {
                None
            };
            if verdict.events.is_none() {
                counter.count += events;
                c.server_events.count += events;
            }
        }
        if transactions > 0 {
            c.server_transactions.roll(minute);
            let server = self.config.transactions_per_minute;
            if server > 0 && c.server_transactions.count + transactions > server {
                verdict.transactions = Some(Refusal::ServerQuota);
            } else {
                c.server_transactions.count += transactions;
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(events: u64, transactions: u64, spike: bool, floor: u64) -> ErrorsConfig {
        ErrorsConfig {
            events_per_minute: events,
            transactions_per_minute: transactions,
            spike_protection: spike,
            spike_floor_per_minute: floor,
            max_attachment_mib: 10,
            retention: String::new(),
        }
    }

    const P: ProjectId = ProjectId(1);
    const T: Timestamp = Timestamp(1_800_000_000_000); // a minute boundary + 0 s

    #[test]
    fn project_and_server_quotas_reset_each_minute() {
        let q = Quotas::new(config(5, 2, false, 0));
        assert_eq!(q.check(P, Some(3), 3, 0, T).events, None);
        let refused = q.check(P, Some(3), 1, 0, Timestamp(T.0 + 20_000));
        assert_eq!(refused.events, Some(Refusal::ProjectQuota));
        assert_eq!(refused.retry_after, 40);
        assert_eq!(q.check(ProjectId(2), None, 2, 0, T).events, None);
        assert_eq!(
            q.check(ProjectId(3), None, 1, 0, T).events,
            Some(Refusal::ServerQuota)
        );
        assert_eq!(q.check(P, None, 0, 2, T).transactions, None);
        assert_eq!(
            q.check(P, None, 0, 1, T).transactions,
            Some(Refusal::ServerQuota)
        );
        let next = Timestamp(T.0 + MINUTE_MS);
        assert_eq!(
            q.check(P, Some(3), 3, 1, next),
            Verdict {
                events: None,
                transactions: None,
                retry_after: 60
            }
        );
    }

    #[test]
    fn spike_protection_follows_the_usual_pace() {
        let q = Quotas::new(config(0, 0, true, 100));
        // A quiet project: 100 a minute passes, 101 does not.
        assert_eq!(q.check(P, None, 100, 0, T).events, None);
        assert_eq!(
            q.check(P, None, 1, 0, T).events,
            Some(Refusal::SpikeProtection)
        );
        // A project that always sends 600 a minute for an hour may burst to 10× its average.
        let q = Quotas::new(config(0, 0, true, 600));
        let busy = ProjectId(9);
        for m in 0..60 {
            let at = Timestamp(T.0 + m * MINUTE_MS);
            for _ in 0..6 {
                assert_eq!(q.check(busy, None, 100, 0, at).events, None, "minute {m}");
            }
        }
        let later = Timestamp(T.0 + 60 * MINUTE_MS);
        assert_eq!(q.check(busy, None, 5900, 0, later).events, None);
        assert_eq!(
            q.check(busy, None, 200, 0, later).events,
            Some(Refusal::SpikeProtection)
        );
        // Off: no limit at all.
        let off = Quotas::new(config(0, 0, false, 1));
        assert_eq!(off.check(P, None, 1_000_000, 0, T).events, None);
    }
}
