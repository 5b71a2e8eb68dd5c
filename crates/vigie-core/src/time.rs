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
            let days = secs / 86_400;
            format!("{days} day{}", if days == 1 { "" } else { "s" })
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
