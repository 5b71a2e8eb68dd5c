//! Rate limits on error ingest: server-wide and per-project quotas, and spike protection.
//!
//! Counting is per calendar minute, in memory, over what **every instance** accepted: each
//! instance counts what it accepts and, every second, writes its counts to the database and
//! reads the others' ([`share`], through `vigie_store::shared`). Three limits apply to error
//! events:
//!
//! - the server's `errors.events_per_minute` (all projects together);
//! - the project's own limit (Settings → Projects → Errors);
//! - **spike protection**: a project may send `errors.spike_floor_per_minute` events in a
//!   minute, or ten times its average minute over the past hour if that is more — so an error
//!   loop is cut off within a minute while a project that is always busy keeps its pace.
//!
//! Transactions have the server-wide `errors.transactions_per_minute`. A refusal answers until
//! the end of the current minute, which is what `Retry-After` says.
//!
//! ```text
//!   check(project, n) ─▶ own + others' count this minute (+ the hour's average) ─▶ verdict
//!                     ─▶ accepted: own count += n, marked to share
//!   share, every second ─▶ Store::share_counts(own marked counts) ─▶ others' counts ─▶ heard
//! ```
//!
//! Several instances learn of each other's counts within a second, so a burst spread over
//! them in that second can pass a limit by what each accepted meanwhile; after it, they refuse
//! together.

use crate::config::ErrorsConfig;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use vigie_core::{ProjectId, Timestamp};
use vigie_store::MinuteCount;

const MINUTE_MS: i64 = 60_000;
/// Minutes of history behind the spike protection's average.
const HISTORY: i64 = 60;
/// How much above its usual pace a project may go before spike protection stops it.
const SPIKE_FACTOR: u64 = 10;
/// How often an instance tells the others its counts and hears theirs.
const SHARE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

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

/// What one count is of; its text is how the database names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    ServerEvents,
    ServerTransactions,
    ProjectEvents(ProjectId),
}

impl Scope {
    fn name(self) -> String {
        match self {
            Scope::ServerEvents => "events".into(),
            Scope::ServerTransactions => "transactions".into(),
            Scope::ProjectEvents(p) => format!("events:project:{}", p.0),
        }
    }

    fn parse(name: &str) -> Option<Scope> {
        match name {
            "events" => Some(Scope::ServerEvents),
            "transactions" => Some(Scope::ServerTransactions),
            _ => name
                .strip_prefix("events:project:")?
                .parse()
                .ok()
                .map(|id| Scope::ProjectEvents(ProjectId(id))),
        }
    }
}

/// A scope's counts per minute (minutes since the epoch): this instance's and the others'.
#[derive(Default)]
struct Counts {
    own: BTreeMap<i64, u64>,
    others: BTreeMap<i64, u64>,
    /// Minutes of `own` that changed since they were last shared. Kept with the counts and
    /// forgotten with them, so it stays bounded where nothing shares (SQLite).
    unshared: BTreeSet<i64>,
}

impl Counts {
    fn in_minute(&self, minute: i64) -> u64 {
        self.own.get(&minute).copied().unwrap_or(0) + self.others.get(&minute).copied().unwrap_or(0)
    }

    /// The average minute of the hour before `minute` (minutes without a count count as zero).
    fn average_before(&self, minute: i64) -> u64 {
        let hour = minute - HISTORY..minute;
        let sum: u64 = self.own.range(hour.clone()).map(|(_, n)| n).sum::<u64>()
            + self.others.range(hour).map(|(_, n)| n).sum::<u64>();
        sum / HISTORY as u64
    }

    /// Adds `n` to this instance's count of `minute`, forgetting minutes past the history.
    fn add(&mut self, minute: i64, n: u64) {
        *self.own.entry(minute).or_default() += n;
        self.unshared.insert(minute);
        let oldest = minute - HISTORY;
        while self.own.first_key_value().is_some_and(|(m, _)| *m < oldest) {
            self.own.pop_first();
        }
        while self.unshared.first().is_some_and(|m| *m < oldest) {
            self.unshared.pop_first();
        }
    }
}

#[derive(Default)]
struct Counters {
    scopes: HashMap<Scope, Counts>,
}

impl Counters {
    fn counts(&mut self, scope: Scope) -> &mut Counts {
        self.scopes.entry(scope).or_default()
    }

