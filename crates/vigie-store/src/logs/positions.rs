//! Where each followed log file was read to (see `followed_files` in the migrations): written
//! with the records read before that point, in one transaction, so a follower that restarts
//! (even after `kill -9`) goes on exactly after the last record stored.

use crate::sql::{Columns, Value};
use crate::tx::Tx;
use crate::Result;
use vigie_core::{ProjectId, Timestamp};

/// How far a followed file was read and stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePosition {
    /// The machine that reads the file (the same path on two machines is two files).
    pub host: String,
    pub path: String,
    pub project: ProjectId,
    /// `device:inode` of the file that was read.
    pub file_id: String,
    /// The file's first `head_len` bytes (at most 1 KiB) hash to `head_sha1` (hex).
    pub head_len: u64,
    pub head_sha1: String,
    /// Bytes read and stored; the next record starts here.
    pub read_to: u64,
}

const UPSERT: &str = "INSERT INTO followed_files (host, path, project_id, file_id, head_len, \
     head_sha1, read_to, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (host, path) DO UPDATE SET project_id = excluded.project_id, \
     file_id = excluded.file_id, head_len = excluded.head_len, head_sha1 = excluded.head_sha1, \
     read_to = excluded.read_to, updated_at = excluded.updated_at";

const OF_HOST: &str = "SELECT host, path, project_id, file_id, head_len, head_sha1, read_to \
     FROM followed_files WHERE host = $1 ORDER BY path";

pub(crate) async fn write(tx: &mut dyn Tx, positions: &[FilePosition]) -> Result<()> {
    let now = Timestamp::now().millis();
    for p in positions {
        let values: [Value; 8] = [
            p.host.as_str().into(),
            p.path.as_str().into(),
            p.project.0.into(),
            p.file_id.as_str().into(),
            (p.head_len as i64).into(),
            p.head_sha1.as_str().into(),
            (p.read_to as i64).into(),
            now.into(),
        ];
        tx.execute(UPSERT, &values).await?;
    }
    Ok(())
}

pub(crate) async fn of_host(tx: &mut dyn Tx, host: &str) -> Result<Vec<FilePosition>> {
    let rows = tx.query(OF_HOST, &[host.into()]).await?;
    rows.iter()
        .map(|r| {
            Ok(FilePosition {
                host: r.req_text(0)?,
                path: r.req_text(1)?,
                project: ProjectId(r.req_int(2)?),
                file_id: r.req_text(3)?,
                head_len: r.req_int(4)?.max(0) as u64,
                head_sha1: r.req_text(5)?,
                read_to: r.req_int(6)?.max(0) as u64,
            })
        })
        .collect()
}
