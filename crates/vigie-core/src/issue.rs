//! Issues: the groups events fall into (see [`crate::event::group`]), and their life cycle.
//!
//! ```text
//!              resolve                        an event arrives
//!  unresolved ─────────► resolved ───────────────────────────► unresolved + regression
//!      │  ▲    resolve in next release         an event from another release
//!      │  │ ───────────► resolved_next ──────────────────────► unresolved + regression
//!      │  │    ignore [until N events | until a date]
//!      │  └─ ignored ◄── (reopens by itself when the count or the date is passed)
//!      └────────────────►
//! ```
//!
//! "Resolved in next release" remembers the newest release seen when it was resolved: events
//! from that release (old deployments still running) do not reopen it, any other release does.
//! The transitions on ingest are applied by the store in the same statement that counts the
//! event (so concurrent instances agree); [`IssueStatus`] names the states.

use crate::{ProjectId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    #[default]
    Unresolved,
    Resolved,
    /// Resolved by the next release: reopens only for an event of another release.
    ResolvedNext,
    Ignored,
}

impl IssueStatus {
    pub const ALL: [IssueStatus; 4] = [
        IssueStatus::Unresolved,
        IssueStatus::Resolved,
        IssueStatus::ResolvedNext,
        IssueStatus::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Unresolved => "unresolved",
            IssueStatus::Resolved => "resolved",
            IssueStatus::ResolvedNext => "resolved_next",
            IssueStatus::Ignored => "ignored",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            IssueStatus::Unresolved => "unresolved",
            IssueStatus::Resolved => "resolved",
            IssueStatus::ResolvedNext => "resolved in next release",
            IssueStatus::Ignored => "ignored",
        }
    }

    pub fn is_resolved(self) -> bool {
        matches!(self, IssueStatus::Resolved | IssueStatus::ResolvedNext)
    }
}

impl fmt::Display for IssueStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IssueStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IssueStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown issue status {s:?}: use unresolved, resolved, resolved_next or ignored"
                )
            })
    }
}

/// A change of status asked by a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusChange {
    Resolve,
    ResolveInNextRelease,
    /// Ignore, optionally until the issue has this many more events, or until a time.
    Ignore {
        more_events: Option<i64>,
        until: Option<Timestamp>,
    },
    Reopen,
}

/// A group of events with the same grouping key.
/// An issue's id: a number apart from the other ids (events, rules, channels, monitors), so one
/// cannot be passed where another is meant.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct IssueId(pub i64);

impl fmt::Display for IssueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Issue {
    pub id: IssueId,
    pub project: ProjectId,
    pub grouping_key: String,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub status: IssueStatus,
    /// Set when a resolved issue came back (until someone resolves it again).
    pub regressed_at: Option<Timestamp>,
    /// For `ResolvedNext`: the release current when it was resolved.
    pub resolved_release: Option<String>,
    /// For `Ignored`: reopen once `event_count` reaches this.
    pub ignore_until_count: Option<i64>,
    /// For `Ignored`: reopen for an event after this time.
    pub ignore_until: Option<Timestamp>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub event_count: i64,
    pub user_count: i64,
    pub first_release: Option<String>,
    pub last_release: Option<String>,
}
