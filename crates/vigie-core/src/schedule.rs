//! Monitor schedules: when a cron job or a heartbeat is expected to check in next.
//!
//! Two kinds, as Sentry's `monitor_config.schedule` sends them:
//!
//! - **crontab**: five fields `minute hour day-of-month month day-of-week` with `*`, lists
//!   (`1,15`), ranges (`1-5`), steps (`*/10`, `8-18/2`), month and weekday names (`jan`,
//!   `mon-fri`), `7` for Sunday, and the macros `@hourly`, `@daily`/`@midnight`, `@weekly`,
//!   `@monthly`, `@yearly`/`@annually`. As in Vixie cron, when both day fields are restricted a
//!   day matches if **either** does (`0 0 1 * mon`: the 1st and every Monday). Times are read
//!   in the monitor's IANA time zone: a time skipped by a DST jump runs at the first minute after
//!   the jump, a time repeated by a DST fall runs once.
//! - **interval**: every N minutes, hours, days, weeks, months or years after the last check-in.
//!
//! Parsing refuses, with the reason, anything that would silently never fire (`0 0 30 feb *`).

use crate::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use std::fmt;

/// When a monitor is expected.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Crontab { cron: Cron, timezone: String },
    Interval { every: u32, unit: IntervalUnit },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntervalUnit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl IntervalUnit {
    pub fn parse(text: &str) -> Result<IntervalUnit, ScheduleError> {
        Ok(match text.trim().trim_end_matches('s') {
            "minute" => IntervalUnit::Minute,
            "hour" => IntervalUnit::Hour,
            "day" => IntervalUnit::Day,
            "week" => IntervalUnit::Week,
            "month" => IntervalUnit::Month,
            "year" => IntervalUnit::Year,
            _ => {
                return Err(ScheduleError(format!(
                    "unknown interval unit \"{text}\" (minute, hour, day, week, month or year)"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IntervalUnit::Minute => "minute",
            IntervalUnit::Hour => "hour",
            IntervalUnit::Day => "day",
            IntervalUnit::Week => "week",
            IntervalUnit::Month => "month",
            IntervalUnit::Year => "year",
        }
    }
}

/// Why a schedule was refused; the text says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

impl Schedule {
    /// A crontab schedule in `timezone` (an IANA name such as `Europe/Paris`; `UTC` when
    /// empty).
    pub fn crontab(expression: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let timezone = if timezone.trim().is_empty() {
            "UTC".to_string()
        } else {
            timezone.trim().to_string()
        };
        zone(&timezone)?;
        let cron = Cron::parse(expression)?;
        let schedule = Schedule::Crontab { cron, timezone };
        // A day that never comes (the 30th of February) is a mistake worth saying now.
        if schedule.next_after(Timestamp(0)).is_none() {
            return Err(ScheduleError(format!(
                "\"{expression}\" never matches a real date"
            )));
        }
        Ok(schedule)
    }

    pub fn interval(every: u32, unit: IntervalUnit) -> Result<Schedule, ScheduleError> {
        if every == 0 {
            return Err(ScheduleError("an interval must be at least 1".into()));
        }
        Ok(Schedule::Interval { every, unit })
    }

    /// A schedule as a person types it: a crontab expression (`0 3 * * *`, `@daily`) read in
    /// `timezone`, or `every N unit` (`every 10 minutes`, `every hour`).
    pub fn parse(text: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix("every ") else {
            return Schedule::crontab(text, timezone);
        };
        let mut words = rest.split_whitespace();
        let (every, unit) = match (words.next(), words.next(), words.next()) {
            (Some(unit), None, None) => (1, unit),
            (Some(n), Some(unit), None) => (
                n.parse()
                    .map_err(|_| ScheduleError(format!("\"{n}\" is not a whole number")))?,
                unit,
            ),
            _ => {
                return Err(ScheduleError(format!(
                    "\"{text}\" is neither a crontab expression nor \"every N minutes\""
                )))
            }
        };
        Schedule::interval(every, IntervalUnit::parse(unit)?)
    }

    /// The first expected time strictly after `after` (for an interval: `after` plus the
    /// interval, `after` being the last check-in). `None` only if nothing comes in 8 years.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Crontab { cron, timezone } => cron.next_after(after, &zone(timezone).ok()?),
            Schedule::Interval { every, unit } => {
                let every = i64::from(*every);
                let minutes = match unit {
                    IntervalUnit::Minute => every,
                    IntervalUnit::Hour => every * 60,
                    IntervalUnit::Day => every * 1440,
                    IntervalUnit::Week => every * 7 * 1440,
                    IntervalUnit::Month | IntervalUnit::Year => {
                        let months = if *unit == IntervalUnit::Year {
                            every * 12
                        } else {
                            every
                        };
                        let at = jiff::Timestamp::from_millisecond(after.millis()).ok()?;
                        let later = at
                            .to_zoned(TimeZone::UTC)
                            .checked_add(jiff::Span::new().months(months))
                            .ok()?;
                        return Some(Timestamp(later.timestamp().as_millisecond()));
                    }
                };
                Some(Timestamp(after.millis() + minutes * 60_000))
            }
        }
    }

    /// How the schedule reads: `0 3 * * * (Europe/Paris)`, `every 10 minutes`.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Crontab { cron, timezone } if timezone == "UTC" => write!(f, "{cron}"),
            Schedule::Crontab { cron, timezone } => write!(f, "{cron} ({timezone})"),
            Schedule::Interval { every: 1, unit } => write!(f, "every {}", unit.as_str()),
            Schedule::Interval { every, unit } => write!(f, "every {every} {}s", unit.as_str()),
        }
    }
}

fn zone(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name).map_err(|_| {
        ScheduleError(format!(
            "unknown time zone \"{name}\" (use an IANA name such as Europe/Paris, or UTC)"
        ))
    })
}

