-- Source maps and the minified files they map, as `sentry-cli` and the bundler plugins upload
-- them (src/artifacts.rs).
--
-- An upload comes in chunks, each named by its SHA-1; they wait here until the bundle they
-- make is assembled (then they go), or an hour at most.
CREATE TABLE artifact_chunks (
    checksum    TEXT PRIMARY KEY,
    data        BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX artifact_chunks_by_age ON artifact_chunks (created_at);

-- A bundle: one build's files, stored once per project whatever the number of uploads (its
-- checksum is the SHA-1 of what was uploaded).
CREATE TABLE artifact_bundles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    checksum    TEXT NOT NULL,
    release     TEXT,
    dist        TEXT,
    files       INTEGER NOT NULL,
    -- The files' size, inflated: what the per-project cap counts.
    bytes       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, checksum)
);
CREATE INDEX artifact_bundles_by_age ON artifact_bundles (created_at);

-- A bundle's files: found by debug id (what the SDK's debug_meta names) or by URL in a
-- release. `data` is zstd.
CREATE TABLE artifact_files (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    bundle_id   INTEGER NOT NULL REFERENCES artifact_bundles(id) ON DELETE CASCADE,
    project_id  INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    url         TEXT NOT NULL,
    debug_id    TEXT,
    sourcemap   TEXT,
    bytes       INTEGER NOT NULL,
    data        BLOB NOT NULL
);
CREATE INDEX artifact_files_by_debug_id ON artifact_files (project_id, debug_id);
CREATE INDEX artifact_files_by_url ON artifact_files (project_id, url);
CREATE INDEX artifact_files_by_bundle ON artifact_files (bundle_id);
-- postgres only:
-- Compressed already: TOAST's pglz gains nothing.
ALTER TABLE artifact_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE artifact_files ALTER COLUMN data SET STORAGE EXTERNAL;
-- end
