//! Artifact bundles: the minified files and source maps of a build, uploaded by `sentry-cli`
//! and the bundler plugins, read back to resolve JavaScript stack traces.
//!
//! ```text
//!   put_chunks(SHA-1 ─ bytes)           the upload, chunk by chunk (kept an hour at most)
//!   missing_chunks(SHA-1s)              what the uploader still has to send
//!   read_chunks(SHA-1s)                 the chunks, in order, to assemble the bundle
//!   save_bundle(project, bundle, cap)   one write: the bundle and its files (zstd); the
//!                                       chunks it used dropped; the project's oldest
//!                                       bundles dropped while it holds more than `cap` bytes
//!   files_by_debug_id / files_by_url    what a stack trace needs, newest bundle first
//!   artifact_bundles / delete_…          the Settings page's list
//!   release_files(project, release)     the files of a release, as older sentry-cli lists them
//!   prune_artifacts(chunks, bundles)    retention
//! ```
//!
//! A bundle is stored once per project: the same upload again (same checksum) is recognised
//! by [`ArtifactStore::bundle_stored`] and changes nothing.

use crate::engine::{Db, Engine};
use crate::logs::block::{compress, decompress};
use crate::sql::{Columns, Value, Where};
use crate::tx::{Row, Tx};
use crate::Result;
use async_trait::async_trait;
use serde::Serialize;
use vigie_core::{ProjectId, Timestamp};

/// A file of a bundle, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct NewArtifactFile {
    /// `minified_source`, `source_map`, `source`, …
    pub kind: String,
    pub url: String,
    pub debug_id: Option<String>,
    pub sourcemap: Option<String>,
    pub data: Vec<u8>,
}

/// A bundle to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewBundle {
    pub project: ProjectId,
    /// SHA-1 of the upload, hex.
    pub checksum: String,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub files: Vec<NewArtifactFile>,
    /// The chunks it was assembled from, dropped with the write.
    pub chunks: Vec<String>,
}

/// What storing a bundle did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleSaved {
    pub id: i64,
    /// The project's oldest bundles dropped to stay within its cap.
    pub evicted: u64,
}

/// A stored file, read back (inflated).
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactFile {
    pub bundle_id: i64,
    pub kind: String,
    pub url: String,
    pub debug_id: Option<String>,
    pub sourcemap: Option<String>,
    pub data: Vec<u8>,
}

/// A stored bundle, as listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BundleMeta {
    pub id: i64,
    pub checksum: String,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub files: i64,
    pub bytes: i64,
    pub created_at: Timestamp,
}

/// The bundle is larger than the project may hold.
pub const OVER_CAP: &str = "the artifact bundle is larger than the project's source map cap";

/// A file of a release, as `GET …/releases/{version}/files/` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReleaseFile {
    /// The file's own id.
    pub id: i64,
    pub bundle_id: i64,
    /// Its URL (`~/app.js`).
    pub name: String,
    pub dist: Option<String>,
    pub kind: String,
    pub sourcemap: Option<String>,
    /// Inflated.
    pub size: i64,
    /// SHA-1 of its content (what older sentry-cli compares to skip a file already there).
    pub sha1: String,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Keeps uploaded chunks (a chunk already held is kept as it is).
    async fn put_chunks(&self, chunks: Vec<(String, Vec<u8>)>, now: Timestamp) -> Result<()>;
    /// Which of `checksums` are not held.
    async fn missing_chunks(&self, checksums: Vec<String>) -> Result<Vec<String>>;
    /// The chunks, in the order asked; `NotFound` when one is missing.
    async fn read_chunks(&self, checksums: Vec<String>) -> Result<Vec<Vec<u8>>>;
    /// Whether the project holds the bundle with this checksum.
    async fn bundle_stored(&self, project: ProjectId, checksum: &str) -> Result<bool>;
    /// Stores a bundle and drops the project's oldest ones while it holds more than
    /// `cap_bytes` (`Invalid` when the bundle alone is larger).
    async fn save_bundle(
        &self,
        bundle: NewBundle,
        cap_bytes: u64,
        now: Timestamp,
    ) -> Result<BundleSaved>;
    /// Every file with one of these debug ids, newest bundle first.
    async fn files_by_debug_id(
        &self,
        project: ProjectId,
        debug_ids: Vec<String>,
    ) -> Result<Vec<ArtifactFile>>;
    /// Files at these URLs (`~/path` form) in bundles of `release` (and `dist`, when given),
    /// newest bundle first.
    async fn files_by_url(
        &self,
        project: ProjectId,
        release: String,
        dist: Option<String>,
        urls: Vec<String>,
    ) -> Result<Vec<ArtifactFile>>;
    /// The files uploaded for `release` (any dist), newest first, at most `limit`.
    async fn release_files(
        &self,
        project: ProjectId,
        release: String,
        limit: u32,
    ) -> Result<Vec<ReleaseFile>>;
    /// Whether the project holds any bundle (no bundle, no work for its events).
    async fn has_artifacts(&self, project: ProjectId) -> Result<bool>;
    /// The project's bundles, newest first.
    async fn artifact_bundles(&self, project: ProjectId) -> Result<Vec<BundleMeta>>;
    /// Deletes one bundle; `false` when the project has no such bundle.
    async fn delete_artifact_bundle(&self, project: ProjectId, id: i64) -> Result<bool>;
    /// Drops chunks received before `chunks_before` and bundles stored before
    /// `bundles_before`; answers (chunks, bundles) dropped.
    async fn prune_artifacts(
        &self,
        chunks_before: Timestamp,
        bundles_before: Timestamp,
    ) -> Result<(u64, u64)>;
}

