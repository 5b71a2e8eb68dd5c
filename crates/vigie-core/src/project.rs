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

/// Origins a person typed (separated by spaces, commas or lines): each `*` or
/// `http(s)://host[:port]`, without a path. Normalised to lowercase without a trailing slash.
pub fn parse_origins(text: &str) -> Result<Vec<String>, String> {
    let mut origins = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || c == ',') {
        let origin = raw.trim().trim_end_matches('/').to_ascii_lowercase();
        if origin.is_empty() {
            continue;
        }
        let valid = origin == "*"
            || ["http://", "https://"].iter().any(|scheme| {
                origin.strip_prefix(scheme).is_some_and(|host| {
                    !host.is_empty()
                        && host.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                        })
                })
            });
        if !valid {
            return Err(format!(
                "{raw:?} is not an origin: write it as https://app.example.com (scheme, host and port only)"
            ));
        }
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
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
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            parse_origins("https://App.example.com/, http://localhost:8000\n*").unwrap(),
            ["https://app.example.com", "http://localhost:8000", "*"]
        );
        assert!(parse_origins("app.example.com").is_err());
        assert!(parse_origins("https://example.com/path").is_err());
        assert_eq!(parse_origins("  ").unwrap(), Vec::<String>::new());
    }

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
