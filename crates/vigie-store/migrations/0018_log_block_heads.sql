-- How many leading bytes of a log block's data hold its head (times and levels, see
-- src/logs/block.rs): counts and histograms read that prefix alone rather than the whole block.
-- NULL for blocks written before: they are read whole.
ALTER TABLE log_blocks ADD COLUMN head_end INTEGER;
