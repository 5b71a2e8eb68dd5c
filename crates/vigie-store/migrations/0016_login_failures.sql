-- Failed logins per key (vigie_core::login_limiter): in the database, so the throttle holds
-- across every instance sharing it. Rows quiet for 15 minutes are forgotten hourly.
CREATE TABLE login_failures (
    key            TEXT PRIMARY KEY,
    count          INTEGER NOT NULL,
    last_at        INTEGER NOT NULL,
    blocked_until  INTEGER NOT NULL
);
