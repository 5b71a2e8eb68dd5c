//! How a list in the JSON API is sized: `?limit=` (`?n=` for a log source's last lines) is
//! taken when given, else the list's default, and always held between 1 and the most that
//! list answers, so a client asking for 0 or a million gets a list, not an error.

use serde::Deserialize;

/// The most rows a list answers unless it says otherwise (jobs and job items answer 500:
/// `jobs::api::MAX_LIMIT`).
pub const MOST: u32 = 1_000;

/// The query of a list whose only parameter is its size.
#[derive(Deserialize, Default)]
pub struct LimitParams {
    pub limit: Option<u32>,
}

impl LimitParams {
    /// The asked size, else `default`, at most [`MOST`].
    pub fn or(&self, default: u32) -> u32 {
        limit(self.limit, default, MOST)
    }
}

/// `asked` when given, else `default`, held between 1 and `most`.
pub fn limit<T: Ord + From<u8>>(asked: Option<T>, default: T, most: T) -> T {
    asked.unwrap_or(default).clamp(T::from(1), most)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_is_held_between_one_and_the_most() {
        assert_eq!(limit(None, 50, 1000), 50);
        assert_eq!(limit(Some(7u32), 50, 1000), 7);
        assert_eq!(limit(Some(0u32), 50, 1000), 1);
        assert_eq!(limit(Some(u32::MAX), 50, 1000), 1000);
        assert_eq!(limit(Some(9_999usize), 100, 500), 500);
        assert_eq!(LimitParams { limit: Some(2_000) }.or(100), MOST);
        assert_eq!(LimitParams::default().or(100), 100);
    }
}
