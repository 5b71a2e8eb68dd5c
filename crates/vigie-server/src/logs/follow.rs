//! Log files Vigie follows itself (`[[logs.follow]]`, `vigie import --follow`): the files an
//! application already writes — Python's `RotatingFileHandler`, a Celery worker's `--logfile`,
//! nginx — read as they grow, through their rotations, and across restarts, with no shipper.
//!
//! ```text
//!   every 250 ms: the glob ─▶ paths ─▶ per path, one Reader (file handle, offset, the
//!   file's Importer holding the record still being built)
//!     grown     ─▶ read what was appended (a bounded chunk), whole lines to the Importer
//!     renamed   ─▶ the old handle is read to its end, its last record finished, then the new
//!                  file at the path from its start          (RotatingFileHandler, logrotate)
//!     truncated ─▶ the copy beside it (same first bytes) is read on from where we were, then
//!                  the file from its start                  (logrotate's copytruncate)
//!   ─▶ finished records + each file's position ─▶ delivered: one transaction stores both
//!      (see `vigie_store::logs::positions`), or the delivery is retried, never skipped
//! ```
//!
//! **Exactly once across restarts.** A file's position is the offset where the record still
//! being built began (a traceback's first line), or else the end of the last whole line read;
//! it is stored with the records read before it. A restart (even after `kill -9`) finds the
//! file by its position's `device:inode` and first bytes: the same file resumes there; a file
//! rotated meanwhile is found beside the path (by inode, or by its first bytes for a copy) and
//! read to its end first. Nothing stored is read twice, nothing written is skipped.
//!
//! What cannot be helped: lines written to a copy-truncated file between the copy and the
//! truncation are in neither file, as for every reader of copytruncate; a rotated file that
//! was compressed or deleted while Vigie was stopped cannot be read on (a warning says so).
//! A record still being built is finished after [`QUIET`] without new lines.

use sha1_smol::Sha1;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vigie_core::{LogRecord, ProjectId};
use vigie_protocol::logs::files::{Format, Importer, Zone};
use vigie_store::logs::FilePosition;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(250);
/// A record still being built (lines may continue it) is finished after this long without a
/// new line.
pub const QUIET: Duration = Duration::from_secs(2);
/// Most bytes read from one file per look, so a large backlog is read (and stored) in steps.
const READ_BUDGET: usize = 4 << 20;
/// Most bytes read from all the files of one look: what a look holds in memory is bounded
/// however many files have a backlog.
const LOOK_BUDGET: usize = 16 << 20;
/// A path gone for this long (deleted, and no new file there) is let go: its handle is
/// closed, so the disk space of a deleted file is freed.
const GONE_AFTER: Duration = Duration::from_secs(5);
/// A line longer than this is cut into pieces of this size (each its own record).
const MAX_LINE: usize = 1 << 20;
/// The first bytes of a file that identify it beside its inode.
const HEAD: u64 = 1024;
/// Lines read to detect a new file's format.
const DETECT_LINES: usize = 50;

/// What to follow (one `[[logs.follow]]` table).
#[derive(Clone)]
pub struct FollowSpec {
    /// A path, or a glob like `/srv/app/logs/*.log`.
    pub pattern: String,
    /// `None`: each file's format is detected from its first lines.
    pub format: Option<Format>,
    /// `None`: the source is the file's name.
    pub source: Option<String>,
    pub project: ProjectId,
    pub zone: Zone,
    /// Files found at the first look that were never read before start at their end.
    pub from_end: bool,
}

/// What one look harvested: records to store with the positions they were read to.
#[derive(Debug, Default)]
pub struct Harvest {
    pub records: Vec<LogRecord>,
    pub positions: Vec<FilePosition>,
    /// Some file has more to read right away (its budget ran out).
    pub more: bool,
    /// Files that were started, rotated or lost, for the operator (`tracing` and the CLI).
    pub notes: Vec<String>,
}

impl Harvest {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.positions.is_empty()
    }
}

/// A file's identity on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    fn text(self) -> String {
        format!("{}:{}", self.dev, self.ino)
    }
}

/// The SHA-1 (hex) of a file's first `len` bytes, if it has that many.
fn head_of(file: &File, len: u64) -> Option<String> {
    let mut bytes = vec![0; len as usize];
    file.read_exact_at(&mut bytes, 0).ok()?;
    Some(Sha1::from(&bytes).digest().to_string())
}

/// One file being read.
struct Reader {
    file: File,
    id: FileId,
    /// Where the next read starts.
    read: u64,
    /// Bytes after the last newline read (a line still being written).
    partial: Vec<u8>,
    importer: Option<Importer>,
    /// Where the record the importer is building began.
    record_at: u64,
    /// The first bytes that identify the file: their length and SHA-1.
    head: (u64, String),
    last_line: Instant,
}

impl Reader {
    fn open(path: &Path, at: u64) -> std::io::Result<Reader> {
        Reader::of(File::open(path)?, at)
    }

