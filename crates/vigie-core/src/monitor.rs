//! Cron and heartbeat monitors: what a monitor expects, the runs it records, and the states it
//! moves through.
//!
//! A monitor is created by its first check-in (a Sentry `check_in` item, or a ping URL) and
//! configured by the `monitor_config` that SDKs send with check-ins. Each check-in is a
//! **run**: `in_progress` opens one, `ok` / `error` with the same check-in id closes it, and a
//! lone `ok` / `error` is a run that started and ended at once. The periodic monitor check adds
//! the runs nobody reported:
//!
//! ```text
//!  expected at E ──── E + margin passes without a check-in ───► a `missed` run, state down
//!  in_progress at S ─ S + max_runtime passes without the end ──► the run `timed_out`, down
//! ```
//!
//! States: **new** (never checked in), **up** (the last run ended ok), **late** (the expected
//! time has passed, the margin has not), **down** (the last run failed, was missed or timed
//! out), **paused** (not checked).

use crate::schedule::Schedule;
use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// How a monitor is checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorConfig {
    pub schedule: Schedule,
    /// Minutes a check-in may be late before the run counts as missed.
    pub checkin_margin_min: u32,
    /// Minutes a run may stay in progress before it counts as timed out.
    pub max_runtime_min: u32,
}

impl MonitorConfig {
    /// Sentry's defaults: one minute of margin, thirty minutes of runtime.
    pub const DEFAULT_MARGIN_MIN: u32 = 1;
    pub const DEFAULT_MAX_RUNTIME_MIN: u32 = 30;

    pub fn new(schedule: Schedule) -> MonitorConfig {
        MonitorConfig {
            schedule,
            checkin_margin_min: Self::DEFAULT_MARGIN_MIN,
            max_runtime_min: Self::DEFAULT_MAX_RUNTIME_MIN,
        }
    }

    pub fn margin_ms(&self) -> i64 {
        i64::from(self.checkin_margin_min.max(1)) * 60_000
    }

    pub fn max_runtime_ms(&self) -> i64 {
        i64::from(self.max_runtime_min.max(1)) * 60_000
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorState {
    New,
    Up,
    Late,
    Down,
    Paused,
}

impl MonitorState {
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorState::New => "new",
            MonitorState::Up => "up",
            MonitorState::Late => "late",
            MonitorState::Down => "down",
            MonitorState::Paused => "paused",
        }
    }
}

/// What a run came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    InProgress,
    Ok,
    Error,
    Missed,
    TimedOut,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::InProgress => "in_progress",
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Missed => "missed",
            RunStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        Some(match text {
            "in_progress" => RunStatus::InProgress,
            "ok" => RunStatus::Ok,
            "error" => RunStatus::Error,
            "missed" => RunStatus::Missed,
            "timed_out" => RunStatus::TimedOut,
            _ => return None,
        })
    }

    pub fn failed(self) -> bool {
        matches!(
            self,
            RunStatus::Error | RunStatus::Missed | RunStatus::TimedOut
        )
    }

    /// The monitor's state after a run ends this way.
    pub fn state_after(self) -> MonitorState {
        if self.failed() {
            MonitorState::Down
        } else {
            MonitorState::Up
        }
    }
}

/// The state shown for a monitor whose stored state is `stored`, expected at `next_expected`.
/// "Late" is never stored: it is the time between the expected check-in and the margin.
pub fn shown_state(
    stored: MonitorState,
    paused: bool,
    next_expected: Option<Timestamp>,
    now: Timestamp,
) -> MonitorState {
    if paused {
        return MonitorState::Paused;
    }
    match next_expected {
        Some(e) if now > e && stored != MonitorState::Down => MonitorState::Late,
        _ => stored,
    }
}

/// When the monitor is next expected after a check-in at `at` (`None`: nothing to expect).
pub fn next_expected(config: &MonitorConfig, at: Timestamp) -> Option<Timestamp> {
    config.schedule.next_after(at)
}

/// What the periodic check finds for one monitor.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// Nobody checked in for the run expected at `expected_at`; the monitor is next expected
    /// at `next` (the first scheduled time after now, so an outage of hours is one missed
    /// run, not hundreds).
    Missed {
        expected_at: Timestamp,
        next: Option<Timestamp>,
    },
}