/// A parsed five-field cron expression: each field a bit set of the values it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    /// Bit 0 is Sunday … bit 6 Saturday.
    weekdays: u64,
    /// Whether the day-of-month / day-of-week field was `*` (for the either-day rule).
    any_day: bool,
    any_weekday: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    pub fn parse(expression: &str) -> Result<Cron, ScheduleError> {
        let text = expression.trim();
        let expanded = match text.to_ascii_lowercase().as_str() {
            "@hourly" => "0 * * * *".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            other if other.starts_with('@') => {
                return Err(ScheduleError(format!(
                    "unknown cron macro \"{text}\" (@hourly, @daily, @weekly, @monthly, @yearly)"
                )))
            }
            other => other.to_string(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError(format!(
                "\"{text}\" has {} fields; a cron expression has five: minute hour \
                 day-of-month month day-of-week",
                fields.len()
            )));
        }
        let weekdays = field(fields[4], "day of week", 0, 7, &WEEKDAYS)?;
        // 7 is Sunday too.
        let weekdays = (weekdays | (weekdays >> 7)) & 0x7f;
        Ok(Cron {
            text: text.to_string(),
            minutes: field(fields[0], "minute", 0, 59, &[])?,
            hours: field(fields[1], "hour", 0, 23, &[])?,
            days: field(fields[2], "day of month", 1, 31, &[])?,
            months: field(fields[3], "month", 1, 12, &MONTHS)?,
            weekdays,
            any_day: fields[2] == "*" || fields[2] == "?",
            any_weekday: fields[4] == "*" || fields[4] == "?",
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.any_day, self.any_weekday) {
            (false, false) => day || weekday,
            _ => day && weekday,
        }
    }

    /// The first matching minute strictly after `after`, in `tz`.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = jiff::Timestamp::from_millisecond(after.millis()).ok()?;
        let civil = start.to_zoned(tz.clone()).datetime();
        // The next whole minute, in wall-clock time.
        let mut at = civil
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(jiff::Span::new().minutes(1))
            .ok()?;
        let limit = civil.date().checked_add(jiff::Span::new().years(8)).ok()?;
        while at.date() < limit {
            if self.months & (1 << at.month()) == 0 {
                let first = Date::new(at.year(), at.month(), 1).ok()?;
                at = first
                    .checked_add(jiff::Span::new().months(1))
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if !self.day_matches(at.date()) {
                at = next_day(at)?;
                continue;
            }
            if self.hours & (1 << at.hour()) == 0 {
                at = at
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(jiff::Span::new().hours(1))
                    .ok()?;
                continue;
            }
            if self.minutes & (1 << at.minute()) == 0 {
                at = at.checked_add(jiff::Span::new().minutes(1)).ok()?;
                continue;
            }
            // A wall-clock time a DST jump skipped maps to just after the jump; one a fall
            // repeats maps to its first occurrence.
            let instant = tz.to_ambiguous_zoned(at).compatible().ok()?.timestamp();
            if instant > start {
                return Some(Timestamp(instant.as_millisecond()));
            }
            at = at.checked_add(jiff::Span::new().minutes(1)).ok()?;
        }
        None
    }
}