    fn accept(&mut self, scope: Scope, minute: i64, n: u64) {
        self.counts(scope).add(minute, n);
    }
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

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut c = self.counters();
        let mut verdict = Verdict {
            events: None,
            transactions: None,
            retry_after,
        };
        if events > 0 {
            let server = self.config.events_per_minute;
            let over_server =
                server > 0 && c.counts(Scope::ServerEvents).in_minute(minute) + events > server;
            let counts = c.counts(Scope::ProjectEvents(project));
            let count = counts.in_minute(minute);
            let spike_limit = (SPIKE_FACTOR * counts.average_before(minute))
                .max(self.config.spike_floor_per_minute);
            verdict.events = if over_server {
                Some(Refusal::ServerQuota)
            } else if project_limit.is_some_and(|limit| count + events > limit.max(0) as u64) {
                Some(Refusal::ProjectQuota)
            } else if self.config.spike_protection && count + events > spike_limit {
                Some(Refusal::SpikeProtection)
            } else {
                None
            };
            if verdict.events.is_none() {
                c.accept(Scope::ProjectEvents(project), minute, events);
                c.accept(Scope::ServerEvents, minute, events);
            }
        }
        if transactions > 0 {
            let server = self.config.transactions_per_minute;
            let count = c.counts(Scope::ServerTransactions).in_minute(minute);
            if server > 0 && count + transactions > server {
                verdict.transactions = Some(Refusal::ServerQuota);
            } else {
                c.accept(Scope::ServerTransactions, minute, transactions);
            }
        }
        verdict
    }

    /// This instance's counts that changed since last shared (whole counts, not increments:
    /// writing one twice is harmless).
    pub fn to_share(&self) -> Vec<MinuteCount> {
        let mut c = self.counters();
        let mut told = Vec::new();
        for (scope, counts) in &mut c.scopes {
            for minute in std::mem::take(&mut counts.unshared) {
                if let Some(count) = counts.own.get(&minute) {
                    told.push(MinuteCount {
                        scope: scope.name(),
                        minute,
                        count: *count,
                    });
                }
            }
        }
        told
    }

    /// Marks counts again whose sharing failed, so the next share sends them.
    pub fn not_shared(&self, counts: &[MinuteCount]) {
        let mut c = self.counters();
        for count in counts {
            if let Some(scope) = Scope::parse(&count.scope) {
                c.counts(scope).unshared.insert(count.minute);
            }
        }
    }

    /// Takes what the other instances counted (per scope and minute, summed) in place of what
    /// was heard before; scopes nobody counts any more are forgotten.
    pub fn heard(&self, others: Vec<MinuteCount>) {
        let mut c = self.counters();
        for counts in c.scopes.values_mut() {
            counts.others.clear();
        }
        for count in others {
            if let Some(scope) = Scope::parse(&count.scope) {
                c.counts(scope).others.insert(count.minute, count.count);
            }
        }
        c.scopes
            .retain(|_, counts| !counts.own.is_empty() || !counts.others.is_empty());
    }

    /// The first minute whose counts still matter (the spike average's hour before this one).
    pub fn horizon(now: Timestamp) -> i64 {
        now.millis().div_euclid(MINUTE_MS) - HISTORY
    }
}

/// Tells the other instances what this one accepted, and hears what they did, every second,
/// until the server shuts down. Runs only where instances share a database (PostgreSQL).
pub async fn share(state: crate::state::AppState, quotas: std::sync::Arc<Quotas>) {
    state.tasks.declare("quota sharing", SHARE_EVERY);
    let mut tick = tokio::time::interval(SHARE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = tick.tick() => {}
        }
        state
            .tasks
            .run("quota sharing", share_once(&state, &quotas))
            .await;
    }
}

