//! Releases: what `sentry-cli releases` declares (created, finalized, deployed), and what
//! events and sessions say of each release, for the Releases page.
//!
//! ```text
//!   save_release(project, version, url, released_at)   created once, url / finalize updated
//!   add_deploy(project, version, deploy)                NotFound when the release is not declared
//!   releases(project)                                   declared ones, newest first, with deploys
//!   release_figures(project)                            per release named by events: events and
//!                                                       last event (the issues' release tag
//!                                                       counts), the issues first seen in it,
//!                                                       the regressions it brought
//!   release_days(project, release?, since)              sessions and users per release and day
//!                                                       (release_hours, release_users): the charts
//!   release_issues(project, version)                    issues new in it, and regressed in it
//!   issue_regressions(issue)                            when an issue came back, in which release
//! ```

use crate::engine::{Db, Engine};
use crate::errors::{issue_from, DAY_MS, ISSUE_COLS};
use crate::sql::Columns;
use crate::tx::{Row, Tx};
use crate::{Result, StoreError};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use vigie_core::issue::{Issue, IssueId};
use vigie_core::{ProjectId, Timestamp};

/// A declared release.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Release {
    pub version: String,
    pub url: Option<String>,
    pub created_at: Timestamp,
    /// When it was finalized.
    pub released_at: Option<Timestamp>,
    /// Newest first.
    pub deploys: Vec<Deploy>,
}

/// A deploy of a release to an environment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deploy {
    pub environment: String,
    pub name: Option<String>,
    pub url: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
}

/// What the events say of a release.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReleaseFigures {
    pub version: String,
    pub events: i64,
    /// Issues first seen in it.
    pub new_issues: i64,
    /// Resolved issues that came back with one of its events.
    pub regressions: i64,
    pub last_event: Option<Timestamp>,
}

/// Sessions and users of a release over one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReleaseDay {
    pub release: String,
    /// The day's start.
    pub day: Timestamp,
    pub started: i64,
    pub crashed: i64,
    pub users: i64,
    pub crashed_users: i64,
}

/// The issues a release brought: first seen in it, or reopened by one of its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReleaseIssues {
    pub new: Vec<Issue>,
    pub regressed: Vec<Issue>,
}

/// An issue coming back after it was resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Regression {
    pub at: Timestamp,
    /// The release of the event that reopened it.
    pub release: Option<String>,
}

