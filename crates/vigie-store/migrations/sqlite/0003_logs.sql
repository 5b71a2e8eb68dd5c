-- Log storage: sources, and blocks of compressed records with their summaries (see
-- src/logs/mod.rs). Shapes match postgres/0003_logs.sql column for column.

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
CREATE INDEX log_blocks_by_time ON log_blocks (project_id, max_time);
CREATE INDEX log_blocks_by_source ON log_blocks (source_id, max_time);
