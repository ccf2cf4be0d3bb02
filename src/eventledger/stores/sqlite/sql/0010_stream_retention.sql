-- Retention and deleting streams (eventledger.retention): one row per stream that was
-- soft-deleted or had events deleted.
-- deleted_before: the stream's events below this version were deleted for good
--   (eventledger_streams keeps the stream's version, so versions are never reused).
-- hidden_before: a soft delete; versions below it are hidden from read_stream,
--   read_event and list_streams (events appended later show: the stream is recreated).
--   NULL: not hidden. hidden_at: microseconds since the epoch.
CREATE TABLE eventledger_stream_marks (
    stream_id      TEXT    PRIMARY KEY,
    deleted_before INTEGER NOT NULL DEFAULT 1 CHECK (deleted_before >= 1),
    hidden_before  INTEGER CHECK (hidden_before >= 1),
    hidden_at      INTEGER
) WITHOUT ROWID;
