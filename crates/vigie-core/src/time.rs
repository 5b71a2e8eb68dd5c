//! Timestamps: milliseconds since the Unix epoch, UTC.
//!
//! One integer works the same on SQLite and PostgreSQL, sorts correctly, and converts to
//! RFC 3339 for the API and to "3 min ago" for the UI.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, in nanoseconds since the epoch: the clock of log records.
pub fn now_ns() -> i64 {
    saturating_ns(OffsetDateTime::now_utc().unix_timestamp_nanos())
}

/// How far ahead of its arrival a time may be and still be taken as sent: clocks drift, a
/// day does not.
pub const MAX_AHEAD_NS: i64 = 24 * 3600 * 1_000_000_000;
/// How far back a time may be: old files are imported, but nothing of Vigie's users is older
/// than twenty years, and a time before that is a unit mistake or a zero.
pub const MAX_BEHIND_NS: i64 = 20 * 365 * 24 * 3600 * 1_000_000_000;

/// Whether a sender's time (ns) is one Vigie stores as it is, for data received at
/// `received` (ns): within [`MAX_BEHIND_NS`] before and [`MAX_AHEAD_NS`] after. Outside, the
/// record is stored at its receive time and keeps what was sent in a field (see
/// `LogRecord::place_in_time`), so a year-9999 line cannot sit on top of every search, nor a
/// wrapped negative time be deleted by retention at once.
pub fn plausible_ns(time: i64, received: i64) -> bool {
    time >= received.saturating_sub(MAX_BEHIND_NS) && time <= received.saturating_add(MAX_AHEAD_NS)
}

