//! Releases: what `sentry-cli releases` declares (created, finalized, deployed), and what
//! events and sessions say of each release, for the Releases page.
//!
//! ```text
//!   save_release(project, version, url, released_at)   created once, url / finalize updated
//!   add_deploy(project, version, deploy)                NotFound when the release is not declared
//!   releases(project)                                   declared ones, newest first, with deploys
//!   release_figures(project)                            per release named by events: events and
//!                                                       last event (the issues' release tag
//!                                                       counts), the issues first seen in it
//! ```

use crate::engine::{Db, Engine};
use crate::sql::Columns;
use crate::tx::{Row, Tx};
use crate::{Result, StoreError};
use async_trait::async_trait;
use serde::Serialize;
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
    pub last_event: Option<Timestamp>,
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
                    let version = row.req_text(0)?;
                    let at = figures.iter().position(|f| f.version == version);
                    let slot = match at {
                        Some(i) => &mut figures[i],
                        None => {
                            figures.push(ReleaseFigures {
                                version,
                                ..ReleaseFigures::default()
                            });
                            figures.last_mut().expect("just pushed")
                        }
                    };
                    slot.new_issues = row.int(1)?.unwrap_or(0);
                }
                Ok(figures)
            })
        })
        .await
    }
}
