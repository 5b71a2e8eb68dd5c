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
//! every attempt at that username ([`slowdown`]: up to [`MAX_SLOWDOWN`] before the password
//! is checked); they never refuse. A success clears the username's counts (not the
//! address's); a quiet [`FORGET_AFTER`] clears any.
//!
//! These are the rules, as pure functions of a key's [`Failures`] and the time; the counts
//! live in the database, so they hold across every instance sharing it.

use crate::Timestamp;
use std::time::Duration;

pub const MAX_BLOCK: Duration = Duration::from_secs(300);
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
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

    /// Every key a failure counts under.
    pub fn all(&self) -> Vec<String> {
        let mut all = self.refusing.to_vec();
        all.push(self.username.clone());
        all
    }

    /// The keys a success clears: the username with this address, and the username.
    pub fn cleared_by_success(&self) -> Vec<String> {
        vec![self.refusing[0].clone(), self.username.clone()]
    }
}

/// One key's failures in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    pub last: Timestamp,
    pub blocked_until: Timestamp,
}

/// The key's failures after one more at `now` (a quiet [`FORGET_AFTER`] starts the count anew).
pub fn failed(previous: Option<Failures>, now: Timestamp) -> Failures {
    let count = match previous {
        Some(f) if now.millis() - f.last.millis() < FORGET_AFTER.as_millis() as i64 => f.count + 1,
        _ => 1,
    };
    let block = Duration::from_secs(1u64 << (count - 1).min(20)).min(MAX_BLOCK);
    Failures {
        count,
        last: now,
        blocked_until: Timestamp(now.millis() + block.as_millis() as i64),
    }
}

/// How long these keys' failures still refuse attempts at `now` (zero: heard).
pub fn wait<'a>(keys: impl IntoIterator<Item = &'a Failures>, now: Timestamp) -> Duration {
    keys.into_iter()
        .map(|f| Duration::from_millis((f.blocked_until.millis() - now.millis()).max(0) as u64))
        .max()
        .unwrap_or_default()
}

/// How long a username's failures from everywhere delay an attempt at `now`.
pub fn slowdown(username: Option<&Failures>, now: Timestamp) -> Duration {
    match username {
        Some(f)
            if now.millis() - f.last.millis() < FORGET_AFTER.as_millis() as i64
                && f.count > SLOWDOWN_AFTER =>
        {
            (Duration::from_millis(300) * (f.count - SLOWDOWN_AFTER)).min(MAX_SLOWDOWN)
        }
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The table the store keeps, in memory.
    #[derive(Default)]
    struct Table(HashMap<String, Failures>);

    impl Table {
        fn fail(&mut self, keys: &[String], now: Timestamp) {
            for key in keys {
                let next = failed(self.0.get(key).copied(), now);
                self.0.insert(key.clone(), next);
            }
        }
        fn wait(&self, keys: &[String], now: Timestamp) -> Duration {
            wait(keys.iter().filter_map(|k| self.0.get(k)), now)
        }
        fn clear(&mut self, keys: &[String]) {
            for key in keys {
                self.0.remove(key);
            }
        }
    }

    fn at(t: Timestamp, d: Duration) -> Timestamp {
        Timestamp(t.millis() + d.as_millis() as i64)
    }

    #[test]
    fn each_failure_doubles_the_wait() {
        let mut table = Table::default();
        let keys = vec!["user:alice".to_string(), "ip:127.0.0.1".to_string()];
        let t0 = Timestamp(1_800_000_000_000);
        assert!(table.wait(&keys, t0).is_zero());
        table.fail(&keys, t0);
        assert_eq!(table.wait(&keys, t0), Duration::from_secs(1));
        let t1 = at(t0, Duration::from_secs(1));
        assert!(table.wait(&keys, t1).is_zero());
        table.fail(&keys, t1);
        assert_eq!(table.wait(&keys, t1), Duration::from_secs(2));
        let t2 = at(t1, Duration::from_secs(2));
        table.fail(&keys, t2);
        assert_eq!(table.wait(&keys, t2), Duration::from_secs(4));
    }

    #[test]
    fn the_wait_is_capped_and_forgotten() {
        let mut table = Table::default();
        let keys = vec!["user:bob".to_string()];
        let mut t = Timestamp(1_800_000_000_000);
        for _ in 0..30 {
            table.fail(&keys, t);
            t = at(t, Duration::from_millis(1));
        }
        assert!(table.wait(&keys, t) <= MAX_BLOCK);
        let later = at(t, FORGET_AFTER + MAX_BLOCK);
        table.fail(&keys, later);
        assert_eq!(
            table.wait(&keys, later),
            Duration::from_secs(1),
            "count restarted"
        );
    }

    #[test]
    fn a_stranger_failing_as_alice_does_not_lock_her_out() {
        let mut table = Table::default();
        let stranger = LoginKeys::new("alice", "203.0.113.9");
        let alice = LoginKeys::new("alice", "192.0.2.1");
        let mut t = Timestamp(1_800_000_000_000);
        for _ in 0..20 {
            t = at(t, MAX_BLOCK);
            assert!(table.wait(&stranger.refusing, t).is_zero());
            table.fail(&stranger.all(), t);
        }
        assert!(
            !table.wait(&stranger.refusing, t).is_zero(),
            "the stranger waits"
        );
        assert!(table.wait(&alice.refusing, t).is_zero(), "alice is heard");
        let slow = slowdown(table.0.get(&alice.username), t);
        assert_eq!(slow, MAX_SLOWDOWN, "but every attempt at alice is slowed");
        table.clear(&alice.cleared_by_success());
        assert_eq!(slowdown(table.0.get(&alice.username), t), Duration::ZERO);
        assert!(
            !table.wait(&stranger.refusing, t).is_zero(),
            "her success does not clear the stranger"
        );
    }

    #[test]
    fn old_failures_slow_nobody() {
        let f = failed(None, Timestamp(0));
        let many = Failures { count: 40, ..f };
        assert_eq!(slowdown(Some(&many), Timestamp(1)), MAX_SLOWDOWN);
        let later = Timestamp(FORGET_AFTER.as_millis() as i64 + 1);
        assert_eq!(slowdown(Some(&many), later), Duration::ZERO);
    }
}