fn next_day(at: DateTime) -> Option<DateTime> {
    Some(
        at.date()
            .tomorrow()
            .ok()?
            .to_datetime(jiff::civil::Time::midnight()),
    )
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One cron field as a bit set: `*`, `a`, `a-b`, `*/n`, `a-b/n`, `a/n`, lists of those;
/// `names` (lower case) stand for `min`, `min + 1`, ….
fn field(text: &str, what: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, ScheduleError> {
    let bad = |why: String| ScheduleError(format!("{what} \"{text}\": {why}"));
    let value = |raw: &str| -> Result<u32, ScheduleError> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(raw)) {
            return Ok(min + i as u32);
        }
        let n: u32 = raw
            .parse()
            .map_err(|_| bad(format!("\"{raw}\" is not a number")))?;
        if n < min || n > max {
            return Err(bad(format!("{n} is outside {min}–{max}")));
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 =
                    step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        bad(format!("the step \"{step}\" is not a positive number"))
                    })?;
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `a/n` runs from a to the end of the field.
                None if step > 1 => (value(range)?, max),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        if low > high {
            return Err(bad(format!("the range {low}-{high} runs backwards")));
        }
        for v in (low..=high).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp(
            text.parse::<jiff::Timestamp>()
                .expect("an RFC 3339 time")
                .as_millisecond(),
        )
    }

    /// Checks each case's next run in `tz`; a case reads `"<cron> after <time> → <next run>"`.
    fn assert_next_runs(tz: &str, cases: &[&str]) {
        for case in cases {
            let (expr, times) = case.split_once(" after ").expect("<cron> after …");
            let (after, expected) = times.split_once(" → ").expect("<time> → <next run>");
            let next = Schedule::crontab(expr.trim(), tz)
                .unwrap()
                .next_after(at(after));
            assert_eq!(next, Some(at(expected)), "{case} ({tz})");
        }
    }

    #[test]
    fn crontab_fields_ranges_steps_and_names() {
        // No time zone is UTC.
        assert_next_runs(
            "",
            &["*/15 * * * *  after 2025-01-10T22:20:30Z → 2025-01-10T22:30:00Z"],
        );
        assert_next_runs(
            "UTC",
            &[
                "0 3 * * *              after 2025-01-10T22:20:00Z → 2025-01-11T03:00:00Z",
                // Friday evening → Monday morning.
                "30 8-18/2 * * mon-fri  after 2025-01-10T18:31:00Z → 2025-01-13T08:30:00Z",
                "0 0 1 jan,jul *        after 2025-01-10T00:00:00Z → 2025-07-01T00:00:00Z",
                // Strictly after.
                "@hourly                after 2025-01-10T22:00:00Z → 2025-01-10T23:00:00Z",
                // 7 is Sunday.
                "0 12 * * 7             after 2025-01-10T00:00:00Z → 2025-01-12T12:00:00Z",
                // Both day fields restricted: either matches (the 15th, a Wednesday, or a
                // Monday).
                "0 0 15 * mon           after 2025-01-10T00:00:00Z → 2025-01-13T00:00:00Z",
                "0 0 15 * mon           after 2025-01-13T00:00:00Z → 2025-01-15T00:00:00Z",
                // The next leap day.
                "0 0 29 2 *             after 2025-01-01T00:00:00Z → 2028-02-29T00:00:00Z",
            ],
        );
    }

    #[test]
    fn crontab_in_a_time_zone_across_dst() {
        assert_next_runs(
            "Europe/Paris",
            &[
                // 03:00 in Paris is 02:00 UTC in winter, 01:00 UTC in summer.
                "0 3 * * *   after 2025-01-10T12:00:00Z → 2025-01-11T02:00:00Z",
                "0 3 * * *   after 2025-07-10T12:00:00Z → 2025-07-11T01:00:00Z",
                // 2025-03-30 02:30 does not exist in Paris (02:00 → 03:00): 03:30 CEST.
                "30 2 * * *  after 2025-03-29T12:00:00Z → 2025-03-30T01:30:00Z",
                // 2025-10-26 02:30 happens twice in Paris: it runs once, at the first, and not
                // again at the repeated 02:30.
                "30 2 * * *  after 2025-10-25T12:00:00Z → 2025-10-26T00:30:00Z",
                "30 2 * * *  after 2025-10-26T00:30:00Z → 2025-10-27T01:30:00Z",
            ],
        );
    }

    #[test]
    fn intervals_count_from_the_last_check_in() {
        let every = |n, unit| Schedule::interval(n, unit).unwrap();
        let t = at("2025-01-31T10:00:00Z");
        assert_eq!(
            every(10, IntervalUnit::Minute).next_after(t),
            Some(at("2025-01-31T10:10:00Z"))
        );
        assert_eq!(
            every(2, IntervalUnit::Day).next_after(t),
            Some(at("2025-02-02T10:00:00Z"))
        );
        assert_eq!(
            every(1, IntervalUnit::Month).next_after(t),
            Some(at("2025-02-28T10:00:00Z")),
            "the end of a shorter month"
        );
        assert_eq!(
            every(10, IntervalUnit::Minute).describe(),
            "every 10 minutes"
        );
        assert_eq!(every(1, IntervalUnit::Hour).describe(), "every hour");
        assert_eq!(IntervalUnit::parse("weeks"), Ok(IntervalUnit::Week));
        assert!(Schedule::interval(0, IntervalUnit::Day).is_err());
    }

    #[test]
    fn schedules_as_people_type_them() {
        let parse = |text: &str| Schedule::parse(text, "Europe/Paris").map(|s| s.describe());
        assert_eq!(parse("every 10 minutes").unwrap(), "every 10 minutes");
        assert_eq!(parse("every hour").unwrap(), "every hour");
        assert_eq!(parse(" 0 3 * * * ").unwrap(), "0 3 * * * (Europe/Paris)");
        assert_eq!(parse("@daily").unwrap(), "@daily (Europe/Paris)");
        assert!(parse("every ten minutes")
            .unwrap_err()
            .0
            .contains("not a whole number"));
        assert!(parse("every 0 days").is_err());
        assert!(parse("every 2 blue moons").is_err());
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        let error = |expr: &str, tz: &str| Schedule::crontab(expr, tz).unwrap_err().0;
        assert!(error("0 3 * *", "").contains("has 4 fields"));
        assert!(error("61 * * * *", "").contains("minute \"61\": 61 is outside 0–59"));
        assert!(error("0 0 * foo *", "").contains("\"foo\" is not a number"));
        assert!(error("*/0 * * * *", "").contains("step"));
        assert!(error("0 5-1 * * *", "").contains("runs backwards"));
        assert!(error("0 0 30 feb *", "").contains("never matches"));
        assert!(error("@often", "").contains("unknown cron macro"));
        assert!(error("0 3 * * *", "Mars/Olympus").contains("unknown time zone"));
        assert!(IntervalUnit::parse("fortnight").is_err());
        assert_eq!(
            Schedule::crontab("0 3 * * *", "Europe/Paris")
                .unwrap()
                .describe(),
            "0 3 * * * (Europe/Paris)"
        );
    }
}