    /// Reads an open file (found by its identity: a rename meanwhile changes nothing).
    fn of(file: File, at: u64) -> std::io::Result<Reader> {
        let id = FileId::of(&file.metadata()?);
        Ok(Reader {
            file,
            id,
            read: at,
            partial: Vec::new(),
            importer: None,
            record_at: at,
            head: (0, String::new()),
            last_line: Instant::now(),
        })
    }

    /// Where a restart goes on: the start of the record being built, else after the last
    /// whole line.
    fn position(&self) -> u64 {
        match &self.importer {
            Some(importer) if importer.holds_record() => self.record_at,
            _ => self.read - self.partial.len() as u64,
        }
    }

    /// The file's first bytes, measured again while it has fewer than [`HEAD`].
    fn head(&mut self) -> (u64, String) {
        if self.head.0 < HEAD {
            let len = self.file.metadata().map_or(0, |m| m.len()).min(HEAD);
            if len > self.head.0 {
                if let Some(sha1) = head_of(&self.file, len) {
                    self.head = (len, sha1);
                }
            }
        }
        self.head.clone()
    }

    fn len(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }
}

/// One followed path, and what is known of it.
struct Tracked {
    reader: Option<Reader>,
    /// Files rotated after the one being read and before the path's current one (several
    /// rotations between two looks, or while Vigie was stopped), oldest first: read next.
    backlog: VecDeque<Reader>,
    /// The files of this path read to their end in this run (the latest few), never read again.
    finished: VecDeque<FileId>,
    source: String,
    /// The position last delivered (file id and offset), to deliver only changes.
    delivered: Option<(FileId, u64)>,
    /// Since when the path names no file (renamed away or deleted).
    missing_since: Option<Instant>,
}

/// Follows the files of one spec; [`look`](Follower::look) does one round.
pub struct Follower {
    spec: FollowSpec,
    host: String,
    /// Positions stored by an earlier run, by path, used once when the path is first met.
    known: HashMap<String, FilePosition>,
    files: BTreeMap<PathBuf, Tracked>,
    first_look: bool,
    received: fn() -> i64,
    quiet_after: Duration,
    /// How long a path may name no file before it is let go.
    gone_after: Duration,
    /// A folder whose files are never followed: Vigie's own rotating files, which it writes
    /// from the records it stores (following them would store each record again, for ever).
    skip: Option<PathBuf>,
}

impl Follower {
    /// `known`: the positions this host stored before (`followed_files`).
    pub fn new(spec: FollowSpec, host: &str, known: Vec<FilePosition>) -> Follower {
        Follower {
            spec,
            host: host.to_string(),
            known: known.into_iter().map(|p| (p.path.clone(), p)).collect(),
            files: BTreeMap::new(),
            first_look: true,
            received: vigie_core::time::now_ns,
            quiet_after: QUIET,
            gone_after: GONE_AFTER,
            skip: None,
        }
    }

    /// Lets a path go after `gone` without a file instead of [`GONE_AFTER`].
    pub fn gone_after(mut self, gone: Duration) -> Follower {
        self.gone_after = gone;
        self
    }