const FILE_COLUMNS: &str = "f.bundle_id, f.kind, f.url, f.debug_id, f.sourcemap, f.data";

fn file_of(row: &Row) -> Result<ArtifactFile> {
    Ok(ArtifactFile {
        bundle_id: row.req_int(0)?,
        kind: row.req_text(1)?,
        url: row.req_text(2)?,
        debug_id: row.text(3)?,
        sourcemap: row.text(4)?,
        data: decompress(&row.req_blob(5)?)?,
    })
}

async fn files_where(tx: &mut dyn Tx, filter: Where) -> Result<Vec<ArtifactFile>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM artifact_files f{} ORDER BY f.bundle_id DESC, f.id",
        filter.sql()
    );
    tx.all(&sql, &filter.values, file_of).await
}

/// The files of `project` whose `column` is one of `values`, in bundles of the release (and
/// dist, when given) when one is, newest bundle first.
async fn files_matching<E: Engine>(
    db: &Db<E>,
    what: &'static str,
    project: ProjectId,
    column: &'static str,
    values: Vec<String>,
    release: Option<(String, Option<String>)>,
) -> Result<Vec<ArtifactFile>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    db.read(what, move |tx| {
        Box::pin(async move {
            let mut filter = Where::new();
            filter.push("f.project_id = ?", project.0);
            filter.in_list(column, values.iter().map(String::as_str));
            if let Some((release, dist)) = &release {
                filter.push(
                    "f.bundle_id IN (SELECT id FROM artifact_bundles WHERE project_id = f.project_id \
                     AND release = ?)",
                    release.as_str(),
                );
                if let Some(dist) = dist {
                    filter.push(
                        "f.bundle_id IN (SELECT id FROM artifact_bundles WHERE dist = ?)",
                        dist.as_str(),
                    );
                }
            }
            files_where(tx, filter).await
        })
    })
    .await
}

