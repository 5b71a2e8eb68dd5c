-- Event and transaction bodies are stored zstd-compressed by Vigie (see src/errors), most of
-- them between 1 and 4 KiB. PostgreSQL moves any value that makes a row pass 2 KiB into the
-- table's TOAST table, after trying pglz on it: for these bodies that is a second heap insert
-- and a second index insert per event, and a compression that gains nothing. The bodies stay
-- in the row up to a page, uncompressed by PostgreSQL. Only rows written from now on.
-- postgres only:
ALTER TABLE events ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE events SET (toast_tuple_target = 8160);
ALTER TABLE transaction_samples ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE transaction_samples SET (toast_tuple_target = 8160);
-- end
