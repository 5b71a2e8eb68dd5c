//! Vigie's own schedule: which periodic task runs how often. Each task's body lives in its
//! feature (`jobs::sweep_stalled`, `logs::upkeep`, `sentry::retention`, `celery::retention`,
//! `accounts::forget_sessions`, `reports::send_daily_if_due`, `monitors::check`,
//! `memory::give_back`); every run is recorded on the task board (`crate::tasks`) that the
//! System page shows, inside a `run` span named for the task.
//!
//! ```text
//!   maintenance: stall sweep 5 s · memory return 10 s · log upkeep, daily report 1 min ·
//!                event and Celery retention, expired sessions 1 h
//!   monitor check: its own task, so a hung maintenance run cannot hide a missed monitor
//!   watchdog: Vigie's own heartbeat monitor (`monitors::watchdog`)
//! ```

use crate::state::AppState;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Starts the schedule's three tasks; they end when the hub says the server is shutting down.
pub fn start(state: &AppState) -> Vec<JoinHandle<()>> {
    vec![
        crate::tasks::spawn("maintenance", maintain(state.clone())),
        crate::tasks::spawn("monitor check", check_monitors(state.clone())),
        crate::tasks::spawn("watchdog", crate::monitors::watchdog::run(state.clone())),
    ]
}

/// How often small log blocks are merged and retention runs.
const LOG_UPKEEP: Duration = Duration::from_secs(60);

/// How often the stall sweep runs: a job turns stalled at most this long after its deadline
/// (the promise is `stall_after` + 15 s).
const STALL_SWEEP: Duration = Duration::from_secs(5);

/// The monitor check, on its own task: when a maintenance task hangs, the monitors (among
/// them Vigie's own, see `monitors::watchdog`) are still checked and the hang is noticed.
async fn check_monitors(state: AppState) {
    let every = crate::monitors::CHECK_EVERY;
    state.tasks.declare("monitor check", every);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = tick.tick() => state.tasks.run("monitor check", crate::monitors::check(&state)).await,
        }
    }
}

/// Vigie's own scheduled tasks: the stall sweep every few seconds, memory return every 10 s,
/// log upkeep and the daily report's clock every minute, forgetting expired sessions, event and
/// Celery retention every hour.
/// Each run is recorded on the task board the System page shows.
async fn maintain(state: AppState) {
    const HOURLY: Duration = Duration::from_secs(3600);
    let schedule = [
        ("stall sweep", STALL_SWEEP),
        ("log upkeep", LOG_UPKEEP),
        ("event retention", HOURLY),
        ("celery retention", HOURLY),
        ("expired sessions", HOURLY),
        ("daily report", LOG_UPKEEP),
        ("memory return", crate::memory::GIVE_BACK_EVERY),
    ];
    for (name, every) in schedule {
        state.tasks.declare(name, every);
    }
    let mut sweep = tokio::time::interval(STALL_SWEEP);
    let mut upkeep = tokio::time::interval(LOG_UPKEEP);
    let mut errors = tokio::time::interval(HOURLY);
    let mut celery = tokio::time::interval(HOURLY);
    let mut sessions = tokio::time::interval(HOURLY);
    let mut daily = tokio::time::interval(LOG_UPKEEP);
    let mut memory = tokio::time::interval(crate::memory::GIVE_BACK_EVERY);
    let tasks = &state.tasks;
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = sweep.tick() => tasks.run("stall sweep", crate::jobs::sweep_stalled(&state)).await,
            _ = upkeep.tick() => tasks.run("log upkeep", crate::logs::upkeep::upkeep(&state)).await,
            _ = errors.tick() => tasks.run("event retention", crate::sentry::retention(&state)).await,
            _ = celery.tick() => tasks.run("celery retention", crate::celery::retention(&state)).await,
            _ = sessions.tick() => tasks.run("expired sessions", crate::accounts::forget_sessions(&state)).await,
            _ = daily.tick() => tasks.run("daily report", crate::reports::send_daily_if_due(&state)).await,
            _ = memory.tick() => tasks.run("memory return", async { crate::memory::give_back() }).await,
        }
    }
}
