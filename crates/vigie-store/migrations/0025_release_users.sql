-- Sessions ended by an error nothing handled that did not crash the program (the browser
-- SDK's `unhandled` status): counted apart from crashes, as Sentry does.
ALTER TABLE release_hours ADD COLUMN unhandled INTEGER NOT NULL DEFAULT 0;

-- Crash-free users: each user seen in a release's sessions (the SDK's `did`, as the first 8
-- bytes of its SHA-1: counting needs no name), per day, and whether a session of theirs
-- crashed that day. Pruned with release_hours.
CREATE TABLE release_users (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release     TEXT NOT NULL,
    day         INTEGER NOT NULL,
    user_hash   INTEGER NOT NULL,
    crashed     INTEGER NOT NULL,
    PRIMARY KEY (project_id, release, day, user_hash)
);

-- Each time an issue came back after it was resolved, and in which release (the release
-- of the event that reopened it): the issue page's "regressed in" and the release page's
-- regressions.
CREATE TABLE issue_regressions (
    issue_id    INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    release     TEXT,
    PRIMARY KEY (issue_id, at)
);
CREATE INDEX issue_regressions_by_release ON issue_regressions (release);
