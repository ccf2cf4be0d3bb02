-- Retention and deleting streams (eventledger.retention): one row per stream that was
-- soft-deleted or had events deleted.
-- deleted_before: the stream's events below this version were deleted for good; the
--   stream's version never goes below deleted_before - 1, so versions are never reused
--   (the append statement reads it when the stream has no events left).
-- hidden_before: a soft delete; versions below it are hidden from read_stream,
--   read_event and list_streams (events appended later show: the stream is recreated).
--   NULL: not hidden.
CREATE TABLE __SCHEMA__.stream_marks (
    stream_id      text        COLLATE "C" PRIMARY KEY,
    deleted_before bigint      NOT NULL DEFAULT 1 CHECK (deleted_before >= 1),
    hidden_before  bigint      CHECK (hidden_before >= 1),
    hidden_at      timestamptz
);