/// One exchange of counts with the other instances; answers what it did.
async fn share_once(
    state: &crate::state::AppState,
    quotas: &Quotas,
) -> Result<String, vigie_store::StoreError> {
    let own = quotas.to_share();
    let since = Quotas::horizon(Timestamp::now());
    match state
        .store
        .share_counts(&state.instance.id, own.clone(), since)
        .await
    {
        Ok(others) => {
            let heard = others.len();
            quotas.heard(others);
            Ok(format!("{} counts told; {heard} heard", own.len()))
        }
        Err(err) => {
            quotas.not_shared(&own);
            Err(err)
        }
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

    /// Two instances tell each other their counts, as `share` does through the database.
    fn exchange(a: &Quotas, b: &Quotas) {
        let (from_a, from_b) = (a.to_share(), b.to_share());
        // Each hears the other's whole counts (the store keeps what was said before).
        let said_a = whole(a);
        let said_b = whole(b);
        assert!(from_a.iter().all(|c| said_a.contains(c)));
        assert!(from_b.iter().all(|c| said_b.contains(c)));
        a.heard(said_b);
        b.heard(said_a);
    }

    fn whole(q: &Quotas) -> Vec<MinuteCount> {
        let c = q.counters();
        c.scopes
            .iter()
            .flat_map(|(scope, counts)| {
                counts.own.iter().map(|(minute, count)| MinuteCount {
                    scope: scope.name(),
                    minute: *minute,
                    count: *count,
                })
            })
            .collect()
    }

    #[test]
    fn quotas_count_what_every_instance_accepted() {
        let (a, b) = (
            Quotas::new(config(40, 0, false, 0)),
            Quotas::new(config(40, 0, false, 0)),
        );
        for _ in 0..15 {
            assert_eq!(a.check(P, Some(25), 1, 0, T).events, None);
            assert_eq!(b.check(P, Some(25), 1, 0, T).events, None);
        }
        exchange(&a, &b);
        // 30 taken of the project's 25... and of the server's 40: the project limit first.
        assert_eq!(
            b.check(P, Some(25), 1, 0, T).events,
            Some(Refusal::ProjectQuota)
        );
        // Another project may take the server's last 10, on either instance.
        let other = ProjectId(2);
        assert_eq!(a.check(other, None, 6, 0, T).events, None);
        exchange(&a, &b);
        assert_eq!(b.check(other, None, 4, 0, T).events, None);
        assert_eq!(
            b.check(other, None, 1, 0, T).events,
            Some(Refusal::ServerQuota)
        );
        // Nothing changed since: nothing to tell again.
        exchange(&a, &b);
        assert!(a.to_share().is_empty() && b.to_share().is_empty());
        // A count whose sharing failed is told at the next try.
        assert_eq!(a.check(P, None, 0, 1, T).transactions, None);
        let told = a.to_share();
        assert_eq!(told.len(), 1);
        a.not_shared(&told);
        assert_eq!(a.to_share(), told);
    }

    #[test]
    fn spike_protection_counts_every_instances_hour() {
        // Instance B saw the project's usual 600 a minute for an hour; A saw none of it.
        let (a, b) = (
            Quotas::new(config(0, 0, true, 600)),
            Quotas::new(config(0, 0, true, 600)),
        );
        for m in 0..60 {
            let at = Timestamp(T.0 + m * MINUTE_MS);
            assert_eq!(b.check(P, None, 600, 0, at).events, None, "minute {m}");
        }
        exchange(&a, &b);
        // So A lets it go to 10× that pace (6,000), not only to the floor of 600.
        let later = Timestamp(T.0 + 60 * MINUTE_MS);
        assert_eq!(a.check(P, None, 5_000, 0, later).events, None);
        assert_eq!(
            a.check(P, None, 1_001, 0, later).events,
            Some(Refusal::SpikeProtection)
        );
    }

    #[test]
    fn what_is_left_to_share_stays_bounded_where_nothing_shares() {
        // SQLite: no instance ever asks for the counts; a day of minutes keeps an hour's.
        let q = Quotas::new(config(0, 0, false, 0));
        for m in 0..1_440 {
            let at = Timestamp(T.0 + m * MINUTE_MS);
            assert_eq!(q.check(P, None, 1, 1, at).events, None);
        }
        let kept: usize = q.counters().scopes.values().map(|c| c.unshared.len()).sum();
        assert!(
            kept <= 3 * (HISTORY as usize + 1),
            "{kept} minutes waiting to be shared"
        );
    }

    #[test]
    fn scopes_read_back_as_written() {
        for scope in [
            Scope::ServerEvents,
            Scope::ServerTransactions,
            Scope::ProjectEvents(ProjectId(42)),
        ] {
            assert_eq!(Scope::parse(&scope.name()), Some(scope));
        }
        assert_eq!(Scope::parse("events:project:x"), None);
        assert_eq!(Scope::parse("logs"), None);
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
