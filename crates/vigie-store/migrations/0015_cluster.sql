-- The change feed (see crate::feed): what alerts and other instances depend on, written in
-- the same transaction as the data it describes, read in order by cursor.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- issue | job | monitor_run | project
    kind        TEXT NOT NULL,
    -- crate::feed::FeedChange as JSON.
    body        TEXT NOT NULL,
    at          INTEGER NOT NULL
);

-- Where each reader of the feed is; moved in the transaction that acted on what it read.
CREATE TABLE feed_cursors (
    name  TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL
);

-- A delivery made for a feed entry carries a key naming the entry and the rule: the same
-- entry read twice (a crash, two instances in a failover) cannot queue the message twice.
ALTER TABLE alert_deliveries ADD COLUMN once_key TEXT;
CREATE UNIQUE INDEX alert_deliveries_once ON alert_deliveries (channel_id, once_key);

-- The instances sharing this database (crate::lead): each writes its row every few seconds;
-- the System page lists them and says which one leads.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    address     TEXT NOT NULL,
    version     TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL,
    leads       INTEGER NOT NULL
);