/// Nanoseconds since the epoch from a wider count, saturating instead of wrapping (a year
/// after 2262 does not fit in an i64 of nanoseconds).
pub fn saturating_ns(nanos: i128) -> i64 {
    nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The spelling nearly every log line's time has, `2026-11-24T15:00:00.123456Z` (a `T`, up to
/// nine digits of fraction, `Z` or `±HH:MM`), read by hand: what `time`'s RFC 3339 parser
/// answers for it, at a fraction of its cost (it was 2.4 % of log ingest's CPU). `None`
/// for anything else — another spelling, a leap second, a day the month does not have — which
/// the caller hands to the full parser, so this only ever decides the common case.
pub fn rfc3339_ns(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if b[at] == b'.' {
        let digits = b[at + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(at + 1..at + 1 + digits)? * 10i64.pow(9 - digits as u32);
        at += 1 + digits;
    }
    let offset = match &b[at..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let east = (h * 60 + m) * 60;
            if *sign == b'+' {
                east
            } else {
                -east
            }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(saturating_ns(
        i128::from(seconds) * 1_000_000_000 + i128::from(nanos),
    ))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
/// Written here rather than taken from `time` (`Date::from_calendar_date(…)?.to_julian_day()`,
/// which also checks the day): with `time`'s, the JSON-lines parser took 11–40 ns more per
/// line (`vigie-bench parse-logs`, three runs of each build alternating, 1,131–1,142 against
/// 1,153–1,171 ns).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time in ns as a person reads it: RFC 3339, or the raw count when no date has it.
pub fn describe_ns(time: i64) -> String {
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(time)) {
        Ok(t) if time != i64::MAX && time != i64::MIN => {
            t.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
        }
        _ => "beyond the year 2262".to_string(),
    }
}

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Timestamp((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus(self, duration: std::time::Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(duration.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    /// Reads an RFC 3339 time (`2026-11-21T10:40:00Z`, any offset).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let at = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
        Some(Timestamp(saturating_ns(
            at.unix_timestamp_nanos() / 1_000_000,
        )))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-21T10:40:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => t.format(&Rfc3339).unwrap_or_else(|_| self.0.to_string()),
            Err(_) => self.0.to_string(),
        }
    }

    /// How long before `now` this was, the way a person says it: "just now", "5 min ago",
    /// "3 h ago", "2 days ago". Future times read as "in 5 min".
    pub fn relative_to(self, now: Timestamp) -> String {
        let delta = now.0 - self.0;
        let (secs, future) = ((delta.abs() / 1000), delta < 0);
        if secs < 10 {
            return "just now".to_string();
        }
        let amount = if secs < 60 {
            format!("{secs} s")
        } else if secs < 3600 {
            format!("{} min", secs / 60)
        } else if secs < 86_400 {
            format!("{} h", secs / 3600)
        } else {
            crate::numbers::count(secs / 86_400, "day", "days")
        };
        if future {
            format!("in {amount}")
        } else {
            format!("{amount} ago")
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_spelling_reads_as_the_full_parser_reads_it() {
        use rand::{Rng, SeedableRng};
        let full = |text: &str| {
            OffsetDateTime::parse(text, &Rfc3339)
                .ok()
                .map(|t| saturating_ns(t.unix_timestamp_nanos()))
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut decided = 0;
        for i in 0..200_000 {
            let fraction = match rng.gen_range(0..4) {
                0 => String::new(),
                _ => format!(".{}", &"123456789012"[..rng.gen_range(0..12)]),
            };
            let offset = match rng.gen_range(0..4) {
                0 => "Z".to_string(),
                1 => format!("+{:02}:{:02}", rng.gen_range(0..26), rng.gen_range(0..62)),
                2 => format!("-{:02}:{:02}", rng.gen_range(0..26), rng.gen_range(0..62)),
                _ => ["z", "+0100", "", " Z", "+01:00:00"][rng.gen_range(0..5)].to_string(),
            };
            let mut text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{offset}",
                [1969, 1970, 2000, 2024, 2026, 2100, 2262, 2263, 9999, 0][rng.gen_range(0..10)],
                rng.gen_range(0..14),
                rng.gen_range(0..33),
                rng.gen_range(0..25),
                rng.gen_range(0..61),
                rng.gen_range(0..62),
            );
            if i % 5 == 0 {
                // Damage one byte: whatever it becomes, both parsers must agree.
                let mut bytes = text.into_bytes();
                let at = rng.gen_range(0..bytes.len());
                bytes[at] = b"0123456789-:T.Z+ tx"[rng.gen_range(0..19)];
                text = String::from_utf8(bytes).unwrap();
            }
            if let Some(fast) = rfc3339_ns(&text) {
                assert_eq!(Some(fast), full(&text), "{text}");
                decided += 1;
            }
        }
        assert!(
            decided > 50_000,
            "the common case is decided here: {decided}"
        );
        assert_eq!(
            rfc3339_ns("2026-11-24T15:00:00.123456Z"),
            Some(1_795_532_400_123_456_000)
        );
        assert_eq!(
            rfc3339_ns("2024-02-29T23:59:59+01:00"),
            Some(1_709_247_599_000_000_000)
        );
        assert_eq!(rfc3339_ns("2023-02-29T00:00:00Z"), None);
    }

    #[test]
    fn formats_rfc3339_in_utc() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp(1_700_000_000_123).to_rfc3339(),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = Timestamp(10_000_000_000);
        assert_eq!(Timestamp(now.0 - 3_000).relative_to(now), "just now");
        assert_eq!(Timestamp(now.0 - 45_000).relative_to(now), "45 s ago");
        assert_eq!(Timestamp(now.0 - 5 * 60_000).relative_to(now), "5 min ago");
        assert_eq!(Timestamp(now.0 - 3 * 3_600_000).relative_to(now), "3 h ago");
        assert_eq!(Timestamp(now.0 - 86_400_000).relative_to(now), "1 day ago");
        assert_eq!(Timestamp(now.0 + 120_000).relative_to(now), "in 2 min");
    }

    #[test]
    fn plus_saturates() {
        let far = Timestamp(i64::MAX - 1).plus(std::time::Duration::from_secs(10));
        assert_eq!(far, Timestamp(i64::MAX));
    }
}