/// The missed run of a monitor expected at `expected`, if the margin has passed by `now`.
pub fn check_missed(
    config: &MonitorConfig,
    expected: Option<Timestamp>,
    now: Timestamp,
) -> Option<Finding> {
    let expected_at = expected?;
    if now.millis() <= expected_at.millis() + config.margin_ms() {
        return None;
    }
    // The next scheduled time after now (a heartbeat: one interval after the miss was noticed).
    let next = config.schedule.next_after(now);
    Some(Finding::Missed { expected_at, next })
}

/// The runtime limit of a monitor with `config`, or the default one without.
pub fn max_runtime_ms(config: Option<&MonitorConfig>) -> i64 {
    config.map_or(
        i64::from(MonitorConfig::DEFAULT_MAX_RUNTIME_MIN) * 60_000,
        MonitorConfig::max_runtime_ms,
    )
}

/// Whether a run in progress since `started` has run past `max_runtime_ms` by `now`.
pub fn timed_out(max_runtime_ms: i64, started: Timestamp, now: Timestamp) -> bool {
    now.millis() > started.millis() + max_runtime_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::IntervalUnit;

    const MIN: i64 = 60_000;

    fn hourly() -> MonitorConfig {
        MonitorConfig::new(Schedule::crontab("0 * * * *", "UTC").unwrap())
    }

    #[test]
    fn a_run_is_missed_only_after_the_margin() {
        let config = MonitorConfig {
            checkin_margin_min: 5,
            ..hourly()
        };
        let expected = Timestamp(1_800_000_000_000 / (60 * MIN) * (60 * MIN));
        assert_eq!(
            check_missed(&config, Some(expected), Timestamp(expected.0 + 5 * MIN)),
            None
        );
        let found = check_missed(&config, Some(expected), Timestamp(expected.0 + 5 * MIN + 1));
        assert_eq!(
            found,
            Some(Finding::Missed {
                expected_at: expected,
                next: Some(Timestamp(expected.0 + 60 * MIN))
            })
        );
        // Hours later: one missed run, and the next expected time is in the future.
        let late = Timestamp(expected.0 + 5 * 60 * MIN + 7 * MIN);
        let Some(Finding::Missed { next, .. }) = check_missed(&config, Some(expected), late) else {
            panic!("missed")
        };
        assert_eq!(next, Some(Timestamp(expected.0 + 6 * 60 * MIN)));
        assert_eq!(check_missed(&config, None, late), None, "a new monitor");
    }

    #[test]
    fn heartbeats_and_runtimes() {
        let config = MonitorConfig::new(Schedule::interval(10, IntervalUnit::Minute).unwrap());
        let last = Timestamp(1_800_000_000_000);
        let expected = next_expected(&config, last).unwrap();
        assert_eq!(expected, Timestamp(last.0 + 10 * MIN));
        assert!(check_missed(&config, Some(expected), Timestamp(expected.0 + MIN)).is_none());
        assert!(check_missed(&config, Some(expected), Timestamp(expected.0 + MIN + 1)).is_some());
        let limit = max_runtime_ms(Some(&config));
        assert_eq!(limit, max_runtime_ms(None), "30 min, configured or not");
        assert!(!timed_out(limit, last, Timestamp(last.0 + 30 * MIN)));
        assert!(timed_out(limit, last, Timestamp(last.0 + 30 * MIN + 1)));
    }

    #[test]
    fn states_shown() {
        let e = Timestamp(1_000);
        let show = |stored, paused, now| shown_state(stored, paused, Some(e), Timestamp(now));
        assert_eq!(show(MonitorState::Up, false, 999), MonitorState::Up);
        assert_eq!(show(MonitorState::Up, false, 1_001), MonitorState::Late);
        assert_eq!(show(MonitorState::New, false, 1_001), MonitorState::Late);
        assert_eq!(show(MonitorState::Down, false, 1_001), MonitorState::Down);
        assert_eq!(show(MonitorState::Down, true, 1_001), MonitorState::Paused);
        assert_eq!(RunStatus::Missed.state_after(), MonitorState::Down);
        assert_eq!(RunStatus::Ok.state_after(), MonitorState::Up);
        assert_eq!(RunStatus::parse("timed_out"), Some(RunStatus::TimedOut));
    }
}
