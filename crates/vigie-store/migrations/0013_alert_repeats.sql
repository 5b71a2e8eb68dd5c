-- How often a thing happened again while its rule held back for the cooldown: the next
-- message (or the "resolved" one) says so, so repeated failures read as one problem with a
-- count rather than as silence or as one message each.
ALTER TABLE alert_fired ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;
