-- Word filters hold the beginnings of words too (see src/logs/bloom.rs), so a `word*` prefix
-- or a regex whose literal runs into a word skips blocks. A group answers for beginnings only
-- when every member's filter holds them: groups made before hold blocks whose filters do not.
ALTER TABLE log_block_groups ADD COLUMN word_starts INTEGER NOT NULL DEFAULT 0;
