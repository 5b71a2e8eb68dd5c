//! Who may do what: users with a role, API tokens with a scope, and the [`Access`] a request
//! needs.
//!
//! There are two levels on purpose. Readers see everything; admins also change things (projects,
//! users, tokens, settings). A user's role and a token's scope map onto the same two levels, so
//! one check serves the UI and the API.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a request needs: to read, or to change something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Admin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Admin,
}

impl Role {
    pub fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Role::Admin, _) | (Role::Viewer, Access::Read)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl Scope {
    pub fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Scope::Admin, _) | (Scope::Read, Access::Read)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Read => "read",
        }
    }
}

/// The error for a role or scope name that is not one of the known ones.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {kind} {given:?}: expected one of {expected}")]
pub struct UnknownName {
    kind: &'static str,
    given: String,
    expected: &'static str,
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            _ => Err(UnknownName {
                kind: "role",
                given: s.to_string(),
                expected: "admin, viewer",
            }),
        }
    }
}

impl FromStr for Scope {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Scope::Admin),
            "read" => Ok(Scope::Read),
            _ => Err(UnknownName {
                kind: "scope",
                given: s.to_string(),
                expected: "read, admin",
            }),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// An API token as listed: never the token itself, only the first characters to recognise it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    /// The token's first characters (`vigie_1a2b…`), enough to tell tokens apart.
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// The prefix every API token starts with, so secret scanners and people recognise one.
pub const API_TOKEN_PREFIX: &str = "vigie_";

/// A new API token: the secret to show once, and the displayed prefix.
pub fn new_api_token() -> (String, String) {
    let token = format!("{API_TOKEN_PREFIX}{}", crate::secret::random_hex(20));
    let prefix = token[..API_TOKEN_PREFIX.len() + 6].to_string();
    (token, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_scopes_grant_the_same_levels() {
        assert!(Role::Admin.allows(Access::Admin));
        assert!(Role::Viewer.allows(Access::Read));
        assert!(!Role::Viewer.allows(Access::Admin));
        assert!(Scope::Admin.allows(Access::Read));
        assert!(!Scope::Read.allows(Access::Admin));
    }

    #[test]
    fn names_parse_and_unknown_names_explain() {
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert_eq!("read".parse::<Scope>(), Ok(Scope::Read));
        let err = "root".parse::<Role>().unwrap_err().to_string();
        assert_eq!(err, "unknown role \"root\": expected one of admin, viewer");
    }

    #[test]
    fn api_tokens_carry_their_prefix() {
        let (token, prefix) = new_api_token();
        assert!(token.starts_with(&prefix));
        assert!(prefix.starts_with(API_TOKEN_PREFIX));
        assert_eq!(token.len(), API_TOKEN_PREFIX.len() + 40);
    }
}
