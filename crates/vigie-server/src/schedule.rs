//! Vigie's own schedule: which periodic task runs how often. Each task's body lives in its
//! feature (`jobs::sweep_stalled`, `logs::upkeep`, `sentry::retention`, `celery::retention`,
//! `otel_metrics::retention`, `traces::settle`, `sourcemaps::retention`,
//! `accounts::forget_sessions`, `reports::send_daily_if_due`, `monitors::check`,
//! `memory::give_back`, `feed_retention`); every run is recorded on the task board
//! (`crate::tasks`) that the System page shows, inside a `run` span named for the task.
//!
//! ```text
//!   the leader (crate::cluster):
//!     maintenance: stall sweep 5 s · trace settle 30 s · log upkeep, daily report 1 min ·
//!                  event, metric, source map, Celery and change-feed retention, expired sessions 1 h
//!     monitor check: its own task, so a hung maintenance run cannot hide a missed monitor
//!     watchdog: Vigie's own heartbeat monitor (`monitors::watchdog`)
//!   every instance: memory return 10 s (it is about this process)
//!   each first runs FIRST_RUN_AFTER (0.5 s) after start, not with a fresh server's first requests
//! ```

use crate::state::AppState;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval};

/// How long after start a task first runs. A fresh server's first requests would otherwise
/// share the two cores of a small machine with every task's first run at once (retention,
/// trace settle, the monitor check: 0.1–4 ms each, BENCHMARKS.md "Where a first start's
/// 17 ms go"); a retention or a sweep half a second later changes nothing. Alert evaluation
/// (`crate::alerts`) is not on this schedule and starts at once.
pub const FIRST_RUN_AFTER: Duration = Duration::from_millis(500);

/// A tick every `period`, the first [`FIRST_RUN_AFTER`] from now.
fn ticks(period: Duration) -> Interval {
    tokio::time::interval_at(Instant::now() + FIRST_RUN_AFTER, period)
}

/// Starts what every instance runs for itself: memory return.
pub fn start_everywhere(state: &AppState) -> JoinHandle<()> {
    let state = state.clone();
    crate::tasks::spawn("memory return", async move {
        let every = crate::memory::GIVE_BACK_EVERY;
        state.tasks.declare("memory return", every);
        let mut tick = ticks(every);
        loop {
            tokio::select! {
                _ = state.hub.shutting_down() => return,
                _ = tick.tick() => {
                    state.tasks.run("memory return", async { crate::memory::give_back() }).await
                }
            }
        }
    })
}

/// Starts the leader's three scheduled tasks; they end when the hub says the server is
/// shutting down (or the lead is lost, see `crate::cluster`).
pub fn start(state: &AppState) -> Vec<JoinHandle<()>> {
    vec![
        crate::tasks::spawn("maintenance", maintain(state.clone())),
        crate::tasks::spawn("monitor check", check_monitors(state.clone())),
        crate::tasks::spawn("watchdog", crate::monitors::watchdog::run(state.clone())),
    ]
}

/// How often small log blocks are merged and retention runs.
const LOG_UPKEEP: Duration = Duration::from_secs(60);

/// How often traces are judged by the keep rules (`crate::traces::settle`).
const TRACE_SETTLE: Duration = Duration::from_secs(30);

/// How often the stall sweep runs: a job turns stalled at most this long after its deadline
/// (the promise is `stall_after` + 15 s).
const STALL_SWEEP: Duration = Duration::from_secs(5);

/// The monitor check, on its own task: when a maintenance task hangs, the monitors (among
/// them Vigie's own, see `monitors::watchdog`) are still checked and the hang is noticed.
async fn check_monitors(state: AppState) {
    let every = crate::monitors::CHECK_EVERY;
    state.tasks.declare("monitor check", every);
    let mut tick = ticks(every);
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = tick.tick() => state.tasks.run("monitor check", crate::monitors::check(&state)).await,
        }
    }
}

/// Vigie's own scheduled tasks: the stall sweep every few seconds, log upkeep and the daily report's clock every minute, forgetting expired sessions, event and
/// Celery retention every hour.
/// Each run is recorded on the task board the System page shows.
async fn maintain(state: AppState) {
    const HOURLY: Duration = Duration::from_secs(3600);
    let schedule = [
        ("stall sweep", STALL_SWEEP),
        ("log upkeep", LOG_UPKEEP),
        ("event retention", HOURLY),
        ("metric retention", HOURLY),
        ("source map retention", HOURLY),
        ("trace settle", TRACE_SETTLE),
        ("celery retention", HOURLY),
        ("expired sessions", HOURLY),
        ("daily report", LOG_UPKEEP),
        ("feed retention", HOURLY),
    ];
    for (name, every) in schedule {
        state.tasks.declare(name, every);
    }
    let mut sweep = ticks(STALL_SWEEP);
    let mut upkeep = ticks(LOG_UPKEEP);
    let mut errors = ticks(HOURLY);
    let mut metrics = ticks(HOURLY);
    let mut sourcemaps = ticks(HOURLY);
    let mut settle = ticks(TRACE_SETTLE);
    let mut celery = ticks(HOURLY);
    let mut sessions = ticks(HOURLY);
    let mut daily = ticks(LOG_UPKEEP);
    let mut feed = ticks(HOURLY);
    let tasks = &state.tasks;
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = sweep.tick() => tasks.run("stall sweep", crate::jobs::sweep_stalled(&state)).await,
            _ = upkeep.tick() => tasks.run("log upkeep", crate::logs::upkeep::upkeep(&state)).await,
            _ = errors.tick() => tasks.run("event retention", crate::sentry::retention(&state)).await,
            _ = metrics.tick() => tasks.run("metric retention", crate::otel_metrics::retention(&state)).await,
            _ = sourcemaps.tick() => tasks.run("source map retention", crate::sourcemaps::retention(&state)).await,
            _ = settle.tick() => tasks.run("trace settle", crate::traces::settle(&state)).await,
            _ = celery.tick() => tasks.run("celery retention", crate::celery::retention(&state)).await,
            _ = sessions.tick() => tasks.run("expired sessions", crate::accounts::forget_sessions(&state)).await,
            _ = daily.tick() => tasks.run("daily report", crate::reports::send_daily_if_due(&state)).await,
            _ = feed.tick() => tasks.run("feed retention", feed_retention(&state)).await,
        }
    }
}

/// How long change-feed entries are kept once every reader has passed them.
const FEED_KEPT: Duration = Duration::from_secs(24 * 3600);

/// Drops change-feed entries every reader has passed, a day after they were written.
async fn feed_retention(state: &AppState) -> Result<String, vigie_store::StoreError> {
    let before = vigie_core::Timestamp::now().millis() - FEED_KEPT.as_millis() as i64;
    let dropped = state
        .store
        .prune_feed(vigie_core::Timestamp(before))
        .await?;
    Ok(format!("{dropped} passed entries dropped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_first_runs_a_moment_after_start_then_every_period() {
        let started = Instant::now();
        let mut tick = ticks(Duration::from_millis(100));
        tick.tick().await;
        let first = started.elapsed();
        assert!(first >= FIRST_RUN_AFTER, "first run after {first:?}");
        tick.tick().await;
        let second = started.elapsed();
        assert!(
            second >= FIRST_RUN_AFTER + Duration::from_millis(100),
            "second run after {second:?}"
        );
    }
}
