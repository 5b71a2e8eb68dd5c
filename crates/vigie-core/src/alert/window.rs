//! Sliding windows for threshold rules: "more than N in the last 5 minutes", kept in memory and
//! updated as things arrive, so a rule is judged without reading stored data again.
//!
//! A window is cut into at most [`BUCKETS`] buckets (never shorter than a second); only
//! buckets that received something exist, so a quiet rule costs nothing and a busy one a few
//! kilobytes. The edge of the window moves a bucket at a time: a count may include up to one
//! bucket (1/60 of the window) more than the exact window.
//!
//! What a bucket holds is a [`Tally`]: a count, a count of failures among a total, or a
//! duration [`Sketch`] for percentiles.

use crate::sketch::Sketch;
use std::collections::VecDeque;

/// Most buckets in a window.
pub const BUCKETS: i64 = 60;

/// What one bucket accumulates; buckets add up into the window's total.
pub trait Tally: Default {
    fn add_to(&self, total: &mut Self);
}

impl Tally for u64 {
    fn add_to(&self, total: &mut u64) {
        *total += self;
    }
}

impl Tally for Sketch {
    fn add_to(&self, total: &mut Sketch) {
        total.merge(self);
    }
}

/// Failures among a total: a failure rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ratio {
    pub total: u64,
    pub failed: u64,
}

impl Ratio {
    /// Whether more than `percent` % failed.
    pub fn above(&self, percent: u32) -> bool {
        self.failed * 100 > u64::from(percent) * self.total
    }

    /// The failure rate in percent (0 when empty).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.failed as f64 * 100.0 / self.total as f64
        }
    }
}

impl Tally for Ratio {
    fn add_to(&self, total: &mut Ratio) {
        total.total += self.total;
        total.failed += self.failed;
    }
}

/// The last `window` milliseconds of a tally, in buckets ordered by time.
#[derive(Clone, Debug)]
pub struct Window<T> {
    window_ms: i64,
    bucket_ms: i64,
    buckets: VecDeque<(i64, T)>,
}

impl<T: Tally> Window<T> {
    pub fn new(window_s: u64) -> Window<T> {
        let window_ms = (window_s.max(1) * 1000) as i64;
        Window {
            window_ms,
            bucket_ms: (window_ms / BUCKETS).max(1000),
            buckets: VecDeque::new(),
        }
    }

    /// The bucket for something that happened at `at_ms` (ms since the epoch), seen at
    /// `now_ms`; `None` when it is older than the window (an imported file's old lines do not
    /// count towards an alert about now). A time ahead of `now_ms` counts as now.
    pub fn at(&mut self, at_ms: i64, now_ms: i64) -> Option<&mut T> {
        let at_ms = at_ms.min(now_ms);
        if at_ms <= now_ms - self.window_ms {
            return None;
        }
        let start = at_ms - at_ms.rem_euclid(self.bucket_ms);
        // Nearly always the newest bucket; older times walk back from the end.
        let mut i = self.buckets.len();
        while i > 0 && self.buckets[i - 1].0 > start {
            i -= 1;
        }
        if i == 0 || self.buckets[i - 1].0 != start {
            self.buckets.insert(i, (start, T::default()));
            i += 1;
        }
        Some(&mut self.buckets[i - 1].1)
    }

    /// Forgets buckets that left the window at `now_ms`.
    pub fn expire(&mut self, now_ms: i64) {
        let oldest = now_ms - self.window_ms;
        while self
            .buckets
            .front()
            .is_some_and(|(start, _)| start + self.bucket_ms <= oldest)
        {
            self.buckets.pop_front();
        }
    }

    /// The window's total at `now_ms`.
    pub fn total(&mut self, now_ms: i64) -> T {
        self.expire(now_ms);
        let mut total = T::default();
        for (_, tally) in &self.buckets {
            tally.add_to(&mut total);
        }
        total
    }

    /// Takes every bucket out, oldest first, as (start in ms, tally): what an instance that
    /// does not judge hands to the one that does. The window is left empty.
    pub fn drain(&mut self) -> Vec<(i64, T)> {
        self.buckets.drain(..).collect()
    }

    /// Adds a bucket counted elsewhere (by a window of the same length) at `now_ms`; one that
    /// has left the window is dropped.
    pub fn add_bucket(&mut self, start_ms: i64, tally: &T, now_ms: i64) {
        if let Some(bucket) = self.at(start_ms, now_ms) {
            tally.add_to(bucket);
        }
    }

    /// Nothing in the window (after [`Window::expire`]).
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_handed_over_add_up_where_they_are_taken_in() {
        let t0 = 1_700_000_000_000;
        let (mut here, mut there): (Window<u64>, Window<u64>) = (Window::new(60), Window::new(60));
        for i in 0..15 {
            *here.at(t0 + i * 1000, t0 + i * 1000).unwrap() += 1;
            *there.at(t0 + i * 1000, t0 + i * 1000).unwrap() += 2;
        }
        let handed = there.drain();
        assert!(there.is_empty());
        assert_eq!(handed.iter().map(|(_, n)| n).sum::<u64>(), 30);
        for (start, n) in &handed {
            here.add_bucket(*start, n, t0 + 15_000);
        }
        assert_eq!(here.total(t0 + 15_000), 45);
        // A bucket that left the window while it travelled counts nothing.
        let mut late: Window<u64> = Window::new(60);
        late.add_bucket(t0, &7, t0 + 61_000);
        assert_eq!(late.total(t0 + 61_000), 0);
    }

    const MIN: i64 = 60_000;

    #[test]
    fn counts_what_is_inside_the_window() {
        let mut w: Window<u64> = Window::new(300);
        let t0 = 1_700_000_000_000;
        for i in 0..10 {
            *w.at(t0 + i * 1000, t0 + i * 1000).unwrap() += 1;
        }
        assert_eq!(w.total(t0 + 10_000), 10);
        // Still inside after 4 minutes, gone after 5 (plus at most one bucket).
        assert_eq!(w.total(t0 + 4 * MIN), 10);
        assert_eq!(w.total(t0 + 5 * MIN + 15_000), 0);
        assert!(w.is_empty());
    }

    #[test]
    fn old_times_are_ignored_and_late_ones_land_in_order() {
        let mut w: Window<u64> = Window::new(60);
        let now = 1_700_000_000_000;
        assert!(w.at(now - 2 * MIN, now).is_none(), "older than the window");
        *w.at(now, now).unwrap() += 1;
        *w.at(now - 30_000, now).unwrap() += 2;
        *w.at(now + 5_000, now).unwrap() += 4; // ahead of the clock: counts as now
        assert_eq!(w.total(now), 7);
        assert_eq!(w.total(now + 40_000), 5, "the 30 s-old bucket left first");
    }

    #[test]
    fn ratios_and_sketches_add_up() {
        let mut rates: Window<Ratio> = Window::new(60);
        let now = 1_700_000_000_000;
        for i in 0..20 {
            let r = rates.at(now, now).unwrap();
            r.total += 1;
            r.failed += u64::from(i % 4 == 0);
        }
        let total = rates.total(now);
        assert_eq!((total.total, total.failed), (20, 5));
        assert!(total.above(24) && !total.above(25));
        assert_eq!(total.percent(), 25.0);

        let mut durations: Window<Sketch> = Window::new(60);
        for ms in 1..=100 {
            durations.at(now - ms * 100, now).unwrap().add(ms as f64);
        }
        let p95 = durations.total(now).quantile(0.95).unwrap();
        assert!((94.0..=96.5).contains(&p95), "{p95}");
    }
}
