//! Which traces are kept once they settle: the tail-based keep rules.
//!
//! Spans are stored as they arrive (an acknowledged span is durable). A while after a block's
//! spans all ended (`traces.settle_after`), its traces are judged whole, and each is kept when
//!
//! 1. any of its spans failed (ended in error, or a request answered 5xx) — [`Keep::Error`];
//! 2. one of its entry spans (a request served, a task run) took longer than the p95 of its
//!    name, the Performance page's figure over the last day — [`Keep::Slow`];
//! 3. its trace id falls within the configured rate (`traces.keep_rate`) — [`Keep::Sampled`].
//!
//! Otherwise its spans are dropped and counted in `/metrics`; its requests and task runs still
//! count on the Performance page, fed when they arrived.
//!
//! Rule 3 reads the trace id as OpenTelemetry's `TraceIdRatioBased` sampler does (its low 64
//! bits against `rate × 2⁶⁴`): the same trace gets the same answer in every block, on every
//! instance, and a trace an SDK sampled at the same rate is one Vigie keeps.

use std::collections::HashMap;

/// Why a settled trace is kept, or that it is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Keep {
    Error,
    Slow,
    Sampled,
    Dropped,
}

impl Keep {
    pub fn kept(self) -> bool {
        self != Keep::Dropped
    }

    /// The `outcome` label of `vigie_traces_settled_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Keep::Error => "kept_error",
            Keep::Slow => "kept_slow",
            Keep::Sampled => "kept_sampled",
            Keep::Dropped => "dropped",
        }
    }
}

/// What the rules know of a trace when its blocks settle.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceFacts {
    /// Whether any of its stored spans failed.
    pub failed: bool,
    /// Its entry spans: (name, duration in nanoseconds).
    pub entries: Vec<(String, i64)>,
}

/// A project's keep rules at one settle pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeepRules {
    /// The share of ordinary traces kept, 0 to 1.
    pub rate: f64,
    /// The p95 duration (nanoseconds) of each entry name over the last day.
    pub p95_ns: HashMap<String, i64>,
}

impl KeepRules {
    /// Whether every trace is kept whatever it holds (nothing to judge).
    pub fn keep_all(&self) -> bool {
        self.rate >= 1.0
    }

    pub fn judge(&self, trace_id: &str, facts: &TraceFacts) -> Keep {
        if facts.failed {
            return Keep::Error;
        }
        let slow = facts.entries.iter().any(|(name, duration)| {
            self.p95_ns
                .get(name)
                .is_some_and(|p95| *p95 > 0 && duration > p95)
        });
        if slow {
            Keep::Slow
        } else if in_rate(trace_id, self.rate) {
            Keep::Sampled
        } else {
            Keep::Dropped
        }
    }
}

/// Whether `trace_id` (32 hex digits) falls within `rate`, as `TraceIdRatioBased` decides: its
/// low 64 bits below `rate × 2⁶⁴`. An id that is not hex is kept (it cannot be judged).
pub fn in_rate(trace_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let low = trace_id
        .get(trace_id.len().saturating_sub(16)..)
        .unwrap_or("");
    match u64::from_str_radix(low, 16) {
        // In integers: a 64-bit id does not fit an f64's mantissa.
        Ok(bits) => u128::from(bits) < (rate * 2f64.powi(64)) as u128,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(rate: f64) -> KeepRules {
        KeepRules {
            rate,
            p95_ns: HashMap::from([("GET /invoices/{id}".to_string(), 80_000_000)]),
        }
    }

    fn request(duration_ms: i64) -> TraceFacts {
        TraceFacts {
            failed: false,
            entries: vec![("GET /invoices/{id}".into(), duration_ms * 1_000_000)],
        }
    }

    #[test]
    fn an_error_or_a_slow_entry_is_kept_whatever_the_rate() {
        let id = "ffffffffffffffffffffffffffffffff";
        let failed = TraceFacts {
            failed: true,
            ..request(1)
        };
        assert_eq!(rules(0.0).judge(id, &failed), Keep::Error);
        assert_eq!(rules(0.0).judge(id, &request(81)), Keep::Slow);
        assert_eq!(rules(0.0).judge(id, &request(80)), Keep::Dropped, "at p95");
        assert_eq!(rules(1.0).judge(id, &request(5)), Keep::Sampled);
        // A name with no figures yet is not slow.
        let unknown = TraceFacts {
            failed: false,
            entries: vec![("run/new.task".into(), i64::MAX)],
        };
        assert_eq!(rules(0.0).judge(id, &unknown), Keep::Dropped);
    }

    #[test]
    fn the_rate_reads_the_low_64_bits_as_opentelemetry_does() {
        // The Python SDK's TraceIdRatioBased(0.25): bound = round(0.25 * 2**64).
        assert!(in_rate("ffffffffffffffff3fffffffffffffff", 0.25));
        assert!(!in_rate("00000000000000004000000000000001", 0.25));
        assert!(in_rate("anything", 1.0));
        assert!(!in_rate("00000000000000000000000000000000", 0.0));
        assert!(in_rate("not hex at all, kept", 0.5));
        assert!(
            in_rate("ééééééééééééééééé", 0.5),
            "not cut inside a character"
        );
    }

    #[test]
    fn about_the_rate_of_random_ids_is_kept() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut kept = 0;
        for _ in 0..10_000 {
            // xorshift: spread ids, as W3C trace ids are random.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if in_rate(&format!("{:016x}{state:016x}", 0), 0.1) {
                kept += 1;
            }
        }
        assert!((900..1100).contains(&kept), "{kept} of 10,000 at 10 %");
    }
}
