-- Counts several instances add up (crate::shared). On SQLite there is one instance, but the
-- same tables keep one storage story for both engines.

-- Threshold-rule counts an instance that does not lead hands to the one that does, every
-- second; the leader takes (deletes) them into its windows.
CREATE TABLE threshold_tallies (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    instance  TEXT NOT NULL,
    -- The counts as JSON (vigie-server's alerts::thresholds::Counted list).
    body      TEXT NOT NULL,
    at        INTEGER NOT NULL
);

-- Each instance's accepted-event counts per quota scope and minute, so quotas and spike
-- protection count what every instance accepted. Rows older than an hour and a minute are
-- dropped by the instances as they write.
CREATE TABLE quota_counts (
    scope     TEXT NOT NULL,
    minute    INTEGER NOT NULL,
    instance  TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (scope, minute, instance)
);
CREATE INDEX quota_counts_minute ON quota_counts (minute);