async fn save(tx: &mut dyn Tx, bundle: NewBundle, cap: u64, now: Timestamp) -> Result<BundleSaved> {
    let bytes: u64 = bundle.files.iter().map(|f| f.data.len() as u64).sum();
    if bytes > cap {
        return Err(crate::StoreError::Invalid {
            field: "bundle",
            message: format!("{OVER_CAP} ({bytes} bytes inflated, the cap is {cap})"),
        });
    }
    let project = bundle.project.0;
    if let Some(row) = tx
        .first(
            "SELECT id FROM artifact_bundles WHERE project_id = $1 AND checksum = $2",
            &[project.into(), bundle.checksum.as_str().into()],
        )
        .await?
    {
        return Ok(BundleSaved {
            id: row.req_int(0)?,
            evicted: 0,
        });
    }
    // The oldest bundles go while what is held and the new one pass the cap.
    let held = tx
        .query(
            "SELECT id, bytes FROM artifact_bundles WHERE project_id = $1 ORDER BY id",
            &[project.into()],
        )
        .await?;
    let mut total: u64 = held
        .iter()
        .map(|r| r.int(1).ok().flatten().unwrap_or(0) as u64)
        .sum();
    let mut evicted = 0;
    for row in &held {
        if total + bytes <= cap {
            break;
        }
        tx.execute(
            "DELETE FROM artifact_bundles WHERE id = $1",
            &[row.req_int(0)?.into()],
        )
        .await?;
        total -= row.req_int(1)? as u64;
        evicted += 1;
    }
    let id = tx
        .one(
            "INSERT INTO artifact_bundles (project_id, checksum, release, dist, files, bytes, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                project.into(),
                bundle.checksum.as_str().into(),
                bundle.release.as_deref().into(),
                bundle.dist.as_deref().into(),
                (bundle.files.len() as i64).into(),
                (bytes as i64).into(),
                now.millis().into(),
            ],
        )
        .await?
        .req_int(0)?;
    let rows = bundle
        .files
        .into_iter()
        .map(|f| {
            vec![
                id.into(),
                project.into(),
                f.kind.as_str().into(),
                f.url.as_str().into(),
                f.debug_id.as_deref().into(),
                f.sourcemap.as_deref().into(),
                (f.data.len() as i64).into(),
                Value::Blob(compress(&f.data)),
            ]
        })
        .collect();
    tx.insert_rows(
        "INSERT INTO artifact_files (bundle_id, project_id, kind, url, debug_id, sourcemap, \
         bytes, data)",
        "",
        rows,
    )
    .await?;
    if !bundle.chunks.is_empty() {
        let mut used = Where::new();
        used.in_list("checksum", bundle.chunks.iter().map(String::as_str));
        tx.execute(
            &format!("DELETE FROM artifact_chunks{}", used.sql()),
            &used.values,
        )
        .await?;
    }
    Ok(BundleSaved { id, evicted })
}

