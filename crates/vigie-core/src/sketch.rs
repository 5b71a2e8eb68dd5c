//! A mergeable duration sketch: percentiles of transaction durations within 1 % relative error.
//!
//! Durations (milliseconds) fall into logarithmic buckets: bucket `i` holds values in
//! `(γ^(i-1), γ^i]` with `γ = 1.02`, and a quantile answers the bucket's midpoint, so any
//! answer is within 1 % of a value that was recorded. Two sketches merge by adding their
//! bucket counts, which is what makes per-minute sketches usable for any time range: the
//! Performance page merges the minutes it shows. A minute of one endpoint typically fills a
//! few dozen buckets, encoded in a few hundred bytes.
//!
//! The same idea as DDSketch, sized for our range: below 0.01 ms everything is one bucket, and
//! nothing is above a day.

use crate::varint;
use std::collections::BTreeMap;

const GAMMA: f64 = 1.02;
/// Smallest distinguished duration, in ms.
const MIN_MS: f64 = 0.01;
/// Largest duration kept as itself, in ms (a day); longer ones count as a day.
const MAX_MS: f64 = 86_400_000.0;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sketch {
    buckets: BTreeMap<i32, u64>,
    count: u64,
    sum_ms: f64,
    max_ms: f64,
}

fn bucket_of(ms: f64) -> i32 {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    (ms.ln() / GAMMA.ln()).ceil() as i32
}

/// The value a bucket answers for: the midpoint of its bounds (relative error ≤ (γ-1)/(γ+1)).
fn value_of(bucket: i32) -> f64 {
    let upper = GAMMA.powi(bucket);
    let lower = upper / GAMMA;
    2.0 * lower * upper / (lower + upper)
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    pub fn add(&mut self, ms: f64) {
        if !ms.is_finite() {
            return;
        }
        let ms = ms.max(0.0);
        *self.buckets.entry(bucket_of(ms)).or_default() += 1;
        self.count += 1;
        self.sum_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }

    pub fn merge(&mut self, other: &Sketch) {
        for (bucket, n) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += n;
        }
        self.count += other.count;
        self.sum_ms += other.sum_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max_ms(&self) -> f64 {
        self.max_ms
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms / self.count as f64)
    }

    /// The `q` quantile (0 ≤ q ≤ 1) in ms, `None` when empty. The top quantile is the exact
    /// maximum, which the sketch keeps.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).round() as u64;
        if rank + 1 >= self.count {
            return Some(self.max_ms);
        }
        let mut seen = 0;
        for (bucket, n) in &self.buckets {
            seen += n;
            if seen > rank {
                return Some(value_of(*bucket).min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }

    /// A compact binary form: count, sum, max, then (bucket delta, count) pairs as varints.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.buckets.len() * 3);
        out.extend_from_slice(&self.sum_ms.to_le_bytes());
        out.extend_from_slice(&self.max_ms.to_le_bytes());
        varint::put(&mut out, self.count);
        let mut previous = 0i64;
        for (bucket, n) in &self.buckets {
            let delta = i64::from(*bucket) - previous;
            previous = i64::from(*bucket);
            varint::put(&mut out, varint::zigzag(delta));
            varint::put(&mut out, *n);
        }
        out
    }

    /// Reads [`encode`](Self::encode)'s output; `None` if it is not one.
    pub fn decode(raw: &[u8]) -> Option<Sketch> {
        let sum_ms = f64::from_le_bytes(raw.get(0..8)?.try_into().ok()?);
        let max_ms = f64::from_le_bytes(raw.get(8..16)?.try_into().ok()?);
        let mut rest = raw.get(16..)?;
        let count = varint::take(&mut rest)?;
        let mut buckets = BTreeMap::new();
        let mut previous = 0i64;
        let mut counted = 0u64;
        while !rest.is_empty() {
            previous += varint::unzigzag(varint::take(&mut rest)?);
            let n = varint::take(&mut rest)?;
            counted = counted.checked_add(n)?;
            buckets.insert(i32::try_from(previous).ok()?, n);
        }
        (counted == count).then_some(Sketch {
            buckets,
            count,
            sum_ms,
            max_ms,
        })
    }
}

