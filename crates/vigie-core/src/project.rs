//! Projects: the unit data is sent to. Each has a numeric id (the last part of its DSN) and a
//! public key that ingest requests present.

use crate::secret::random_hex;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ProjectId(pub i64);

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A project's public ingest key: 32 lowercase hex digits, like a Sentry DSN key.
///
/// It is "public" in Sentry's sense: it ends up in client configuration and browser bundles, so
/// it only grants sending data to its project, never reading.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectKey(String);

impl ProjectKey {
    pub fn generate() -> Self {
        ProjectKey(random_hex(16))
    }

    /// Accepts a key in its canonical form only (32 hex digits, any case, stored lowercase).
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| ProjectKey(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub public_key: ProjectKey,
    pub created_at: Timestamp,
    /// Web origins (`https://app.example.com`) whose pages may read this project's jobs with a
    /// job's read token: the embeddable progress bar. Empty: none.
    pub allowed_origins: Vec<String>,
}

/// Origins as stored: one per line.
pub fn origins_from_text(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back() {
        let key = ProjectKey::generate();
        assert_eq!(ProjectKey::parse(key.as_str()), Some(key));
    }

    #[test]
    fn parse_rejects_wrong_shapes() {
        assert!(ProjectKey::parse("").is_none());
        assert!(ProjectKey::parse("abc").is_none());
        assert!(ProjectKey::parse(&"g".repeat(32)).is_none());
        assert_eq!(
            ProjectKey::parse(&"AB".repeat(16)).unwrap().as_str(),
            "ab".repeat(16)
        );
    }
}