#[async_trait]
impl<E: Engine> ArtifactStore for Db<E> {
    async fn put_chunks(&self, chunks: Vec<(String, Vec<u8>)>, now: Timestamp) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        self.write("put_chunks", move |tx| {
            Box::pin(async move {
                let rows = chunks
                    .into_iter()
                    .map(|(checksum, data)| {
                        vec![
                            checksum.as_str().into(),
                            Value::Blob(data),
                            now.millis().into(),
                        ]
                    })
                    .collect();
                tx.insert_rows(
                    "INSERT INTO artifact_chunks (checksum, data, created_at)",
                    " ON CONFLICT (checksum) DO NOTHING",
                    rows,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn missing_chunks(&self, checksums: Vec<String>) -> Result<Vec<String>> {
        if checksums.is_empty() {
            return Ok(Vec::new());
        }
        self.read("missing_chunks", move |tx| {
            Box::pin(async move {
                let mut held = std::collections::HashSet::new();
                for part in checksums.chunks(500) {
                    let mut filter = Where::new();
                    filter.in_list("checksum", part.iter().map(String::as_str));
                    let rows = tx
                        .query(
                            &format!("SELECT checksum FROM artifact_chunks{}", filter.sql()),
                            &filter.values,
                        )
                        .await?;
                    for row in rows {
                        held.insert(row.req_text(0)?);
                    }
                }
                let mut missing: Vec<String> = checksums
                    .into_iter()
                    .filter(|c| !held.contains(c))
                    .collect();
                missing.dedup();
                Ok(missing)
            })
        })
        .await
    }

    async fn read_chunks(&self, checksums: Vec<String>) -> Result<Vec<Vec<u8>>> {
        self.read("read_chunks", move |tx| {
            Box::pin(async move {
                let mut out = Vec::with_capacity(checksums.len());
                for checksum in &checksums {
                    let row = tx
                        .first(
                            "SELECT data FROM artifact_chunks WHERE checksum = $1",
                            &[checksum.as_str().into()],
                        )
                        .await?
                        .ok_or(crate::StoreError::NotFound("chunk"))?;
                    out.push(row.req_blob(0)?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn bundle_stored(&self, project: ProjectId, checksum: &str) -> Result<bool> {
        let checksum = checksum.to_string();
        self.read("bundle_stored", move |tx| {
            Box::pin(async move {
                Ok(tx
                    .first(
                        "SELECT 1 FROM artifact_bundles WHERE project_id = $1 AND checksum = $2",
                        &[project.0.into(), checksum.as_str().into()],
                    )
                    .await?
                    .is_some())
            })
        })
        .await
    }

    async fn save_bundle(
        &self,
        bundle: NewBundle,
        cap_bytes: u64,
        now: Timestamp,
    ) -> Result<BundleSaved> {
        self.write("save_bundle", move |tx| {
            Box::pin(save(tx, bundle, cap_bytes, now))
        })
        .await
    }

    async fn files_by_debug_id(
        &self,
        project: ProjectId,
        debug_ids: Vec<String>,
    ) -> Result<Vec<ArtifactFile>> {
        files_matching(
            self,
            "files_by_debug_id",
            project,
            "f.debug_id",
            debug_ids,
            None,
        )
        .await
    }

    async fn files_by_url(
        &self,
        project: ProjectId,
        release: String,
        dist: Option<String>,
        urls: Vec<String>,
    ) -> Result<Vec<ArtifactFile>> {
        files_matching(
            self,
            "files_by_url",
            project,
            "f.url",
            urls,
            Some((release, dist)),
        )
        .await
    }

    async fn release_files(
        &self,
        project: ProjectId,
        release: String,
        limit: u32,
    ) -> Result<Vec<ReleaseFile>> {
        self.read("release_files", move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT f.id, f.bundle_id, f.url, b.dist, f.kind, f.sourcemap, f.bytes, \
                         b.created_at, f.data FROM artifact_files f \
                         JOIN artifact_bundles b ON b.id = f.bundle_id \
                         WHERE b.project_id = $1 AND b.release = $2 \
                         ORDER BY f.bundle_id DESC, f.id LIMIT $3",
                        &[
                            project.0.into(),
                            release.as_str().into(),
                            i64::from(limit).into(),
                        ],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        let data = decompress(&row.req_blob(8)?)?;
                        Ok(ReleaseFile {
                            id: row.req_int(0)?,
                            bundle_id: row.req_int(1)?,
                            name: row.req_text(2)?,
                            dist: row.text(3)?,
                            kind: row.req_text(4)?,
                            sourcemap: row.text(5)?,
                            size: row.req_int(6)?,
                            sha1: sha1_smol::Sha1::from(&data).digest().to_string(),
                            created_at: Timestamp(row.req_int(7)?),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn has_artifacts(&self, project: ProjectId) -> Result<bool> {
        self.read("has_artifacts", move |tx| {
            Box::pin(async move {
                Ok(tx
                    .first(
                        "SELECT 1 FROM artifact_bundles WHERE project_id = $1 LIMIT 1",
                        &[project.0.into()],
                    )
                    .await?
                    .is_some())
            })
        })
        .await
    }

    async fn artifact_bundles(&self, project: ProjectId) -> Result<Vec<BundleMeta>> {
        self.read("artifact_bundles", move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT id, checksum, release, dist, files, bytes, created_at \
                         FROM artifact_bundles WHERE project_id = $1 ORDER BY id DESC",
                        &[project.0.into()],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(BundleMeta {
                            id: row.req_int(0)?,
                            checksum: row.req_text(1)?,
                            release: row.text(2)?,
                            dist: row.text(3)?,
                            files: row.req_int(4)?,
                            bytes: row.req_int(5)?,
                            created_at: Timestamp(row.req_int(6)?),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn delete_artifact_bundle(&self, project: ProjectId, id: i64) -> Result<bool> {
        self.write("delete_artifact_bundle", move |tx| {
            Box::pin(async move {
                Ok(tx
                    .execute(
                        "DELETE FROM artifact_bundles WHERE project_id = $1 AND id = $2",
                        &[project.0.into(), id.into()],
                    )
                    .await?
                    > 0)
            })
        })
        .await
    }

    async fn prune_artifacts(
        &self,
        chunks_before: Timestamp,
        bundles_before: Timestamp,
    ) -> Result<(u64, u64)> {
        self.write("prune_artifacts", move |tx| {
            Box::pin(async move {
                let chunks = tx
                    .execute(
                        "DELETE FROM artifact_chunks WHERE created_at < $1",
                        &[chunks_before.millis().into()],
                    )
                    .await?;
                let bundles = tx
                    .execute(
                        "DELETE FROM artifact_bundles WHERE created_at < $1",
                        &[bundles_before.millis().into()],
                    )
                    .await?;
                Ok((chunks, bundles))
            })
        })
        .await
    }
}