#[async_trait]
pub trait ReleaseStore: Send + Sync {
    /// Declares `version` (once), setting its URL and finalize time when given; answers it.
    async fn save_release(
        &self,
        project: ProjectId,
        version: &str,
        url: Option<String>,
        released_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Release>;
    /// A declared release, with its deploys.
    async fn release(&self, project: ProjectId, version: &str) -> Result<Option<Release>>;
    /// The project's declared releases, newest first, with their deploys.
    async fn releases(&self, project: ProjectId) -> Result<Vec<Release>>;
    /// Records a deploy of a declared release (`NotFound` when it is not declared).
    async fn add_deploy(&self, project: ProjectId, version: &str, deploy: Deploy)
        -> Result<Deploy>;
    /// Per release that events name: their count, the issues first seen in it, their times.
    async fn release_figures(&self, project: ProjectId) -> Result<Vec<ReleaseFigures>>;
    /// Sessions and users per release (or one release) and day, from the day `since` is in,
    /// oldest day first.
    async fn release_days(
        &self,
        project: ProjectId,
        release: Option<String>,
        since: Timestamp,
    ) -> Result<Vec<ReleaseDay>>;
    /// The issues first seen in `version`, and those it reopened, most recently seen first
    /// (at most `limit` of each).
    async fn release_issues(
        &self,
        project: ProjectId,
        version: &str,
        limit: u32,
    ) -> Result<ReleaseIssues>;
    /// When an issue regressed, newest first.
    async fn issue_regressions(&self, issue: IssueId) -> Result<Vec<Regression>>;
}

fn day_of(
    days: &mut BTreeMap<(i64, String), ReleaseDay>,
    release: String,
    day: i64,
) -> &mut ReleaseDay {
    days.entry((day, release.clone()))
        .or_insert_with(|| ReleaseDay {
            release,
            day: Timestamp(day),
            ..ReleaseDay::default()
        })
}

/// The figures of `version`, added when events had not named it yet.
fn figures_of(figures: &mut Vec<ReleaseFigures>, version: String) -> &mut ReleaseFigures {
    match figures.iter().position(|f| f.version == version) {
        Some(i) => &mut figures[i],
        None => {
            figures.push(ReleaseFigures {
                version,
                ..ReleaseFigures::default()
            });
            figures.last_mut().expect("just pushed")
        }
    }
}

const RELEASE_COLUMNS: &str = "id, version, url, created_at, released_at";

fn time(row: &Row, idx: usize) -> Result<Option<Timestamp>> {
    Ok(row.int(idx)?.map(Timestamp))
}

/// The releases of `rows` (`RELEASE_COLUMNS`), each with its deploys.
async fn with_deploys(tx: &mut dyn Tx, rows: Vec<Row>) -> Result<Vec<Release>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let deploys = tx
            .query(
                "SELECT environment, name, url, started_at, finished_at FROM deploys \
                 WHERE release_id = $1 ORDER BY finished_at DESC, id DESC",
                &[row.req_int(0)?.into()],
            )
            .await?
            .iter()
            .map(|d| {
                Ok(Deploy {
                    environment: d.req_text(0)?,
                    name: d.text(1)?,
                    url: d.text(2)?,
                    started_at: time(d, 3)?,
                    finished_at: Timestamp(d.req_int(4)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(Release {
            version: row.req_text(1)?,
            url: row.text(2)?,
            created_at: Timestamp(row.req_int(3)?),
            released_at: time(&row, 4)?,
            deploys,
        });
    }
    Ok(out)
}

async fn find(tx: &mut dyn Tx, project: ProjectId, version: &str) -> Result<Option<Release>> {
    let rows = tx
        .query(
            &format!(
                "SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = $1 AND version = $2"
            ),
            &[project.0.into(), version.into()],
        )
        .await?;
    Ok(with_deploys(tx, rows).await?.pop())
}

#[async_trait]
impl<E: Engine> ReleaseStore for Db<E> {
    async fn save_release(
        &self,
        project: ProjectId,
        version: &str,
        url: Option<String>,
        released_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Release> {
        let version = version.to_string();
        self.write("save_release", move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO releases (project_id, version, url, created_at, released_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, version) DO UPDATE SET \
                     url = COALESCE(excluded.url, releases.url), \
                     released_at = COALESCE(excluded.released_at, releases.released_at)",
                    &[
                        project.0.into(),
                        version.as_str().into(),
                        url.as_deref().into(),
                        now.millis().into(),
                        released_at.into(),
                    ],
                )
                .await?;
                find(tx, project, &version)
                    .await?
                    .ok_or(StoreError::NotFound("release"))
            })
        })
        .await
    }

    async fn release(&self, project: ProjectId, version: &str) -> Result<Option<Release>> {
        let version = version.to_string();
        self.read("release", move |tx| {
            Box::pin(async move { find(tx, project, &version).await })
        })
        .await
    }

    async fn releases(&self, project: ProjectId) -> Result<Vec<Release>> {
        self.read("releases", move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        &format!(
                            "SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = $1 \
                             ORDER BY created_at DESC, id DESC LIMIT 500"
                        ),
                        &[project.0.into()],
                    )
                    .await?;
                with_deploys(tx, rows).await
            })
        })
        .await
    }

    async fn add_deploy(
        &self,
        project: ProjectId,
        version: &str,
        deploy: Deploy,
    ) -> Result<Deploy> {
        let version = version.to_string();
        self.write("add_deploy", move |tx| {
            Box::pin(async move {
                let release = tx
                    .first(
                        "SELECT id FROM releases WHERE project_id = $1 AND version = $2",
                        &[project.0.into(), version.as_str().into()],
                    )
                    .await?
                    .ok_or(StoreError::NotFound("release"))?
                    .req_int(0)?;
                tx.execute(
                    "INSERT INTO deploys (release_id, environment, name, url, started_at, \
                     finished_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        release.into(),
                        deploy.environment.as_str().into(),
                        deploy.name.as_deref().into(),
                        deploy.url.as_deref().into(),
                        deploy.started_at.into(),
                        deploy.finished_at.millis().into(),
                    ],
                )
                .await?;
                Ok(deploy)
            })
        })
        .await
    }

    async fn release_figures(&self, project: ProjectId) -> Result<Vec<ReleaseFigures>> {
        self.read("release_figures", move |tx| {
            Box::pin(async move {
                // Events per release from the issues' release tag counts (one row per issue and
                // release, not per event), and the issues each release brought first.
                let rows = tx
                    .query(
                        "SELECT t.value, CAST(SUM(t.count) AS BIGINT), MAX(t.last_seen) FROM issue_tags t \
                         JOIN issues i ON i.id = t.issue_id \
                         WHERE i.project_id = $1 AND t.key = 'release' GROUP BY t.value",
                        &[project.0.into()],
                    )
                    .await?;
                let mut figures = rows
                    .iter()
                    .map(|r| {
                        Ok(ReleaseFigures {
                            version: r.req_text(0)?,
                            events: r.int(1)?.unwrap_or(0),
                            last_event: time(r, 2)?,
                            ..ReleaseFigures::default()
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let first = tx
                    .query(
                        "SELECT first_release, COUNT(*) FROM issues \
                         WHERE project_id = $1 AND first_release IS NOT NULL \
                         GROUP BY first_release",
                        &[project.0.into()],
                    )
                    .await?;
                for row in first {
                    figures_of(&mut figures, row.req_text(0)?).new_issues =
                        row.int(1)?.unwrap_or(0);
                }
                let regressions = tx
                    .query(
                        "SELECT r.release, COUNT(*) FROM issue_regressions r \
                         JOIN issues i ON i.id = r.issue_id \
                         WHERE i.project_id = $1 AND r.release IS NOT NULL GROUP BY r.release",
                        &[project.0.into()],
                    )
                    .await?;
                for row in regressions {
                    figures_of(&mut figures, row.req_text(0)?).regressions =
                        row.int(1)?.unwrap_or(0);
                }
                Ok(figures)
            })
        })
        .await
    }

    async fn release_days(
        &self,
        project: ProjectId,
        release: Option<String>,
        since: Timestamp,
    ) -> Result<Vec<ReleaseDay>> {
        self.read("release_days", move |tx| {
            Box::pin(async move {
                let from = since.millis().div_euclid(DAY_MS) * DAY_MS;
                let mut values = vec![project.0.into(), from.into()];
                let one = match &release {
                    Some(version) => {
                        values.push(version.as_str().into());
                        " AND release = $3"
                    }
                    None => "",
                };
                let mut days: BTreeMap<(i64, String), ReleaseDay> = BTreeMap::new();
                let sessions = tx
                    .query(
                        &format!(
                            "SELECT release, (hour / {DAY_MS}) * {DAY_MS} AS day, \
                             CAST(sum(started) AS BIGINT), CAST(sum(crashed) AS BIGINT) \
                             FROM release_hours WHERE project_id = $1 AND hour >= $2{one} \
                             GROUP BY release, (hour / {DAY_MS}) * {DAY_MS}"
                        ),
                        &values,
                    )
                    .await?;
                for row in &sessions {
                    let day = day_of(&mut days, row.req_text(0)?, row.req_int(1)?);
                    day.started = row.req_int(2)?;
                    day.crashed = row.req_int(3)?;
                }
                let users = tx
                    .query(
                        &format!(
                            "SELECT release, day, CAST(count(*) AS BIGINT), \
                             CAST(sum(CASE WHEN crashed > 0 THEN 1 ELSE 0 END) AS BIGINT) \
                             FROM release_users WHERE project_id = $1 AND day >= $2{one} \
                             GROUP BY release, day"
                        ),
                        &values,
                    )
                    .await?;
                for row in &users {
                    let day = day_of(&mut days, row.req_text(0)?, row.req_int(1)?);
                    day.users = row.req_int(2)?;
                    day.crashed_users = row.req_int(3)?;
                }
                Ok(days.into_values().collect())
            })
        })
        .await
    }

    async fn release_issues(
        &self,
        project: ProjectId,
        version: &str,
        limit: u32,
    ) -> Result<ReleaseIssues> {
        let version = version.to_string();
        self.read("release_issues", move |tx| {
            Box::pin(async move {
                let values = [
                    project.0.into(),
                    version.as_str().into(),
                    i64::from(limit).into(),
                ];
                let mut issues = ReleaseIssues::default();
                for (list, which) in [
                    (&mut issues.new, "first_release = $2"),
                    (
                        &mut issues.regressed,
                        "id IN (SELECT issue_id FROM issue_regressions WHERE release = $2)",
                    ),
                ] {
                    let rows = tx
                        .query(
                            &format!(
                                "SELECT {ISSUE_COLS} FROM issues WHERE project_id = $1 \
                                 AND {which} ORDER BY last_seen DESC LIMIT $3"
                            ),
                            &values,
                        )
                        .await?;
                    *list = rows.iter().map(issue_from).collect::<Result<_>>()?;
                }
                Ok(issues)
            })
        })
        .await
    }

    async fn issue_regressions(&self, issue: IssueId) -> Result<Vec<Regression>> {
        self.read("issue_regressions", move |tx| {
            Box::pin(async move {
                tx.query(
                    "SELECT at, release FROM issue_regressions WHERE issue_id = $1 \
                     ORDER BY at DESC",
                    &[issue.into()],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(Regression {
                        at: Timestamp(r.req_int(0)?),
                        release: r.text(1)?,
                    })
                })
                .collect()
            })
        })
        .await
    }
}