/// How a request's duration counts for Apdex with threshold `t_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apdex {
    /// At most T.
    Satisfied,
    /// At most 4T.
    Tolerated,
    Frustrated,
}

impl Apdex {
    /// A failed request frustrates whatever its duration, as in Sentry and New Relic.
    pub fn classify(duration_ms: f64, t_ms: f64, failed: bool) -> Apdex {
        if failed || duration_ms > 4.0 * t_ms {
            Apdex::Frustrated
        } else if duration_ms > t_ms {
            Apdex::Tolerated
        } else {
            Apdex::Satisfied
        }
    }

    /// `(satisfied + tolerated / 2) / total`, `None` with no requests.
    pub fn score(satisfied: u64, tolerated: u64, total: u64) -> Option<f64> {
        (total > 0).then(|| (satisfied as f64 + tolerated as f64 / 2.0) / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).round() as usize]
    }

    #[test]
    fn quantiles_stay_within_one_percent() {
        let mut values: Vec<f64> = (0..20_000)
            .map(|i| {
                // A long-tailed spread from 0.5 ms to about 20 s.
                let x = (i as f64 * 7919.0) % 20_000.0 / 20_000.0;
                0.5 * (x * 10.6).exp()
            })
            .collect();
        let mut sketch = Sketch::new();
        for v in &values {
            sketch.add(*v);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.0, 0.25, 0.5, 0.75, 0.95, 0.99] {
            let want = exact_quantile(&values, q);
            let got = sketch.quantile(q).unwrap();
            assert!((got - want).abs() <= want * 0.0101, "q{q}: {got} vs {want}");
        }
        assert_eq!(sketch.quantile(1.0), Some(*values.last().unwrap()));
        assert_eq!(sketch.count(), 20_000);
    }

    #[test]
    fn merged_minutes_answer_like_one_sketch() {
        let mut whole = Sketch::new();
        let mut minutes = vec![Sketch::new(); 5];
        for i in 0..5000 {
            let ms = 1.0 + (i % 977) as f64 * 3.3;
            whole.add(ms);
            minutes[i % 5].add(ms);
        }
        let mut merged = Sketch::new();
        for m in &minutes {
            merged.merge(m);
        }
        assert_eq!(merged, whole);
        for q in [0.5, 0.75, 0.95, 0.99] {
            assert_eq!(merged.quantile(q), whole.quantile(q));
        }
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut sketch = Sketch::new();
        for ms in [0.0, 0.003, 1.0, 1.0, 250.0, 3_600_000.0, 1e12] {
            sketch.add(ms);
        }
        sketch.add(f64::NAN);
        let raw = sketch.encode();
        assert_eq!(Sketch::decode(&raw), Some(sketch.clone()));
        assert!(raw.len() < 64, "{} bytes", raw.len());
        assert_eq!(Sketch::decode(&raw[..raw.len() - 1]), None);
        assert_eq!(Sketch::decode(b"short"), None);
        assert_eq!(Sketch::new().quantile(0.5), None);
        assert_eq!(Sketch::decode(&Sketch::new().encode()), Some(Sketch::new()));
    }

    #[test]
    fn apdex_counts_failures_as_frustrated() {
        assert_eq!(Apdex::classify(300.0, 300.0, false), Apdex::Satisfied);
        assert_eq!(Apdex::classify(301.0, 300.0, false), Apdex::Tolerated);
        assert_eq!(Apdex::classify(1200.0, 300.0, false), Apdex::Tolerated);
        assert_eq!(Apdex::classify(1201.0, 300.0, false), Apdex::Frustrated);
        assert_eq!(Apdex::classify(5.0, 300.0, true), Apdex::Frustrated);
        assert_eq!(Apdex::score(60, 30, 100), Some(0.75));
        assert_eq!(Apdex::score(0, 0, 0), None);
    }
}