    /// Never follows the files under `dir` (see `skip`).
    pub fn skipping(mut self, dir: &Path) -> Follower {
        self.skip = Some(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()));
        self
    }

    /// Finishes a record being built after `quiet` without new lines instead of [`QUIET`].
    pub fn quiet_after(mut self, quiet: Duration) -> Follower {
        self.quiet_after = quiet;
        self
    }

    pub fn spec(&self) -> &FollowSpec {
        &self.spec
    }

    /// The paths the pattern names now.
    fn paths(&self) -> Vec<PathBuf> {
        match glob::glob(&self.spec.pattern) {
            Ok(paths) => paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| is_rotated_name(&n.to_string_lossy()))
                })
                .filter(|p| match &self.skip {
                    Some(skip) => !p.canonicalize().is_ok_and(|p| p.starts_with(skip)),
                    None => true,
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// One round: new paths are taken up, every file is read on as far as its budget allows,
    /// rotations are followed, quiet records finished.
    pub fn look(&mut self) -> Harvest {
        let mut read = Harvest::default();
        for path in self.paths() {
            if !self.files.contains_key(&path) {
                let tracked = self.take_up(&path, &mut read);
                self.files.insert(path, tracked);
            }
        }
        self.first_look = false;
        let received = (self.received)();
        let paths: Vec<PathBuf> = self.files.keys().cloned().collect();
        let mut budget = LOOK_BUDGET;
        for path in paths {
            let Some(mut tracked) = self.files.remove(&path) else {
                continue;
            };
            if budget == 0 {
                read.more = true;
                self.files.insert(path, tracked);
                continue;
            }
            budget = budget.saturating_sub(self.step(&path, &mut tracked, received, &mut read));
            if tracked
                .missing_since
                .is_some_and(|since| since.elapsed() >= self.gone_after)
            {
                // Read to its end and finished: the path is let go (taken up again, from
                // its start, if a file comes back there).
                read.notes
                    .push(format!("{}: gone; no longer followed", path.display()));
                continue;
            }
            let position = tracked.reader.as_mut().map(|r| (r.id, r.position(), r));
            if let Some((id, at, reader)) = position {
                if tracked.delivered != Some((id, at)) {
                    let head = reader.head();
                    read.positions.push(FilePosition {
                        host: self.host.clone(),
                        path: path.to_string_lossy().into_owned(),
                        project: self.spec.project,
                        file_id: id.text(),
                        head_len: head.0,
                        head_sha1: head.1,
                        read_to: at,
                    });
                    tracked.delivered = Some((id, at));
                }
            }
            self.files.insert(path, tracked);
        }
        read
    }

    /// A path met for the first time: where to start reading it.
    fn take_up(&mut self, path: &Path, read: &mut Harvest) -> Tracked {
        let source = self.spec.source.clone().unwrap_or_else(|| {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into())
        });
        let mut tracked = Tracked {
            reader: None,
            backlog: VecDeque::new(),
            finished: VecDeque::new(),
            source,
            delivered: None,
            missing_since: None,
        };
        let shown = path.display();
        let Ok(current) = Reader::open(path, 0) else {
            read.notes.push(format!("{shown}: cannot be opened yet"));
            return tracked;
        };
        let Some(known) = self.known.remove(&path.to_string_lossy().into_owned()) else {
            let mut reader = current;
            if self.first_look && self.spec.from_end {
                reader.read = reader.len();
                reader.record_at = reader.read;
                read.notes.push(format!("{shown}: following from its end"));
            } else {
                read.notes
                    .push(format!("{shown}: following from its start"));
            }
            tracked.reader = Some(reader);
            return tracked;
        };
        let same_head = |file: &File| {
            known.head_len == 0 || head_of(file, known.head_len).as_ref() == Some(&known.head_sha1)
        };
        if current.id.text() == known.file_id
            && same_head(&current.file)
            && current.len() >= known.read_to
        {
            let mut reader = current;
            reader.read = known.read_to;
            reader.record_at = known.read_to;
            read.notes.push(format!(
                "{shown}: going on at byte {} where the last run stopped",
                known.read_to
            ));
            tracked.delivered = Some((reader.id, known.read_to));
            tracked.reader = Some(reader);
            return tracked;
        }
        // The file at the path is another one: the one read last is looked for beside it
        // (renamed: same inode; copied: same first bytes), to be read to its end first.
        let rotated = find_beside(path, |candidate, meta| {
            let by_inode = FileId::of(meta).text() == known.file_id;
            let copy = known.head_len > 0 && meta.len() >= known.read_to;
            (by_inode || copy) && same_head(candidate) && meta.len() >= known.read_to
        });
        match rotated {
            Some((old, old_path)) => {
                let reader = Reader::of(old, known.read_to).unwrap_or(current);
                tracked.backlog = rotated_after(path, &reader, &[]);
                read.notes.push(format!(
                    "{shown}: rotated while stopped; reading {} on from byte {} first{}",
                    old_path.display(),
                    known.read_to,
                    match tracked.backlog.len() {
                        0 => String::new(),
                        n => format!(", then {n} later rotated files"),
                    }
                ));
                tracked.reader = Some(reader);
            }
            None => {
                read.notes.push(format!(
                    "{shown}: the file read last (byte {} of {}) is gone; following the new one from its start",
                    known.read_to, known.file_id
                ));
                tracked.reader = Some(current);
            }
        }
        tracked
    }

    /// Reads one path on: appended bytes, or its rotation.
    /// Reads one path on (appended bytes, or its rotation); the bytes read.
    fn step(&self, path: &Path, tracked: &mut Tracked, received: i64, read: &mut Harvest) -> usize {
        let Some(reader) = tracked.reader.as_mut() else {
            // Not openable when met: try again.
            if let Ok(reader) = Reader::open(path, 0) {
                tracked.reader = Some(reader);
            }
            return 0;
        };
        let got = self.read_on(reader, self.spec.format, &tracked.source, received, read);
        match got {
            Ok(n) if n >= READ_BUDGET => {
                read.more = true;
                return n;
            }
            Ok(n) if n > 0 => return n,
            Ok(_) => {}
            Err(e) => {
                read.notes
                    .push(format!("{}: read failed: {e}", path.display()));
                return 0;
            }
        }
        // Nothing more in this handle: has the path moved on?
        let Ok(meta) = std::fs::metadata(path) else {
            // Renamed away (the new file not there yet), or deleted.
            let since = *tracked.missing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.gone_after {
                self.finish(reader, self.spec.format, &tracked.source, received, read);
            } else {
                quiet(reader, self.quiet_after, read);
            }
            return 0;
        };
        tracked.missing_since = None;
        if FileId::of(&meta) != reader.id {
            self.finish(reader, self.spec.format, &tracked.source, received, read);
            tracked.finished.push_back(reader.id);
            if tracked.finished.len() > 32 {
                tracked.finished.pop_front();
            }
            if tracked.backlog.is_empty() {
                let skip: Vec<FileId> = tracked.finished.iter().copied().collect();
                tracked.backlog = rotated_after(path, reader, &skip);
            }
            let next = match tracked.backlog.pop_front() {
                Some(rotated) => Ok(rotated),
                None => Reader::open(path, 0),
            };
            read.notes.push(format!(
                "{}: rotated; reading the next file",
                path.display()
            ));
            if let Ok(next) = next {
                tracked.reader = Some(next);
                return self.step(path, tracked, received, read);
            }
            return 0;
        }
        if meta.len() < reader.read {
            // Truncated in place: the copy beside it holds what was not read yet.
            let head = reader.head();
            let copy = find_beside(path, |candidate, meta| {
                meta.len() >= reader.read
                    && head.0 > 0
                    && head_of(candidate, head.0).as_ref() == Some(&head.1)
            });
            match copy {
                Some((file, copy_path)) => {
                    read.notes.push(format!(
                        "{}: truncated; reading its copy {} on first",
                        path.display(),
                        copy_path.display()
                    ));
                    reader.id = file.metadata().map(|m| FileId::of(&m)).unwrap_or(reader.id);
                    reader.file = file;
                    // The next step reads the copy to its end, then finds the path's file
                    // is another one and starts it from the beginning.
                }
                None => {
                    self.finish(reader, self.spec.format, &tracked.source, received, read);
                    read.notes.push(format!(
                        "{}: truncated; reading it from its start",
                        path.display()
                    ));
                    if let Ok(next) = Reader::open(path, 0) {
                        tracked.reader = Some(next);
                    }
                }
            }
            return 0;
        }
        quiet(reader, self.quiet_after, read);
        0
    }

    /// Reads what was appended since the last look (within the budget) and gives the whole
    /// lines to the importer; the number of bytes read.
    fn read_on(
        &self,
        reader: &mut Reader,
        format: Option<Format>,
        source: &str,
        received: i64,
        read: &mut Harvest,
    ) -> std::io::Result<usize> {
        let len = reader.len();
        if len <= reader.read {
            return Ok(0);
        }
        let want = (len - reader.read).min(READ_BUDGET as u64) as usize;
        let mut chunk = vec![0; want];
        let mut n = 0;
        while n < want {
            match reader
                .file
                .read_at(&mut chunk[n..], reader.read + n as u64)?
            {
                0 => break,
                got => n += got,
            }
        }
        chunk.truncate(n);
        let start = reader.read - reader.partial.len() as u64;
        reader.read += n as u64;
        let mut data = std::mem::take(&mut reader.partial);
        data.extend_from_slice(&chunk);
        if reader.importer.is_none() {
            let format = format.unwrap_or_else(|| {
                let sample: Vec<&[u8]> = data.split(|b| *b == b'\n').take(DETECT_LINES).collect();
                Format::detect(&sample).unwrap_or(Format::Python)
            });
            reader.importer = Some(Importer::new(
                format,
                source,
                self.spec.zone.clone(),
                received,
            ));
        }
        let importer = reader.importer.as_mut().expect("made above");
        importer.set_received(received);
        let mut at = 0;
        while let Some(end) = data[at..].iter().position(|b| *b == b'\n') {
            let line = &data[at..at + end];
            feed(
                importer,
                line,
                start + at as u64,
                &mut reader.record_at,
                read,
            );
            at += end + 1;
        }
        // A line longer than any sane line is cut rather than held without bound.
        while data.len() - at > MAX_LINE {
            let line = &data[at..at + MAX_LINE];
            feed(
                importer,
                line,
                start + at as u64,
                &mut reader.record_at,
                read,
            );
            at += MAX_LINE;
        }
        reader.partial = data[at..].to_vec();
        if at > 0 {
            reader.last_line = Instant::now();
        }
        Ok(n)
    }

    /// The file is done with (rotated): its last line, even without a newline, and its last
    /// record.
    fn finish(
        &self,
        reader: &mut Reader,
        format: Option<Format>,
        source: &str,
        received: i64,
        read: &mut Harvest,
    ) {
        if !reader.partial.is_empty() {
            let partial = std::mem::take(&mut reader.partial);
            let at = reader.read - partial.len() as u64;
            let zone = &self.spec.zone;
            let importer = reader.importer.get_or_insert_with(|| {
                let format = format.unwrap_or(Format::Python);
                Importer::new(format, source, zone.clone(), received)
            });
            feed(importer, &partial, at, &mut reader.record_at, read);
        }
        if let Some(importer) = reader.importer.as_mut() {
            if let Some(record) = importer.finish() {
                read.records.push(placed(record));
            }
        }
    }
}

