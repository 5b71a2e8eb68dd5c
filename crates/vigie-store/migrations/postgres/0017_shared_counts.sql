-- Counts several instances add up (crate::shared).

-- Threshold-rule counts an instance that does not lead hands to the one that does, every
-- second; the leader takes (deletes) them into its windows.
CREATE TABLE threshold_tallies (
    id        BIGSERIAL PRIMARY KEY,
    instance  TEXT NOT NULL,
    -- The counts as JSON (vigie-server's alerts::thresholds::Counted list).
    body      TEXT NOT NULL,
    at        BIGINT NOT NULL
);

-- Each instance's accepted-event counts per quota scope and minute, so quotas and spike
-- protection count what every instance accepted. Rows older than an hour and a minute are
-- dropped by the instances as they write.
CREATE TABLE quota_counts (
    scope     TEXT NOT NULL,
    minute    BIGINT NOT NULL,
    instance  TEXT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (scope, minute, instance)
);
CREATE INDEX quota_counts_minute ON quota_counts (minute);
