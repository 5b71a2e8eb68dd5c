-- Threshold rules remind while their condition lasts (0: never); rules and channels written
-- from the configuration file are marked so the UI says where to change them.
ALTER TABLE alert_rules ADD COLUMN renotify_s INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_rules ADD COLUMN from_config INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_channels ADD COLUMN from_config INTEGER NOT NULL DEFAULT 0;