/// A record being built for `after` without a new line is finished.
fn quiet(reader: &mut Reader, after: Duration, read: &mut Harvest) {
    if reader.last_line.elapsed() < after {
        return;
    }
    if let Some(importer) = reader.importer.as_mut() {
        if let Some(record) = importer.finish() {
            read.records.push(placed(record));
        }
    }
}

/// One whole line to the importer; `record_at` follows the record being built.
fn feed(importer: &mut Importer, line: &[u8], at: u64, record_at: &mut u64, read: &mut Harvest) {
    if let Some(record) = importer.line(line) {
        read.records.push(placed(record));
    }
    if importer.last_line_began_record() {
        *record_at = at;
    }
}

fn placed(mut record: LogRecord) -> LogRecord {
    record.place_in_time();
    record
}

/// The files beside `path` rotated after `done` was, oldest first, opened now (so renames
/// while they wait change nothing). "After" is by time last written; file times are coarse
/// (a few ms), so between files written in the same tick the numbering decides, as
/// RotatingFileHandler and logrotate number them: `app.log.3` is older than `app.log.2`.
/// Files in `skip` (read already) and the path's current file are left out.
fn rotated_after(path: &Path, done: &Reader, skip: &[FileId]) -> VecDeque<Reader> {
    let Ok(done_meta) = done.file.metadata() else {
        return VecDeque::new();
    };
    let current = std::fs::metadata(path).ok().map(|m| FileId::of(&m));
    let number = |p: &Path| -> i64 {
        p.extension()
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let opened: Vec<(PathBuf, File, std::fs::Metadata)> = siblings(path)
        .into_iter()
        .filter_map(|p| {
            let file = File::open(&p).ok()?;
            let meta = file.metadata().ok()?;
            meta.is_file().then_some((p, file, meta))
        })
        .collect();
    let done_number = opened
        .iter()
        .find(|(_, _, meta)| FileId::of(meta) == done.id)
        .map_or(i64::MAX, |(p, _, _)| number(p));
    let since = (done_meta.mtime(), done_meta.mtime_nsec());
    let mut found: Vec<((i64, i64, i64), File)> = opened
        .into_iter()
        .filter_map(|(p, file, meta)| {
            let id = FileId::of(&meta);
            let written = (meta.mtime(), meta.mtime_nsec());
            let n = number(&p);
            let later = written > since || (written == since && n < done_number);
            let other = id != done.id && Some(id) != current && !skip.contains(&id);
            (later && other).then_some(((written.0, written.1, -n), file))
        })
        .collect();
    found.sort_by_key(|(order, _)| *order);
    found
        .into_iter()
        .filter_map(|(_, file)| Reader::of(file, 0).ok())
        .collect()
}

/// The files beside `path` named as its rotations are (`app.log.1`, `app.log-20261125`,
/// `app.log.2026-11-25` beside `app.log`: its whole name, then `.`, `-` or `_`), compressed
/// ones left out, by name.
fn siblings(path: &Path) -> Vec<PathBuf> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Vec::new();
    };
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '-', '_']))
                    && !is_compressed(&n)
            })
        })
        .take(1000)
        .collect();
    found.sort();
    found
}

