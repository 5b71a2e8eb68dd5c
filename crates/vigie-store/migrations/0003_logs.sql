-- Log storage: sources, and blocks of compressed records with their summaries (see
-- src/logs/mod.rs).

CREATE TABLE log_sources (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

-- Summary columns first, then the bloom filter, then the data: SQLite reads a row's columns
-- in order, so listing summaries never touches the overflow pages of the large blobs.
CREATE TABLE log_blocks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    source_id     INTEGER NOT NULL REFERENCES log_sources(id) ON DELETE CASCADE,
    min_time      INTEGER NOT NULL,
    max_time      INTEGER NOT NULL,
    records       INTEGER NOT NULL,
    level_mask    INTEGER NOT NULL,
    level_counts  TEXT NOT NULL,
    raw_bytes     INTEGER NOT NULL,
    stored_bytes  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    bloom         BLOB NOT NULL,
    data          BLOB NOT NULL
);
-- postgres only:
-- Blocks are written once and never updated; compressed blobs gain nothing from TOAST's pglz.
ALTER TABLE log_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE log_blocks ALTER COLUMN bloom SET STORAGE EXTERNAL;
-- end
CREATE INDEX log_blocks_by_time ON log_blocks (project_id, max_time);
CREATE INDEX log_blocks_by_source ON log_blocks (source_id, max_time);
