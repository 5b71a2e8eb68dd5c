//! Login throttling: each failed attempt doubles the wait before the next one is heard — for
//! whoever failed, not for the account's owner.
//!
//! Failures are counted per username *and address* together, and per address. After the n-th
//! failure in a row such a key is blocked for 2^(n-1) seconds (1 s, 2 s, 4 s … capped at
//! [`MAX_BLOCK`]); attempts while blocked are refused with 429 and `Retry-After` without
//! checking the password. So a guesser gets a few dozen tries an hour from an address, and a
//! stranger failing as `alice` does not lock Alice out from hers.
//!
//! Per username across all addresses (a guesser with many addresses), failures only *slow*
//! every attempt at that username ([`LoginLimiter::slowdown`]: up to [`MAX_SLOWDOWN`] before
//! the password is checked); they never refuse. A success clears the username's counts (not
//! the address's); a quiet [`FORGET_AFTER`] clears any.
//!
//! The table lives in memory per instance, bounded to [`MAX_KEYS`] entries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_BLOCK: Duration = Duration::from_secs(300);
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
pub const MAX_KEYS: usize = 10_000;
/// The longest a username's failures from everywhere delay an attempt.
pub const MAX_SLOWDOWN: Duration = Duration::from_secs(3);
/// Failures of a username (all addresses) before its attempts are slowed.
pub const SLOWDOWN_AFTER: u32 = 5;

/// The keys a login attempt is counted under: the refusing ones (username and address
/// together, the address alone) and the username's backstop.
pub struct LoginKeys {
    pub refusing: [String; 2],
    pub username: String,
}

impl LoginKeys {
    pub fn new(username: &str, ip: &str) -> LoginKeys {
        LoginKeys {
            refusing: [format!("user:{username}|ip:{ip}"), format!("ip:{ip}")],
            username: format!("user:{username}"),
        }
    }
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

#[derive(Default)]
pub struct LoginLimiter {
    table: Mutex<HashMap<String, Failures>>,
}

impl LoginLimiter {
    /// `Err(wait)` when any key is blocked at `now`.
    pub fn check(&self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| table.get(k))
            .map(|f| f.blocked_until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MAX_KEYS {
            table.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        }
        for key in keys {
            let entry = table.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: now,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            let block = Duration::from_secs(1u64 << (entry.count - 1).min(20)).min(MAX_BLOCK);
            entry.blocked_until = now + block;
        }
    }

    pub fn succeeded(&self, keys: &[&str]) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            table.remove(*key);
        }
    }

    /// How long to hold an attempt at a username that failed often lately (from anywhere):
    /// 300 ms per failure past [`SLOWDOWN_AFTER`], at most [`MAX_SLOWDOWN`].
    pub fn slowdown(&self, key: &str, now: Instant) -> Duration {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match table.get(key) {
            Some(f) if now.duration_since(f.last) < FORGET_AFTER && f.count > SLOWDOWN_AFTER => {
                (Duration::from_millis(300) * (f.count - SLOWDOWN_AFTER)).min(MAX_SLOWDOWN)
            }
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_doubles_the_wait() {
        let limiter = LoginLimiter::default();
        let keys = vec!["user:alice".to_string(), "ip:127.0.0.1".to_string()];
        let t0 = Instant::now();
        assert!(limiter.check(&keys, t0).is_ok());
        limiter.failed(&keys, t0);
        assert_eq!(limiter.check(&keys, t0), Err(Duration::from_secs(1)));
        assert!(limiter.check(&keys, t0 + Duration::from_secs(1)).is_ok());
        let t1 = t0 + Duration::from_secs(1);
        limiter.failed(&keys, t1);
        assert_eq!(limiter.check(&keys, t1), Err(Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        limiter.failed(&keys, t2);
        assert_eq!(limiter.check(&keys, t2), Err(Duration::from_secs(4)));
    }

    #[test]
    fn the_wait_is_capped_and_forgotten() {
        let limiter = LoginLimiter::default();
        let keys = vec!["user:bob".to_string()];
        let mut t = Instant::now();
        for _ in 0..30 {
            limiter.failed(&keys, t);
            t += Duration::from_millis(1);
        }
        assert!(limiter.check(&keys, t).unwrap_err() <= MAX_BLOCK);
        let later = t + FORGET_AFTER + MAX_BLOCK;
        limiter.failed(&keys, later);
        assert_eq!(
            limiter.check(&keys, later),
            Err(Duration::from_secs(1)),
            "count restarted"
        );
    }

    #[test]
    fn success_clears_the_username_only() {
        let limiter = LoginLimiter::default();
        let keys = vec!["user:carol".to_string(), "ip:10.0.0.1".to_string()];
        let t = Instant::now();
        limiter.failed(&keys, t);
        limiter.succeeded(&["user:carol"]);
        assert!(limiter.check(&keys[..1], t).is_ok());
        assert!(limiter.check(&keys[1..], t).is_err());
    }

    #[test]
    fn a_stranger_failing_as_alice_does_not_lock_her_out() {
        let limiter = LoginLimiter::default();
        let stranger = LoginKeys::new("alice", "203.0.113.9");
        let alice = LoginKeys::new("alice", "192.0.2.1");
        let mut t = Instant::now();
        for _ in 0..20 {
            t += MAX_BLOCK;
            assert!(limiter.check(&stranger.refusing, t).is_ok());
            let mut all = stranger.refusing.to_vec();
            all.push(stranger.username.clone());
            limiter.failed(&all, t);
        }
        assert!(
            limiter.check(&stranger.refusing, t).is_err(),
            "the stranger waits"
        );
        assert!(limiter.check(&alice.refusing, t).is_ok(), "alice is heard");
        let slow = limiter.slowdown(&alice.username, t);
        assert_eq!(slow, MAX_SLOWDOWN, "but every attempt at alice is slowed");
        limiter.succeeded(&[&alice.refusing[0], &alice.username]);
        assert_eq!(limiter.slowdown(&alice.username, t), Duration::ZERO);
        assert!(
            limiter.check(&stranger.refusing, t).is_err(),
            "her success does not clear the stranger"
        );
        assert_eq!(
            limiter.slowdown(&alice.username, t + FORGET_AFTER + MAX_BLOCK),
            Duration::ZERO
        );
    }
}