fn is_compressed(name: &str) -> bool {
    [".gz", ".zst", ".bz2", ".xz", ".zip"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Whether a file's name is a rotated file's (`app.log.1`, `app.log-20261125`,
/// `access.log.2026-11-25`, anything compressed): such a file is read as a rotation of the file
/// it came from, never followed as a file of its own (a glob like `logs/*` names them too, and
/// each rename would make it look like a new file).
pub fn is_rotated_name(name: &str) -> bool {
    if is_compressed(name) {
        return true;
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.len() < name.len() && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let stamp = last.rsplit(['-', '_']).next().unwrap_or(last);
    let stamp = if stamp.len() < 8 { last } else { stamp };
    let digits = stamp.bytes().filter(u8::is_ascii_digit).count();
    digits >= 8
        && stamp
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A file beside `path` named as its rotations are (see [`siblings`]) that `matches`, opened.
fn find_beside(
    path: &Path,
    matches: impl Fn(&File, &std::fs::Metadata) -> bool,
) -> Option<(File, PathBuf)> {
    // `app.log.1` before `app.log.2`: the newest rotation is the likeliest.
    siblings(path).into_iter().find_map(|candidate| {
        let file = File::open(&candidate).ok()?;
        let meta = file.metadata().ok()?;
        (meta.is_file() && matches(&file, &meta)).then_some((file, candidate))
    })
}

/// A followed file as the System page shows it: where it was read to, and how far behind that
/// is what the file holds now.
pub struct FileStatus {
    pub path: String,
    pub read_to: u64,
    /// The file's size now; `None` when it is gone or is now another file (rotated: the
    /// position is in the file rotated away, read on first).
    pub size: Option<u64>,
}

impl FileStatus {
    /// Where `host`'s followed files stand, from the positions stored and the files now.
    pub fn of(positions: Vec<FilePosition>) -> Vec<FileStatus> {
        positions
            .into_iter()
            .map(|p| {
                let now = std::fs::metadata(&p.path).ok();
                let size = now
                    .filter(|m| FileId::of(m).text() == p.file_id)
                    .map(|m| m.len());
                FileStatus {
                    path: p.path,
                    read_to: p.read_to,
                    size,
                }
            })
            .collect()
    }

    /// Bytes written and not stored yet.
    pub fn behind(&self) -> Option<u64> {
        self.size.map(|size| size.saturating_sub(self.read_to))
    }

    pub fn read_to_text(&self) -> String {
        crate::web::format::human_bytes(self.read_to)
    }

    pub fn size_text(&self) -> String {
        self.size
            .map_or_else(|| "rotated".into(), crate::web::format::human_bytes)
    }

    pub fn behind_text(&self) -> String {
        self.behind()
            .map(crate::web::format::human_bytes)
            .unwrap_or_default()
    }
}

/// Follows for as long as the task lives: looks (off the async runtime: file reads block),
/// then hands what it read to `deliver`, which answers once records and positions are
/// durable; a failed delivery is retried, never skipped. Stopping it at any point (abort,
/// Ctrl-C, `kill -9`) is safe: what was not stored yet is read again by the next run.
pub async fn run<D, F>(mut follower: Follower, mut deliver: D)
where
    D: FnMut(ProjectId, Vec<LogRecord>, Vec<FilePosition>) -> F,
    F: std::future::Future<Output = Result<(), String>>,
{
    let project = follower.spec.project;
    let pattern = follower.spec.pattern.clone();
    loop {
        let looked = tokio::task::spawn_blocking(move || {
            let harvest = follower.look();
            (follower, harvest)
        })
        .await;
        let harvest;
        (follower, harvest) = match looked {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(%pattern, error = %e, "following log files stopped");
                return;
            }
        };
        for note in &harvest.notes {
            tracing::info!(%pattern, "{note}");
        }
        if !harvest.is_empty() {
            let records = harvest.records.len();
            let span = tracing::info_span!("follow", %pattern, records);
            let _entered = span.enter();
            let mut wait = Duration::from_millis(250);
            while let Err(reason) =
                deliver(project, harvest.records.clone(), harvest.positions.clone()).await
            {
                tracing::warn!(%reason, retry_in = ?wait, "storing followed log lines failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
        // While the files give lines, look again at once (a backlog, rotated files read one
        // after another); wait only when a look found nothing.
        if harvest.is_empty() && !harvest.more {
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// What a store would hold: every record delivered, and the last position per path.
    #[derive(Default)]
    struct Stored {
        messages: Vec<String>,
        positions: HashMap<String, FilePosition>,
    }

    impl Stored {
        fn take(&mut self, harvest: Harvest) {
            self.messages
                .extend(harvest.records.into_iter().map(|r| r.message.into_string()));
            for p in harvest.positions {
                self.positions.insert(p.path.clone(), p);
            }
        }

        fn known(&self) -> Vec<FilePosition> {
            self.positions.values().cloned().collect()
        }
    }

    fn spec(dir: &Path) -> FollowSpec {
        FollowSpec {
            pattern: dir.join("*.log").to_string_lossy().into_owned(),
            format: Some(Format::Python),
            source: None,
            project: ProjectId(1),
            zone: Zone::utc(),
            from_end: false,
        }
    }

    fn follower(dir: &Path, known: Vec<FilePosition>) -> Follower {
        Follower::new(spec(dir), "web-1", known).quiet_after(Duration::ZERO)
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn line(n: u32) -> String {
        format!("2026-11-25 10:00:{:02},000 INFO app: line {n}\n", n % 60)
    }

    fn lines(range: std::ops::Range<u32>) -> String {
        range.map(line).collect()
    }

    /// Looks until nothing more comes (a record being built is finished by the quiet rule).
    fn drain(follower: &mut Follower, stored: &mut Stored) {
        for _ in 0..10 {
            stored.take(follower.look());
        }
    }

    fn expected(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|n| format!("line {n}")).collect()
    }

    #[test]
    fn appended_lines_are_read_once_and_a_half_line_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &lines(0..3));
        append(&path, "2026-11-25 10:00:03,000 INFO app: li");
        let mut follower = follower(dir.path(), Vec::new());
        let mut stored = Stored::default();
        drain(&mut follower, &mut stored);
        assert_eq!(stored.messages, expected(0..3));
        append(&path, "ne 3\n");
        append(&path, &lines(4..6));
        drain(&mut follower, &mut stored);
        assert_eq!(stored.messages, expected(0..6));
        let position = &stored.positions[&path.to_string_lossy().into_owned()];
        assert_eq!(position.read_to, std::fs::metadata(&path).unwrap().len());
        assert_eq!(position.host, "web-1");
        assert_eq!(position.head_len, position.read_to.min(HEAD));
    }

    #[test]
    fn a_traceback_being_written_is_one_record_and_its_start_is_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &line(0));
        let traceback_at = std::fs::metadata(&path).unwrap().len();
        append(
            &path,
            "2026-11-25 10:00:01,000 ERROR app: failed\nTraceback (most recent call last):\n",
        );
        // Slow quiet rule: the traceback is still being built after this look.
        let mut first = Follower::new(spec(dir.path()), "web-1", Vec::new()).quiet_after(QUIET);
        let mut stored = Stored::default();
        stored.take(first.look());
        assert_eq!(stored.messages, expected(0..1));
        let key = path.to_string_lossy().into_owned();
        assert_eq!(stored.positions[&key].read_to, traceback_at);

        // Stopped there (kill -9): the next run reads the traceback again, whole.
        append(&path, "ValueError: bad\n");
        append(&path, &line(2));
        let mut next = follower(dir.path(), stored.known());
        drain(&mut next, &mut stored);
        assert_eq!(stored.messages.len(), 3, "{:?}", stored.messages);
        assert_eq!(
            stored.messages[1],
            "failed\nTraceback (most recent call last):\nValueError: bad"
        );
        assert_eq!(stored.messages[2], "line 2");
    }

    /// `app.log` with lines 0..10, read by a new follower: the start of the rotation tests.
    fn ten_lines_read(dir: &Path) -> (PathBuf, Follower, Stored) {
        let path = dir.join("app.log");
        append(&path, &lines(0..10));
        let mut follower = follower(dir, Vec::new());
        let mut stored = Stored::default();
        drain(&mut follower, &mut stored);
        (path, follower, stored)
    }

    #[test]
    fn a_rotation_by_rename_loses_and_doubles_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut follower, mut stored) = ten_lines_read(dir.path());
        // Written after the last look, then rotated as RotatingFileHandler does.
        append(&path, &lines(10..15));
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        append(&path, &lines(15..20));
        drain(&mut follower, &mut stored);
        assert_eq!(stored.messages, expected(0..20));
        let key = path.to_string_lossy().into_owned();
        let position = &stored.positions[&key];
        let now = std::fs::metadata(&path).unwrap();
        assert_eq!(position.file_id, FileId::of(&now).text());
        assert_eq!(position.read_to, now.len());
    }

    #[test]
    fn a_copy_truncate_rotation_reads_the_copy_on_first() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut follower, mut stored) = ten_lines_read(dir.path());
        append(&path, &lines(10..15));
        std::fs::copy(&path, dir.path().join("app.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, &lines(15..17));
        drain(&mut follower, &mut stored);
        assert_eq!(stored.messages, expected(0..17));
    }

    #[test]
    fn a_restart_goes_on_where_the_last_run_stopped_even_after_a_rotation_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &lines(0..10));
        let mut stored = Stored::default();
        drain(&mut follower(dir.path(), Vec::new()), &mut stored);
        // Stopped. The app goes on writing; then the same file again, and a rotation.
        append(&path, &lines(10..12));
        drain(&mut follower(dir.path(), stored.known()), &mut stored);
        assert_eq!(stored.messages, expected(0..12));
        append(&path, &lines(12..20));
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        append(&path, &lines(20..25));
        let mut next = follower(dir.path(), stored.known());
        drain(&mut next, &mut stored);
        assert_eq!(stored.messages, expected(0..25));
    }

    /// RotatingFileHandler with backups: app.log.2 → .3, .1 → .2, app.log → .1.
    fn rotate(dir: &Path) {
        for k in (1..5).rev() {
            let _ = std::fs::rename(
                dir.join(format!("app.log.{k}")),
                dir.join(format!("app.log.{}", k + 1)),
            );
        }
        std::fs::rename(dir.join("app.log"), dir.join("app.log.1")).unwrap();
    }

    #[test]
    fn several_rotations_between_two_looks_or_while_stopped_are_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &lines(0..5));
        let mut stored = Stored::default();
        let mut running = follower(dir.path(), Vec::new());
        drain(&mut running, &mut stored);
        for part in 0..3 {
            append(&path, &lines(5 + part * 5..10 + part * 5));
            rotate(dir.path());
        }
        append(&path, &lines(20..22));
        drain(&mut running, &mut stored);
        assert_eq!(stored.messages, expected(0..22));

        // Stopped; three more rotations; started again.
        for part in 0..3 {
            append(&path, &lines(22 + part * 5..27 + part * 5));
            rotate(dir.path());
        }
        append(&path, &lines(37..40));
        drain(&mut follower(dir.path(), stored.known()), &mut stored);
        assert_eq!(stored.messages, expected(0..40));
    }

    #[test]
    fn a_file_gone_while_stopped_is_followed_anew_and_new_files_are_taken_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &lines(0..5));
        let mut stored = Stored::default();
        drain(&mut follower(dir.path(), Vec::new()), &mut stored);
        std::fs::remove_file(&path).unwrap();
        append(&path, &lines(5..7));
        let mut next = follower(dir.path(), stored.known());
        drain(&mut next, &mut stored);
        assert_eq!(stored.messages, expected(0..7));
        // A file the glob names later is read from its start, under its own source.
        append(&dir.path().join("worker.log"), &lines(7..8));
        let mut records = next.look().records;
        records.extend(next.look().records);
        assert_eq!(records.len(), 1, "read, then finished when quiet");
        assert_eq!(records[0].source, "worker.log");
    }

    #[test]
    fn a_deleted_file_is_finished_and_let_go_and_a_new_one_there_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &lines(0..3));
        // The quiet rule slow: only letting go finishes the last record.
        let mut follower = Follower::new(spec(dir.path()), "web-1", Vec::new())
            .quiet_after(QUIET)
            .gone_after(Duration::ZERO);
        let mut stored = Stored::default();
        stored.take(follower.look());
        assert_eq!(stored.messages, expected(0..2));
        std::fs::remove_file(&path).unwrap();
        let harvest = follower.look();
        assert!(harvest
            .notes
            .iter()
            .any(|n| n.contains("no longer followed")));
        stored.take(harvest);
        assert_eq!(stored.messages, expected(0..3));
        assert!(follower.files.is_empty(), "its handle is closed");
        append(&path, &lines(3..5));
        let mut follower = follower.quiet_after(Duration::ZERO);
        drain(&mut follower, &mut stored);
        assert_eq!(stored.messages, expected(0..5));
    }

    #[test]
    fn rotated_names_are_told_apart_from_live_files() {
        for rotated in [
            "app.log.1",
            "app.log.12",
            "app.log-20261125",
            "access.log.2026-11-25",
            "app.log.2026-11-25_10",
            "app.log.1.gz",
            "worker.log.zst",
        ] {
            assert!(is_rotated_name(rotated), "{rotated}");
        }
        for live in [
            "app.log",
            "worker-1.log",
            "2026-11-25.log",
            "celery.beat.log",
            "app",
        ] {
            assert!(!is_rotated_name(live), "{live}");
        }
    }

    #[test]
    fn a_glob_naming_rotated_files_and_a_neighbour_reads_each_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let neighbour = dir.path().join("app-worker.log");
        append(&path, &lines(0..5));
        append(&neighbour, &lines(100..102));
        let spec = FollowSpec {
            pattern: dir.path().join("*").to_string_lossy().into_owned(),
            ..spec(dir.path())
        };
        let mut follower = Follower::new(spec, "web-1", Vec::new()).quiet_after(Duration::ZERO);
        let mut stored = Stored::default();
        drain(&mut follower, &mut stored);
        append(&path, &lines(5..8));
        rotate(dir.path());
        append(&neighbour, &lines(102..104));
        append(&path, &lines(8..10));
        drain(&mut follower, &mut stored);
        stored
            .messages
            .sort_by_key(|m| m[5..].parse::<u32>().unwrap());
        let mut want = expected(0..10);
        want.extend(expected(100..104));
        assert_eq!(stored.messages, want);
    }

    #[test]
    fn vigie_own_files_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("files");
        std::fs::create_dir_all(&own).unwrap();
        append(&own.join("errors.log"), &lines(0..3));
        append(&dir.path().join("app.log"), &lines(3..4));
        let spec = FollowSpec {
            pattern: dir.path().join("**/*.log").to_string_lossy().into_owned(),
            ..spec(dir.path())
        };
        let mut follower = Follower::new(spec, "web-1", Vec::new())
            .quiet_after(Duration::ZERO)
            .skipping(&own);
        let mut stored = Stored::default();
        drain(&mut follower, &mut stored);
        assert_eq!(stored.messages, expected(3..4));
    }

    #[test]
    fn from_end_skips_what_files_held_at_the_first_look_only() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("old.log"), &lines(0..5));
        let spec = FollowSpec {
            from_end: true,
            ..spec(dir.path())
        };
        let mut follower = Follower::new(spec, "web-1", Vec::new()).quiet_after(Duration::ZERO);
        let mut stored = Stored::default();
        drain(&mut follower, &mut stored);
        assert!(stored.messages.is_empty());
        append(&dir.path().join("old.log"), &lines(5..6));
        append(&dir.path().join("new.log"), &lines(6..7));
        drain(&mut follower, &mut stored);
        stored.messages.sort();
        assert_eq!(stored.messages, expected(5..7));
    }

    #[test]
    fn a_line_without_end_is_cut_not_held_without_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, &line(0));
        // 3.5 MiB with no line break, as a binary file or a runaway writer makes.
        append(&path, &"x".repeat(7 << 19));
        let mut follower = follower(dir.path(), Vec::new());
        let mut stored = Stored::default();
        for _ in 0..5 {
            stored.take(follower.look());
            let held: usize = follower
                .files
                .values()
                .filter_map(|t| t.reader.as_ref())
                .map(|r| r.partial.len())
                .sum();
            assert!(held <= MAX_LINE, "{held} bytes of a line held");
        }
        append(&path, &format!("\n{}", line(1)));
        drain(&mut follower, &mut stored);
        // Python's format continues the first record with the 1 MiB pieces, up to the message
        // limit; quiet, it is finished, and the line's last piece is a raw record of its own.
        assert_eq!(stored.messages.len(), 3);
        assert!(stored.messages[0].starts_with("line 0\nxxx"));
        assert!(stored.messages[..2]
            .iter()
            .all(|m| m.ends_with("[truncated]")));
        assert!(stored.messages.iter().all(|m| m.len() < 70_000));
        assert_eq!(stored.messages[2], "line 1");
    }

    #[test]
    fn a_large_backlog_is_read_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let big: String = lines(0..120_000);
        assert!(big.len() > READ_BUDGET);
        append(&path, &big);
        let mut follower = follower(dir.path(), Vec::new());
        let first = follower.look();
        assert!(first.more, "the budget ran out");
        assert!(first.records.len() < 120_000);
        let mut stored = Stored::default();
        stored.take(first);
        drain(&mut follower, &mut stored);
        assert_eq!(stored.messages.len(), 120_000);
    }
}
