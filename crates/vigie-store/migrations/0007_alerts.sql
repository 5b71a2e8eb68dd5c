-- Alerts (see vigie_core::alert): channels, rules, what each rule last sent about each thing,
-- and the deliveries with their retries.
CREATE TABLE alert_channels (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    -- vigie_core::alert::Target as JSON.
    target         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    -- Set while deliveries fail; the UI shows the channel as failing with the last error.
    failing_since  INTEGER,
    last_error     TEXT,
    UNIQUE (project_id, name)
);

CREATE TABLE alert_rules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    -- vigie_core::alert::RuleKind as JSON.
    rule         TEXT NOT NULL,
    environment  TEXT,
    -- Channel ids, comma-separated.
    channels     TEXT NOT NULL,
    cooldown_s   INTEGER NOT NULL,
    muted_until  INTEGER,
    created_at   INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

-- Per rule and thing (issue:42, monitor:nightly): when it last sent, and whether a
-- "resolved" message is due when the thing clears.
CREATE TABLE alert_fired (
    rule_id    INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    last_sent  INTEGER NOT NULL,
    open       INTEGER NOT NULL,
    PRIMARY KEY (rule_id, key)
);

CREATE TABLE alert_deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    channel_id    INTEGER NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
    -- The rule's name when sent (a test has none).
    rule          TEXT,
    title         TEXT NOT NULL,
    -- vigie_core::alert::Notification as JSON.
    message       TEXT NOT NULL,
    -- pending | sent | failed
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    next_attempt  INTEGER NOT NULL,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt);
CREATE INDEX alert_deliveries_by_project ON alert_deliveries (project_id, id);
