-- Application metrics (OpenTelemetry meters), src/metrics.rs: a row per series (a metric of
-- a service with one set of attributes), and a row per series per minute.
CREATE TABLE metric_series (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- A stable hash of (name, service, attributes): how a write finds its series without an
    -- index over their whole text (vigie_core::metric::MetricPoint::series_hash).
    key_hash    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    service     TEXT NOT NULL,
    -- The point attributes as a JSON list of [key, value] pairs, sorted by key.
    attributes  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    unit        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, key_hash)
);
CREATE INDEX metric_series_by_name ON metric_series (project_id, name);

-- What changes with every point of a series, apart from the series itself (written once):
-- the last total of a cumulative series (vigie_core::metric::Cumulative::encode; empty for
-- the others), so the next one is read as a change, and when it last received a point.
-- Retention scans it hourly: no index on last_seen to keep up at every point.
CREATE TABLE metric_state (
    series_id   INTEGER PRIMARY KEY REFERENCES metric_series(id) ON DELETE CASCADE,
    state       BLOB NOT NULL,
    last_seen   INTEGER NOT NULL
);

-- One series over one minute (vigie_core::metric::Minute), keyed by `id` = the series' id
-- × 2^26 + the minute since the epoch (src/metrics.rs, `point_id`; minutes fit 26 bits until
-- 2097). A series' minutes lie side by side in the table's own B-tree, so a chart reads each
-- series as one range, and a point costs one insert with no other index to keep.
CREATE TABLE metric_points (
    id        INTEGER PRIMARY KEY,
    count     INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL,
    max       REAL,
    last      REAL,
    increase  REAL NOT NULL,
    buckets   BLOB NOT NULL
);
-- No foreign key: a series' minutes are one key range, which `prune_metrics` deletes with it.
